"""Tens of thousands of stations on one machine: several gateway processes sharing one port.

    .venv/bin/python -m tests.benchmarks.fleet [--stations 50000] [--gateways 3]
        [--interval 300] [--hold 60] [--json OUT]

``--gateways`` ``csms gateway`` processes bind the same port with SO_REUSEPORT
(``CSMS_REUSE_PORT=true``; the kernel spreads new connections over them), each
with its own status port and ``CSMS_MAX_CONNECTIONS`` below the 20,000
open-file limit, all publishing to one Apache Kafka node. ``csms loadtest``
simulates ``--stations`` stations in as many processes as that takes (15,000
each at most), spread over four loopback source addresses (one source address
has about 28,000 ephemeral ports towards one port). Each station boots,
heartbeats every ``--interval`` seconds and reports MeterValues (four sampled
values) every ``--interval`` seconds, phases spread: a steady
``2 x stations / interval`` calls per second. Measured over ``--hold`` seconds
once every station is connected: answered calls per second, p99 and errors,
plus each gateway's connections, RSS and CPU, and the connect phase.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

from tests.benchmarks import _support as support
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest


@contextlib.contextmanager
def gateways(
    kafka: KafkaUnderTest, count: int, max_connections: int
) -> Iterator[list[GatewayProcess]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                support.gateway(
                    kafka,
                    "--port",
                    str(port),
                    CSMS_REUSE_PORT="true",
                    CSMS_MAX_CONNECTIONS=str(max_connections),
                    CSMS_INSTANCE=f"gw-{i}",
                )
            )
            for i in range(count)
        ]
        yield processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=50000)
    parser.add_argument("--gateways", type=int, default=3)
    parser.add_argument("--max-connections", type=int, default=19000)
    parser.add_argument("--connect-rate", type=float, default=100)
    parser.add_argument("--interval", type=float, default=300.0)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    connect_time = args.stations / args.connect_rate
    text = support.scenario(
        stations=args.stations,
        duration=3 * connect_time + 180 + args.hold,  # ended by stop() once measured
        connect_rate=args.connect_rate,
        heartbeat=args.interval,
        boot=True,
        rate=0,
        call_timeout=30,
        extra=f"[calls]\ninterval = {args.interval}\nmix = {{ MeterValues = 1 }}\n",
    )
    with (
        support.broker() as (kafka, broker_pid),
        gateways(kafka, args.gateways, args.max_connections) as gws,
    ):
        pids = [gw.process.pid for gw in gws if gw.process is not None]
        run = support.LoadRun(
            gws[0].url(""),
            text,
            start_in=3.0,
            args=["--local-addresses", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"],
        )
        run.sleep_until(0)
        deadline = time.time() + connect_time + 120
        connected = 0.0
        while time.time() < deadline:
            connected = sum(
                support.metrics(gw.status_port).get(
                    'csms_gateway_connections{ocpp_version="1.6"}', 0
                )
                for gw in gws
            )
            if connected >= args.stations:
                break
            time.sleep(2.0)
        all_connected_after = time.time() - run.start_at
        time.sleep(5)
        cpu0 = [support.cpu_seconds(p) for p in pids]
        broker0 = support.cpu_seconds(broker_pid)
        hold_started = time.time()
        time.sleep(args.hold)
        hold_ended = time.time()
        cpu1 = [support.cpu_seconds(p) for p in pids]
        broker1 = support.cpu_seconds(broker_pid)
        per_gateway = []
        for gw, pid, c0, c1 in zip(gws, pids, cpu0, cpu1, strict=True):
            samples = support.metrics(gw.status_port)
            per_gateway.append(
                {
                    "connections": samples.get('csms_gateway_connections{ocpp_version="1.6"}', 0),
                    "rss_mib": round(support.status_kib(pid, "VmRSS") / 1024, 1),
                    "cpu_percent": round(100 * (c1 - c0) / args.hold, 1),
                    "loop_lag_max_ms": round(
                        samples.get("csms_event_loop_lag_max_seconds", 0) * 1000, 1
                    ),
                }
            )
        run.stop()
        report = run.result(timeout=600)
    holding = support.window(report, float(int(hold_started) + 1), float(int(hold_ended)))
    results.update(
        {
            "connected": connected,
            "all_connected_after_s": round(all_connected_after, 1),
            "gateways": per_gateway,
            "broker_cpu_percent": round(100 * (broker1 - broker0) / args.hold, 1),
            "holding": holding,
            "errors": report.errors,
            "generator": {
                "processes": report.generator.processes,
                "cpu_seconds": report.generator.cpu_seconds,
                "peak_rss_mib": round(report.generator.peak_rss_kib / 1024),
                "max_schedule_lag_ms": round(report.generator.max_schedule_lag * 1000),
            },
            "summary": report.summary,
            "timeline": support.timeline(report),
        }
    )
    rows = [
        ["stations connected", f"{connected:,.0f} of {args.stations:,}"],
        ["all connected after (s)", results["all_connected_after_s"]],
        ["calls answered per second while holding", f"{holding['rate']:.0f}"],
        ["p50 / p99 / p99.9 / max while holding (ms)",
         " / ".join(str(holding.get(k, "-")) for k in ("p50", "p99", "p99.9", "max"))],
        ["errors while holding", holding["errors"]],
        ["errors over the whole run", ", ".join(f"{k} {v}" for k, v in report.errors.items())
         or "none"],
        ["connect p99 (ms)", report.summary["connects"]["latency_ms"].get("p99", "-")],
        ["broker CPU (% of a core)", results["broker_cpu_percent"]],
        ["load generator processes, peak RSS (MiB)",
         f"{report.generator.processes}, {results['generator']['peak_rss_mib']}"],
    ]  # fmt: skip
    for i, g in enumerate(per_gateway):
        rows.append(
            [f"gateway {i}: connections, RSS MiB, CPU %, loop lag max ms",
             f"{g['connections']:,.0f}, {g['rss_mib']}, {g['cpu_percent']}, {g['loop_lag_max_ms']}"]
        )  # fmt: skip
    support.finish(rows, results, args.json)


if __name__ == "__main__":
    main()
