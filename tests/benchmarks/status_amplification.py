"""The status worker's write amplification: status records written per event it reads.

    .venv/bin/python -m tests.benchmarks.status_amplification [--duration 180] [--stations 100]

Starts one Apache Kafka node, ``csms gateway`` and ``csms worker status`` as
processes and runs the load-test harness's built-in ``steady`` scenario
against them (100 stations, 3:1 OCPP 1.6 : 2.0.1, boot, a heartbeat every
60 s, a routine call every 10 s per station: 40 % MeterValues, 40 % Heartbeat,
20 % StatusNotification), for ``--duration`` seconds instead of its 60. The
worker's counters (``csms_worker_records_total`` by outcome, and its
changelog records) are read once the fleet has connected and booted
(``--settle`` seconds in) and again just before the end, so the steady window
leaves out the connects, boots and disconnects; the whole run is reported
too. Records are ``outcome="written"`` (one csms.station-status.v1 record
each); events are every event the worker handled.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from loadtest.builtin import STEADY
from tests.benchmarks import _support as support
from tests.workers.processes import WorkerProcess


def counters(worker: WorkerProcess) -> dict[str, float]:
    """Events handled, records written, state records written to the changelog, so far."""
    samples = support.metrics(worker.status_port)
    handled = written = 0.0
    for name, value in samples.items():
        if name.startswith("csms_worker_records_total{"):
            handled += value
            if 'outcome="written"' in name:
                written += value
    changelog = samples.get("csms_worker_changelog_records_total", 0.0)
    return {"events": handled, "records": written, "changelog": changelog}


def ratio(after: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    events = after["events"] - before["events"]
    records = after["records"] - before["records"]
    changelog = after["changelog"] - before["changelog"]
    return {
        "events": int(events),
        "records": int(records),
        "records_per_event": round(records / events, 4) if events else None,
        "changelog_per_event": round(changelog / events, 4) if events else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds before the window")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    scenario = re.sub(r'duration = "60s"', f"duration = {args.duration}", STEADY)
    scenario = re.sub(r"count = 100", f"count = {args.stations}", scenario)
    with (
        support.broker() as (kafka, _),
        support.gateway(kafka, CSMS_LOG_LEVEL="WARNING") as gateway,
        WorkerProcess(
            kafka,
            group="bench-status",
            worker="status",
            CSMS_WORKER_CHECKPOINT_INTERVAL="1.0",
            CSMS_WORKER_SESSION_TIMEOUT="10",
            CSMS_WORKER_HEARTBEAT_INTERVAL="3",
        ) as worker,
    ):
        worker.wait_assigned()
        start = counters(worker)
        run = support.LoadRun(gateway.url(""), scenario)
        run.sleep_until(args.settle)
        settled = counters(worker)
        run.sleep_until(args.duration - 2)
        ended = counters(worker)
        report = run.result()
        deadline = time.monotonic() + 30
        final = counters(worker)
        while time.monotonic() < deadline:  # until the disconnects are handled
            time.sleep(1)
            again = counters(worker)
            if again == final:
                break
            final = again
    steady = ratio(ended, settled)
    whole = ratio(final, start)
    results = {
        "scenario": "steady",
        "stations": args.stations,
        "duration_s": args.duration,
        "window_s": args.duration - 2 - args.settle,
        "steady": steady,
        "whole_run": whole,
        "calls_answered": sum(a.answered for a in report.actions.values()),
        "machine": support.machine(),
    }
    rows = [
        [part, f["events"], f["records"], f["records_per_event"], f["changelog_per_event"]]
        for part, f in (("steady window", steady), ("whole run", whole))
    ]
    support.finish(
        rows,
        results,
        args.json,
        headers=("part", "events read", "records written", "records/event", "changelog/event"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
