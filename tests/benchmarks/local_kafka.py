"""What the local Apache Kafka of ``csms broker`` costs: start time, memory, idle CPU.

    .venv/bin/python -m tests.benchmarks.local_kafka [--rounds 3] [--seconds 20] [--json out.json]

For one node and for three (combined controllers), ``--rounds`` times each:
the seconds from :meth:`LocalKafka.start` to ready (format included: a fresh
temporary folder every round), then, with no client connected, each node's
resident memory and % of a core over ``--seconds`` (utime + stime from /proc).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from contracts.bus.broker import LocalKafka
from tests.benchmarks import _support as support

SETTLE = 5.0  # seconds after ready before the idle window opens


def _measure(nodes: int, seconds: float) -> dict[str, float]:
    started = time.monotonic()
    with LocalKafka(0, nodes=1 if nodes == 1 else 3) as kafka:
        ready = time.monotonic() - started
        time.sleep(SETTLE)
        pids = [node.process.pid for node in kafka.nodes if node.process is not None]
        before = [support.cpu_seconds(pid) for pid in pids]
        time.sleep(seconds)
        after = [support.cpu_seconds(pid) for pid in pids]
        rss = [support.status_kib(pid, "VmRSS") / 1024 for pid in pids]
    return {
        "ready_s": ready,
        "rss_mib_per_node": statistics.mean(rss),
        "idle_cpu_pct_per_node": 100
        * statistics.mean((b - a) / seconds for a, b in zip(before, after, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="idle window")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args), "rows": {}}
    print("| nodes | ready, s (median, min-max) | RSS per node, MiB | idle, % of a core per node |")
    print("|---:|---|---:|---:|")
    for nodes in (1, 3):
        runs = [_measure(nodes, args.seconds) for _ in range(args.rounds)]
        ready = [r["ready_s"] for r in runs]
        row = {
            "ready_s": ready,
            "rss_mib_per_node": statistics.median(r["rss_mib_per_node"] for r in runs),
            "idle_cpu_pct_per_node": statistics.median(r["idle_cpu_pct_per_node"] for r in runs),
        }
        results["rows"][nodes] = row
        print(
            f"| {nodes} | {statistics.median(ready):.1f} ({min(ready):.1f}-{max(ready):.1f}) "
            f"| {row['rss_mib_per_node']:.0f} | {row['idle_cpu_pct_per_node']:.1f} |",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
