"""The Authorize round trip at load: charger → gateway → Kafka → worker → Kafka → gateway → charger.

    .venv/bin/python -m tests.benchmarks.authorize [--stations 200] [--rate 200] [--duration 20]

Starts one Apache Kafka node, ``csms gateway`` and ``csms worker sessions`` as
processes (the worker accepts unknown id tokens, so every Authorize is
looked up and answered Accepted), connects ``--stations`` OCPP 1.6 stations
(plain websockets, frames built by hand: the load generator must cost little)
and sends Authorize calls **open loop**: call ``i`` is due at
``start + i / rate``, whatever happened to the calls before it, spread over the
stations in turn. A call's latency is from the instant it was due to the
instant its CALLRESULT arrived, so a stall anywhere (the load generator's own
loop included) counts against the result instead of slowing the load down
(no coordinated omission). The first ``--warmup`` seconds are not recorded.

Reports p50 / p90 / p99 / p99.9 / max (hdrhistogram, microsecond resolution),
the calls that failed (a CALLERROR, or no answer within 10 s), the CPU per
call of the gateway, the worker and the broker (/proc, from the first
measured call to the last answer), the worker's share of the path (its
``csms_worker_reply_delay_seconds``: from the gateway receiving the call to
the reply handed to the producer), and the machine.
Everything runs on this machine: the load generator shares the CPUs with the
broker, the gateway and the worker. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import websockets
from hdrh.histogram import HdrHistogram

from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import LocalKafka
from contracts.service.runtime import run
from tests.benchmarks._support import cpu_seconds
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.workers.processes import WorkerProcess

ANSWER_TIMEOUT = 10.0

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Station:
    """One OCPP 1.6 connection: sends Authorize frames, matches CALLRESULTs by message id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[bool]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            message = orjson.loads(frame)
            future = self.waiting.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result(
                    message[0] == 3 and message[2]["idTagInfo"]["status"] == "Accepted"
                )

    async def authorize(self, id_tag: str) -> bool:
        message_id = uuid.uuid4().hex
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[message_id] = future
        await self.ws.send(orjson.dumps([2, message_id, "Authorize", {"idTag": id_tag}]).decode())
        return await asyncio.wait_for(future, ANSWER_TIMEOUT)


