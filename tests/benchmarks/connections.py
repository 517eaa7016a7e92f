"""Idle stations held by one gateway process: memory per connection, idle CPU, loop stalls.

    .venv/bin/python -m tests.benchmarks.connections [--stations 19000] [--hold 30] [--json OUT]

One ``csms gateway`` process on one Apache Kafka node; ``csms loadtest`` (in as
many processes as it needs) connects ``--stations`` stations at
``--connect-rate`` per second; each boots (BootNotification, two
StatusNotifications) and then heartbeats every ``--heartbeat`` seconds,
which is what an idle fleet does. Measured:

- the gateway's RSS before the first connection and once all are connected
  (and its garbage collector's frozen objects settled), per connection;
- CPU of the gateway and of the load generator over ``--hold`` seconds of
  holding them idle, in % of one core;
- the longest event-loop stall: ``csms_event_loop_lag_max_seconds`` polled
  every second from the first connection to the end, its maximum;
- the garbage collector's work: collections and time per generation
  (``csms_gc_collection_seconds``) while connecting and while holding;
- the load generator's cost per idle station (its CPU and RSS).

Targets (issue): at most 20 KiB RSS per connection, an event-loop stall
below 50 ms, idle CPU a small fraction of a core. The open-file limit is
20,000 per process here; the gateway's default ``CSMS_MAX_CONNECTIONS`` is 19,000.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from tests.benchmarks import _support as support
from tests.support.processes import children

CONNECTIONS = 'csms_gateway_connections{ocpp_version="1.6"}'


def _gc(samples: dict[str, float]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for generation in ("0", "1", "2"):
        label = f'{{generation="{generation}"}}'
        found[generation] = {
            "collections": samples.get(f"csms_gc_collection_seconds_count{label}", 0.0),
            "seconds": samples.get(f"csms_gc_collection_seconds_sum{label}", 0.0),
        }
    return found


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += _tree(child)
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=19000)
    parser.add_argument("--connect-rate", type=float, default=100)
    parser.add_argument("--heartbeat", type=float, default=300)
    parser.add_argument("--hold", type=float, default=30, help="seconds measured while idle")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    connect_time = args.stations / args.connect_rate
    with support.broker() as (kafka, broker_pid), support.gateway(kafka) as gw:
        assert gw.process is not None
        pid = gw.process.pid
        time.sleep(2)
        rss_before = support.status_kib(pid, "VmRSS")
        gc_before = _gc(support.metrics(gw.status_port))
        text = support.scenario(
            stations=args.stations,
            duration=3 * connect_time + 120 + args.hold,  # ended by stop() once measured
            connect_rate=args.connect_rate,
            heartbeat=args.heartbeat,
            boot=True,
            call_timeout=30,
        )
        # two source addresses: retries after failures must not run out of ephemeral ports
        run = support.LoadRun(gw.url(""), text, args=["--local-addresses", "127.0.0.1,127.0.0.2"])
        lag_max = 0.0
        polling = True
        series: list[dict[str, float]] = []

        def poll_lag() -> None:
            nonlocal lag_max
            while polling:
                samples = support.metrics(gw.status_port)
                value = samples.get("csms_event_loop_lag_max_seconds", 0)
                lag_max = max(lag_max, value)
                series.append(
                    {
                        "t": round(time.time() - run.start_at, 1),
                        "connections": samples.get(CONNECTIONS, 0),
                        "kafka_pending": samples.get("csms_gateway_kafka_pending_records", 0),
                        "loop_lag_max_s": value,
                    }
                )
                time.sleep(2.0)

        poller = threading.Thread(target=poll_lag, daemon=True)
        poller.start()
        run.sleep_until(0)
        # wait for every station, and for the gateway's GC policy to freeze what they made
        deadline = time.time() + connect_time + 60
        connected = 0.0
        while time.time() < deadline:
            samples = support.metrics(gw.status_port)
            connected = samples.get(CONNECTIONS, 0.0)
            if connected >= args.stations:
                break
            time.sleep(1.0)
        all_connected_after = time.time() - run.start_at
        time.sleep(12)  # two GC-policy checks (5 s): what the connections made gets frozen
        rss_held = support.status_kib(pid, "VmRSS")
        gc_connected = _gc(support.metrics(gw.status_port))
        generator_pids = _tree(run.process.pid)
        gw_cpu0 = support.cpu_seconds(pid)
        broker_cpu0 = support.cpu_seconds(broker_pid)
        gen_cpu0 = sum(support.cpu_seconds(p) for p in generator_pids)
        hold_started = time.time()
        time.sleep(args.hold)
        hold_ended = time.time()
        gw_cpu1 = support.cpu_seconds(pid)
        broker_cpu1 = support.cpu_seconds(broker_pid)
        gen_cpu1 = sum(support.cpu_seconds(p) for p in generator_pids)
        generator_rss = sum(support.status_kib(p, "VmRSS") for p in generator_pids)
        samples = support.metrics(gw.status_port)
        gc_held = _gc(samples)
        open_files = support.open_files(pid)
        polling = False
        poller.join()
        run.stop()
        report = run.result()
    holding = support.window(report, float(int(hold_started) + 1), float(int(hold_ended)))

    held = int(connected)
    results.update(
        {
            "connected": held,
            "all_connected_after_s": round(all_connected_after, 1),
            "gateway_rss_before_kib": rss_before,
            "gateway_rss_held_kib": rss_held,
            "rss_per_connection_kib": round((rss_held - rss_before) / max(held, 1), 2),
            "gateway_open_files": open_files,
            "gateway_idle_cpu_percent": round(100 * (gw_cpu1 - gw_cpu0) / args.hold, 2),
            "broker_idle_cpu_percent": round(100 * (broker_cpu1 - broker_cpu0) / args.hold, 2),
            "generator_idle_cpu_percent": round(100 * (gen_cpu1 - gen_cpu0) / args.hold, 2),
            "generator_processes": report.generator.processes,
            "generator_rss_per_station_kib": round(generator_rss / max(held, 1), 2),
            "event_loop_lag_max_ms": round(lag_max * 1000, 1),
            "gc_before": gc_before,
            "gc_connected": gc_connected,
            "gc_held": gc_held,
            "gc_frozen_objects": samples.get("csms_gc_frozen_objects", 0.0),
            "loadtest_errors": report.errors,
            "calls_while_holding": holding,
            "series": series,
            "loadtest_summary": report.summary,
            "timeline": support.timeline(report),
        }
    )
    rows = [
        ["stations held by one gateway process", f"{held:,}"],
        ["all connected after (s)", results["all_connected_after_s"]],
        ["gateway RSS before → holding (MiB)",
         f"{rss_before / 1024:.0f} → {rss_held / 1024:.0f}"],
        ["gateway RSS per connection (KiB)", results["rss_per_connection_kib"]],
        ["gateway open files", open_files],
        ["gateway CPU while idle (% of a core)", results["gateway_idle_cpu_percent"]],
        ["broker CPU while idle (% of a core)", results["broker_idle_cpu_percent"]],
        ["longest event-loop stall (ms)", results["event_loop_lag_max_ms"]],
        ["full GCs while connecting / holding",
         f"{gc_connected['2']['collections'] - gc_before['2']['collections']:.0f} / "
         f"{gc_held['2']['collections'] - gc_connected['2']['collections']:.0f}"],
        ["GC frozen objects", f"{results['gc_frozen_objects']:,.0f}"],
        ["load generator: processes", report.generator.processes],
        ["load generator CPU while idle (% of a core)", results["generator_idle_cpu_percent"]],
        ["load generator RSS per station (KiB, all its processes)",
         results["generator_rss_per_station_kib"]],
        ["calls while holding: answered/s, p99 (ms)",
         f"{holding['rate']:.1f}, {holding.get('p99', '-')}"],
        ["boot while connecting: BootNotification p99 (ms)",
         report.summary["actions"]["BootNotification"]["latency_ms"].get("p99", "-")],
        ["errors", ", ".join(f"{k} {v}" for k, v in report.errors.items()) or "none"],
    ]  # fmt: skip
    support.finish(rows, results, args.json)


if __name__ == "__main__":
    main()
