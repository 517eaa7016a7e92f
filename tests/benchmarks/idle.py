"""What an idle gateway costs: CPU of ``csms gateway`` and the broker with no station connected.

    .venv/bin/python -m tests.benchmarks.idle [--seconds 20]
        [--variant CSMS_NAME=VALUE[,CSMS_NAME=VALUE...] ...] [--json out.json]

Everything an idle gateway does is background work: its consumers' fetches
(command stream, registries, offline responder), housekeeping, the Kafka
probe, metrics. At a given call rate that cost is spread over the calls
(1 % of a core is 10 µs per call at 1,000 calls/s), so it is measured
alone here. One gateway with the default settings (Kafka's 500 ms fetch
waits), and one per ``--variant`` with those settings (the embedded broker's
short waits: ``CSMS_KAFKA_FETCH_MAX_WAIT=0.02,CSMS_KAFKA_TABLE_FETCH_MAX_WAIT=0.25``),
all started on one embedded broker, then measured over the same window: % of
a core from /proc (utime + stime). The broker's figure is for all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from tests.benchmarks import _support as support

SETTLE = 5.0  # seconds after start-up before the window opens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--variant", action="append", default=[], metavar="CSMS_NAME=VALUE,...")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with support.broker() as (kafka, broker_pid), contextlib.ExitStack() as stack:
        pids = {"broker": broker_pid}
        for variant in ["", *args.variant]:
            settings = dict(s.split("=", 1) for s in variant.split(",") if s)
            gateway = stack.enter_context(support.gateway(kafka, **settings))
            assert gateway.process is not None
            pids[f"gateway {variant or '(defaults)'}"] = gateway.process.pid
        time.sleep(SETTLE)
        before = {name: support.cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(args.seconds)
        after = {name: support.cpu_seconds(pid) for name, pid in pids.items()}
    share = {name: 100 * (after[name] - before[name]) / args.seconds for name in pids}
    results["percent_of_a_core"] = share
    support.finish(
        [[name, f"{value:.2f}"] for name, value in share.items()],
        results,
        args.json,
        headers=("process", "% of a core, idle"),
    )


if __name__ == "__main__":
    main()