async def drive(
    url: str,
    stations: int,
    rate: float,
    duration: float,
    warmup: float,
    on_window: Callable[[str], None] = lambda edge: None,
) -> dict[str, Any]:
    """Run the load; ``on_window("open")`` as the first measured call is due,
    ``on_window("close")`` once the last one is answered."""
    histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds, 1 µs .. 60 s
    failures = 0
    recorded = 0
    async with contextlib.AsyncExitStack() as stack:
        connections = []
        for number in range(stations):
            ws = await stack.enter_async_context(
                websockets.connect(f"{url}BENCH-{number:05d}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
            )
            connections.append(Station(ws))
        loop = asyncio.get_running_loop()
        begin = loop.time() + 0.5
        total = int(rate * (warmup + duration))
        pending: set[asyncio.Task[None]] = set()

        async def one(station: Station, due: float, measured: bool) -> None:
            nonlocal failures, recorded
            try:
                accepted = await station.authorize(f"TAG{int(due * 1000) % 100000:05d}")
            except (TimeoutError, websockets.ConnectionClosed):
                accepted = False
            if not measured:
                return
            if accepted:
                histogram.record_value(max(1, int((loop.time() - due) * 1_000_000)))
                recorded += 1
            else:
                failures += 1

        opened = False
        for index in range(total):
            due = begin + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = due - begin >= warmup
            if measured and not opened:
                on_window("open")
                opened = True
            task = loop.create_task(one(connections[index % stations], due, measured))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
        on_window("close")
        for station in connections:
            station.reader.cancel()
    return {
        "calls": recorded,
        "failed": failures,
        "percentiles_ms": {
            str(p): histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES
        },
        "max_ms": histogram.get_max_value() / 1000,
        "mean_ms": round(histogram.get_mean_value() / 1000, 3),
    }


def _metric_mean(port: int, name: str) -> float | None:
    """The mean of a histogram on the worker's /metrics, over all its label values."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    totals = {"sum": 0.0, "count": 0.0}
    for part, value in re.findall(
        rf"^{name}_(sum|count)(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE
    ):
        totals[part] += float(value)
    return totals["sum"] / totals["count"] if totals["count"] else None


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):  # noqa: SIM115
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


@contextlib.contextmanager
def system(partitions: int) -> Iterator[tuple[GatewayProcess, WorkerProcess, int]]:
    with LocalKafka(0) as broker:
        kafka = KafkaUnderTest("local", broker.kafka_settings())
        asyncio.run(create_topics(TopicSettings(kafka=kafka.settings, partitions=partitions)))
        (node,) = broker.nodes
        assert node.process is not None
        with (
            # every station connects from 127.0.0.1: lift the per-address handshake limit
            GatewayProcess(
                kafka,
                env={"CSMS_LOG_LEVEL": "WARNING", "CSMS_HANDSHAKE_BURST": "100000"},
            ) as gateway,
            WorkerProcess(
                kafka,
                group="bench-sessions",
                CSMS_ALLOW_UNKNOWN_ID_TOKENS="true",
                CSMS_WORKER_CHECKPOINT_INTERVAL="1.0",
                # the production defaults, not the test helper's short group timeouts
                CSMS_WORKER_SESSION_TIMEOUT="10",
                CSMS_WORKER_HEARTBEAT_INTERVAL="3",
            ) as worker,
        ):
            worker.wait_assigned()
            yield gateway, worker, node.process.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="Authorize calls per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured first")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topics")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with system(args.partitions) as (gateway, worker, broker_pid):
        url = gateway.url("")
        assert gateway.process is not None and worker.process is not None
        pids = {"gateway": gateway.process.pid, "worker": worker.process.pid, "broker": broker_pid}
        cpu: dict[str, dict[str, float]] = {}

        def on_window(edge: str) -> None:
            cpu[edge] = {role: cpu_seconds(pid) for role, pid in pids.items()}

        result = run(
            lambda: drive(url, args.stations, args.rate, args.duration, args.warmup, on_window)
        )
        worker_share = _metric_mean(worker.status_port, "csms_worker_reply_delay_seconds")
        handling = _metric_mean(worker.status_port, "csms_worker_processing_seconds")
    calls = max(result["calls"] + result["failed"], 1)
    per_call = {role: (cpu["close"][role] - cpu["open"][role]) / calls * 1e6 for role in pids}
    per_call["total"] = sum(per_call.values())
    report = {
        "cpu_us_per_call": per_call,
        "stations": args.stations,
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "partitions": args.partitions,
        **result,
        "worker_reply_delay_mean_ms": None
        if worker_share is None
        else round(worker_share * 1000, 3),
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Authorize round trip, {args.stations} stations, {args.rate:g} calls/s open loop, "
        f"{args.duration:g} s measured ({result['calls']} calls, {result['failed']} failed)"
    )
    for p, value in result["percentiles_ms"].items():
        print(f"  p{p:<5} {value:8.2f} ms")
    print(f"  max    {result['max_ms']:8.2f} ms   (mean {result['mean_ms']} ms)")
    if worker_share is not None and handling is not None:
        print(
            f"  gateway receipt -> worker reply, mean {worker_share * 1000:.2f} ms "
            f"(of which deciding and publishing {handling * 1e6:.0f} µs per event)"
        )
    print(
        "  CPU per call: "
        + ", ".join(f"{role} {us:.0f} µs" for role, us in per_call.items())
        + " (the load generator not counted; the window includes the last answers' wait)"
    )
    info = report["machine"]
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"load average {info['load_average']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
