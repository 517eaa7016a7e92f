"""A reconnect storm: every station of a full gateway process drops and reconnects at once.

    .venv/bin/python -m tests.benchmarks.storm [--stations 19000] [--json OUT]

One ``csms gateway`` process on one Apache Kafka node holds ``--stations``
stations (connected at ``--connect-rate``, booted, heartbeating every 300 s).
Then every station's TCP connection is dropped at the same instant (a reset,
as in a network outage) and every station reconnects at once, boots again
and sends its StatusNotifications, as chargers do after an outage. The
stations retry refused handshakes after the ``Retry-After`` the gateway
gives (or their own backoff, 1 s doubling to 30 s, jittered).

Measured: the time from the drop until every station is connected again
(the harness's ``storms[].back_after``), the handshakes refused on the way
by kind (the gateway's admission control answers 503 with ``Retry-After``
when more than ``CSMS_MAX_HANDSHAKES_IN_PROGRESS`` are under way), calls that
failed, the gateway's peak RSS (VmHWM) and its CPU during the storm, and the
longest event-loop stall. Target (issue): zero errors, everyone back.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from tests.benchmarks import _support as support


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=19000)
    parser.add_argument("--connect-rate", type=float, default=100)
    parser.add_argument("--settle", type=float, default=20, help="seconds between connect and drop")
    parser.add_argument("--after", type=float, default=90, help="seconds the run goes on after")
    parser.add_argument(
        "--profile", type=float, default=0, help="py-spy the gateway for N s from the drop"
    )
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    connect_time = args.stations / args.connect_rate
    storm_at = round(connect_time + args.settle)
    text = support.scenario(
        stations=args.stations,
        duration=storm_at + args.after,
        connect_rate=args.connect_rate,
        heartbeat=300,
        boot=True,
        call_timeout=30,
        extra=f'[reconnect]\nat = ["{storm_at}s"]\nspread = "0s"\n',
    )
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with support.broker() as (kafka, broker_pid), support.gateway(kafka) as gw:
        assert gw.process is not None
        pid = gw.process.pid
        run = support.LoadRun(gw.url(""), text, start_in=3.0)
        lag: list[tuple[float, float]] = []
        polling = True

        def poll() -> None:
            while polling:
                samples = support.metrics(gw.status_port)
                lag.append((time.time(), samples.get("csms_event_loop_lag_max_seconds", 0.0)))
                time.sleep(1.0)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        run.sleep_until(storm_at - 2)
        rss_before = support.status_kib(pid, "VmRSS")
        hwm_before = support.status_kib(pid, "VmHWM")
        connected_before = support.metrics(gw.status_port).get(
            'csms_gateway_connections{ocpp_version="1.6"}', 0
        )
        cpu0 = support.cpu_seconds(pid)
        broker0 = support.cpu_seconds(broker_pid)
        if args.profile:
            run.sleep_until(storm_at)
            results["profile"] = support.profile(pid, args.profile)
        report = run.result(timeout=storm_at + args.after + 600)
        cpu1 = support.cpu_seconds(pid)
        broker1 = support.cpu_seconds(broker_pid)
        hwm_after = support.status_kib(pid, "VmHWM")
        rss_after = support.status_kib(pid, "VmRSS")
        samples = support.metrics(gw.status_port)
        polling = False
        poller.join()

    storm = report.storms[0] if report.storms else None
    storm_started = run.start_at + storm_at
    lag_during = max((v for t, v in lag if t >= storm_started), default=0.0)
    lag_before = max((v for t, v in lag if t < storm_started), default=0.0)
    after = support.window(report, float(int(storm_started)), report.ended_at)
    refused = {k: v for k, v in report.errors.items() if k.startswith("connect:")}
    failed_calls = {k: v for k, v in report.errors.items() if not k.startswith("connect:")}
    results.update(
        {
            "connected_before": connected_before,
            "storm": None if storm is None else {
                "stations": storm.stations, "back_after_s": storm.back_after
            },
            "refused_handshakes": refused,
            "failed_calls": failed_calls,
            "gateway_rss_before_mib": round(rss_before / 1024),
            "gateway_rss_after_mib": round(rss_after / 1024),
            "gateway_peak_rss_mib": round(hwm_after / 1024),
            "gateway_peak_rss_before_storm_mib": round(hwm_before / 1024),
            "gateway_cpu_s_storm_and_after": round(cpu1 - cpu0, 1),
            "broker_cpu_s_storm_and_after": round(broker1 - broker0, 1),
            "loop_lag_max_ms_before": round(lag_before * 1000),
            "loop_lag_max_ms_storm": round(lag_during * 1000),
            "after_storm_calls": after,
            "handshakes_rejected": {
                k: v for k, v in samples.items() if k.startswith("csms_gateway_handshakes_rejected")
            },
            "summary": report.summary,
            "generator": {
                "processes": report.generator.processes,
                "cpu_seconds": report.generator.cpu_seconds,
                "max_schedule_lag_ms": round(report.generator.max_schedule_lag * 1000),
            },
            "timeline": support.timeline(report),
        }
    )  # fmt: skip
    back = "not all back" if storm is None or storm.back_after is None else f"{storm.back_after} s"
    rows = [
        ["stations dropped at once", f"{storm.stations if storm else 0:,}"],
        ["until all were connected again", back],
        ["handshakes refused on the way (retried)",
         ", ".join(f"{k} {v}" for k, v in refused.items()) or "none"],
        ["calls failed", ", ".join(f"{k} {v}" for k, v in failed_calls.items()) or "none"],
        ["calls after the drop: answered, p99, max (ms)",
         f"{after['answered']:,}, {after.get('p99', '-')}, {after.get('max', '-')}"],
        ["gateway RSS before → after (MiB)",
         f"{results['gateway_rss_before_mib']} → {results['gateway_rss_after_mib']}"],
        ["gateway peak RSS before the storm → overall (MiB)",
         f"{results['gateway_peak_rss_before_storm_mib']} → {results['gateway_peak_rss_mib']}"],
        ["gateway CPU s from the storm to the end", results["gateway_cpu_s_storm_and_after"]],
        ["broker CPU s from the storm to the end", results["broker_cpu_s_storm_and_after"]],
        ["load generator: CPU s, latest scheduled event (ms)",
         f"{report.generator.cpu_seconds}, {report.generator.max_schedule_lag * 1000:.0f}"],
        ["longest event-loop stall before / during the storm (ms)",
         f"{results['loop_lag_max_ms_before']} / {results['loop_lag_max_ms_storm']}"],
    ]  # fmt: skip
    support.finish(rows, results, args.json)
    if "profile" in results:
        print(f"\ngateway profile from the drop: {results['profile']['samples']} samples")
        print(support.table(["function (self)", "% of samples"], results["profile"]["self"][:15]))
        print(support.table(["function (inclusive)", "%"], results["profile"]["total"][:25]))


if __name__ == "__main__":
    main()
