"""What a simulated station costs the load generator: the lean harness against the obvious client.

    .venv/bin/python -m tests.benchmarks.harness_cost [--stations 2000] [--interval 10] [--json OUT]

Both clients hold ``--stations`` connections to the reference central system
(``tests/benchmarks/reference_csms.py``: it answers with valid payloads,
which the ``ocpp`` client insists on) and send each station's Heartbeat
every ``--interval`` seconds, phases spread:

- **harness**: ``csms loadtest run`` (websockets' sans-I/O ``ClientProtocol`` on
  an asyncio protocol, one scheduler for every station, frames from
  ``contracts.ocppj``);
- **ocpp client**: what a first load tester is written with, the ``ocpp``
  package's ``ChargePoint`` on websockets' asyncio client, one task per
  station running ``ChargePoint.start()`` and one sleeping between its
  heartbeats (``python -m tests.benchmarks.harness_cost --ocpp-client ...``).

Measured in the client process: RSS per connected station (after connecting,
minus before), and CPU per call over a window that starts once every station
is connected. The ADR docs/decisions/0010-loadtest-design.md rests on these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any

import uvloop

from tests.benchmarks import _support as support

WINDOW_START = 8.0


def _rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ocpp_client(url: str, stations: int, interval: float, duration: float) -> dict[str, Any]:
    import websockets
    from ocpp.v16 import ChargePoint, call

    rss_before = support.status_kib(os.getpid(), "VmRSS")
    answered = 0
    window_answered = 0
    started = time.monotonic()
    window = (started + WINDOW_START, started + duration - 1)

    async def station(n: int) -> None:
        nonlocal answered, window_answered
        async with websockets.connect(f"{url}OC-{n}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            cp = ChargePoint(f"OC-{n}", ws)
            runner = asyncio.create_task(cp.start())
            await asyncio.sleep(interval * random.random())
            while time.monotonic() < started + duration:
                await cp.call(call.Heartbeat())
                answered += 1
                if window[0] <= time.monotonic() < window[1]:
                    window_answered += 1
                await asyncio.sleep(interval)
            runner.cancel()

    tasks = [asyncio.create_task(station(n)) for n in range(stations)]
    await asyncio.sleep(WINDOW_START - 1)
    failed = [t for t in tasks if t.done() and t.exception() is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} stations failed: {failed[0].exception()!r}")
    rss_connected = support.status_kib(os.getpid(), "VmRSS")
    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    cpu0 = _rusage_cpu()
    await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
    cpu1 = _rusage_cpu()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "rss_per_station_kib": (rss_connected - rss_before) / stations,
        "cpu_per_call_us": (cpu1 - cpu0) / max(window_answered, 1) * 1e6,
        "calls_in_window": window_answered,
    }


def harness(url: str, stations: int, interval: float, duration: float) -> dict[str, Any]:
    text = support.scenario(
        stations=stations, duration=duration, connect_rate=0, heartbeat=interval
    )
    run = support.LoadRun(url, text, args=["--processes", "1"])
    pid = run.process.pid
    run.sleep_until(-0.3)  # imported, not yet connecting
    rss_before = support.status_kib(pid, "VmRSS")
    run.sleep_until(WINDOW_START - 1)
    rss_connected = support.status_kib(pid, "VmRSS")
    run.sleep_until(WINDOW_START)
    cpu0 = support.cpu_seconds(pid)
    run.sleep_until(duration - 1)
    cpu1 = support.cpu_seconds(pid)
    report = run.result()
    figures = support.window(report, run.start_at + WINDOW_START, run.start_at + duration - 1)
    return {
        "rss_per_station_kib": (rss_connected - rss_before) / stations,
        "cpu_per_call_us": (cpu1 - cpu0) / max(figures["answered"], 1) * 1e6,
        "calls_in_window": figures["answered"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ocpp-client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.ocpp_client:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            figures = runner.run(
                _ocpp_client(args.ocpp_client, args.stations, args.interval, args.duration)
            )
        print(json.dumps(figures))
        return

    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    rounds: dict[str, list[dict[str, Any]]] = {"harness": [], "ocpp client": []}
    with support.script_server("reference_csms", "reference") as server:
        for _ in range(args.rounds):
            rounds["harness"].append(
                harness(server.url, args.stations, args.interval, args.duration)
            )
            child = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.harness_cost", "--ocpp-client", server.url,
                 "--stations", str(args.stations), "--interval", str(args.interval),
                 "--duration", str(args.duration)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rounds["ocpp client"].append(json.loads(child.stdout.strip().splitlines()[-1]))
    results["rounds"] = rounds
    medians = {
        name: {
            key: sorted(r[key] for r in runs)[len(runs) // 2]
            for key in ("rss_per_station_kib", "cpu_per_call_us")
        }
        for name, runs in rounds.items()
    }
    results["medians"] = medians
    h, o = medians["harness"], medians["ocpp client"]
    rss, cpu = "rss_per_station_kib", "cpu_per_call_us"
    rows = [
        ["harness (csms loadtest)", f"{h[rss]:.1f}", f"{h[cpu]:.0f}"],
        ["ocpp ChargePoint on websockets' asyncio client", f"{o[rss]:.1f}", f"{o[cpu]:.0f}"],
        ["ocpp client ÷ harness", f"{o[rss] / h[rss]:.1f}x", f"{o[cpu] / h[cpu]:.1f}x"],
    ]
    headers = ["client", "RSS per station (KiB)", "CPU per call (µs)"]
    support.finish(rows, results, args.json, headers)


if __name__ == "__main__":
    main()
