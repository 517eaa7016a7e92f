"""How long the garbage collector stops the process, without and with the GC policy.

    .venv/bin/python -m tests.benchmarks.gc_pause [--connections 19000] [--repeat 3]

Builds ``--connections`` simulated connection object graphs (about 75 tracked
containers each, with the back-references that make real connection objects
cyclic), then handles ``--messages`` simulated messages that allocate and drop
short-lived objects (one in ten left as cyclic garbage). Every collection is
timed through ``gc.callbacks``. Finally three explicit full collections are
timed, which is the pause a gen-2 collection costs at that size.

Each variant runs in a fresh interpreter so that neither inherits the other's
heap: ``baseline`` with Python's defaults, ``policy`` with
:class:`contracts.service.GcPolicy` at its default settings (or the ``CSMS_GC_*``
variables in the environment, to try others), whose growth check
runs after every 1,000 new connections (a reconnect storm of 200 stations a
second with the default 5 s check interval).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from contracts.service import GcPolicy, ProcessMetrics, ServiceSettings
from contracts.settings import load

PAYLOAD = {
    "connectorId": 1,
    "transactionId": 42,
    "meterValue": [
        {
            "timestamp": "2026-03-01T12:00:00Z",
            "sampledValue": [
                {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "11.0", "measurand": "Power.Active.Import", "unit": "kW"},
            ],
        }
    ],
}


class _Part:
    """One of a connection's helper objects (protocol, reader, pinger, ...)."""

    def __init__(self, owner: _Connection, index: int) -> None:
        self.owner = owner  # a back-reference: the graph is cyclic, as real ones are
        self.state: dict[str, Any] = {"index": index, "owner": owner, "pending": []}
        self.queue: collections.deque[Any] = collections.deque()
        self.on_event = lambda: self.owner  # a closure: a function, a cell and a tuple


class _Connection:
    def __init__(self, number: int) -> None:
        self.station_id = f"CP-{number:06d}"
        self.parts = [_Part(self, i) for i in range(10)]
        self.calls: dict[str, Any] = {"outstanding": [self]}
        self.headers = [["sec-websocket-protocol", "ocpp1.6"], ["user-agent", "charger"]]


def _message(connection: _Connection, number: int) -> None:
    """Allocate what handling a message allocates; every tenth leaves cyclic garbage."""
    call = [2, str(number), "MeterValues", dict(PAYLOAD)]
    event: dict[str, Any] = {
        "station_id": connection.station_id,
        "call": call,
        "headers": list(connection.headers),
    }
    if number % 10 == 0:
        event["self"] = event  # a cycle only the collector can free


def _tracked_per_connection() -> float:
    gc.collect()
    before = len(gc.get_objects())
    sample = [_Connection(i) for i in range(1000)]
    gc.collect()
    per_connection = (len(gc.get_objects()) - before - 1) / len(sample)
    del sample
    gc.collect()
    return per_connection


def measure(variant: str, connections: int, messages: int) -> dict[str, Any]:
    """Run one variant in this interpreter; returns its figures."""
    per_connection = _tracked_per_connection()
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def timing(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    policy: GcPolicy | None = None
    if variant == "policy":
        settings = load(ServiceSettings)  # the defaults, or CSMS_GC_* to try others
        policy = GcPolicy(
            ProcessMetrics(CollectorRegistry()),
            thresholds=(
                settings.gc_threshold_gen0,
                settings.gc_threshold_gen1,
                settings.gc_threshold_gen2,
            ),
            freeze=settings.gc_freeze,
            freeze_growth=settings.gc_freeze_growth,
        )
        policy.install()
    gc.callbacks.append(timing)
    try:
        held: list[_Connection] = []
        for number in range(connections):
            held.append(_Connection(number))
            _message(held[-1], number)
            if policy is not None and number % 1000 == 999:
                policy.check()
        for number in range(messages):
            _message(held[number % len(held)], number)
        explicit = []
        for _ in range(3):
            began = time.perf_counter()
            gc.collect()
            explicit.append(time.perf_counter() - began)
    finally:
        gc.callbacks.remove(timing)
        if policy is not None:
            policy.uninstall()
    return {
        "variant": variant,
        "connections": connections,
        "messages": messages,
        "tracked_per_connection": round(per_connection, 1),
        "frozen_objects": gc.get_freeze_count(),
        "scanned_objects": len(gc.get_objects()),
        "collections": {str(g): len(p) for g, p in pauses.items()},
        "longest_pause_s": {str(g): max(p, default=0.0) for g, p in pauses.items()},
        "full_collection_s": max(explicit),
    }


def _run_variant(variant: str, connections: int, messages: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.benchmarks.gc_pause", "--variant", variant]
    command += ["--connections", str(connections), "--messages", str(messages)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over repeated runs (the machine may be shared)."""
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, dict):
            merged[key] = {k: statistics.median(run[key][k] for run in runs) for k in value}
        elif isinstance(value, int | float):
            merged[key] = statistics.median(run[key] for run in runs)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=19_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; medians shown")
    parser.add_argument("--variant", choices=["baseline", "policy"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:  # the child process
        print(json.dumps(measure(args.variant, args.connections, args.messages)))
        return 0
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "policy": []}
    for _ in range(args.repeat):
        for variant, results in runs.items():
            results.append(_run_variant(variant, args.connections, args.messages))
    base, tuned = _median_run(runs["baseline"]), _median_run(runs["policy"])
    print(
        f"GC pauses with {args.connections} simulated connections "
        f"(~{base['tracked_per_connection']:.0f} tracked objects each), "
        f"{args.messages} messages; median of {args.repeat} runs; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{'':36}{'baseline':>16}{'policy':>16}")
    rows: list[tuple[str, str, Callable[[float], str]]] = [
        ("objects a full collection scans", "scanned_objects", "{:.0f}".format),
        ("objects frozen", "frozen_objects", "{:.0f}".format),
        ("full collection pause (max of 3)", "full_collection_s", _ms),
    ]
    for label, key, fmt in rows:
        print(f"{label:36}{fmt(base[key]):>16}{fmt(tuned[key]):>16}")
    for generation in ("0", "1", "2"):
        label = f"gen-{generation} collections, longest pause"
        cells = [
            f"{run['collections'][generation]:.0f}, {_ms(run['longest_pause_s'][generation])}"
            for run in (base, tuned)
        ]
        print(f"{label:36}{cells[0]:>16}{cells[1]:>16}")
    longest_base = max(base["longest_pause_s"].values())
    longest_tuned = max(tuned["longest_pause_s"].values())
    ratio = base["full_collection_s"] / max(tuned["full_collection_s"], 1e-9)
    print(f"full-collection pause, baseline/policy: {ratio:.0f}x")
    print(
        f"longest pause of the run (any generation): {_ms(longest_base)} -> "
        f"{_ms(longest_tuned)} ({longest_base / max(longest_tuned, 1e-9):.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
