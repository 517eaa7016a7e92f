"""csms's sessions worker against a stream-processing engine doing the same work, side by side.

    .venv/bin/python -m tests.benchmarks.worker_vs_engine [--rate 200] [--stations 200]
        [--seconds 60] [--warmup 15] [--worker-pythonpath DIR]
        [--worker-env CSMS_NAME=VALUE ...] [--json out.json]

The engine is Quix Streams 3.28.1 (the one ADR 0008 weighed). It is not a
csms dependency and this script installs nothing: install it into the venv
first, ``.venv/bin/pip install quixstreams==3.28.1`` (it brings its own
confluent-kafka, and may move the venv's confluent-kafka to an older version).

The same stream of ``ocpp.events.v1`` records goes to two Kafka nodes, one per
contender, so that each broker's CPU is its contender's alone. The records are
what a gateway writes (csms's envelope encoders and headers, through csms's
``Publisher``): ``--stations`` OCPP 1.6 stations, each cycling through
Authorize, StartTransaction, six MeterValues (four sampled values each) and
StopTransaction, ``--rate`` events a second in all. The transaction ids in the
MeterValues and StopTransaction are the ones the worker gives (counted per
partition, as :func:`workers.sessions.ocpp16.transaction_id` does), so every
event is a regular one.

- **csms**: ``csms worker sessions``: its runtime (aiokafka, per-station state
  checkpointed to its changelog every second, at-least-once), replies on
  ``ocpp.commands.v1`` and session records on ``csms.sessions.v1``;
- **Quix Streams**: an ``Application`` (at-least-once, commit every second
  like csms's checkpoints, per-station state in its RocksDB store backed by
  a changelog topic), whose one stateful step runs the very same
  :class:`~workers.sessions.logic.SessionsLogic` on each event and writes the
  reply and the session records to the same topics. The partition's
  transaction counter stays in the process's memory (csms checkpoints it;
  that favours the engine slightly).

Both start, catch up, then take ``--warmup`` seconds of the load before the
window of ``--seconds`` opens; CPU (utime + stime from /proc) of each process
and each broker over the window, divided by the events written in it. Both
must have committed what they handled before the window (or the run stops)
and after the load (the table says if not). ``--worker-pythonpath DIR`` runs
csms's worker from another checkout, ``--worker-env`` with other settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiokafka import TopicPartition

from contracts.bus.clients import admin_client, consumer, publisher
from contracts.bus.publisher import Publisher, partition_for
from contracts.envelopes import (
    StationEvent,
    decode_event,
    encode_command,
    encode_event,
    record_key,
)
from contracts.headers import OCPP_ACTION, command_headers, event_headers, header, worker_source
from contracts.topics import COMMANDS, EVENTS
from tests.benchmarks import _support as support
from tests.workers.processes import WorkerProcess
from workers.runtime.logic import Position, reply_command
from workers.sessions.id_tokens import IdTokenTable
from workers.sessions.logic import SessionsLogic
from workers.sessions.model import StationSessions, TransactionIds
from workers.sessions.ocpp16 import transaction_id

ENGINE = "quixstreams"
ENGINE_VERSION = "3.28.1"
PARTITIONS = 4
METER_VALUES_PER_SESSION = 6
CSMS_GROUP = "bench-sessions"
ENGINE_GROUP = "bench-quix"


# --------------------------------------------------------------------------- the load


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sampled(energy: int) -> list[dict[str, Any]]:
    return [
        {"timestamp": _now(), "sampledValue": [
            {"value": str(energy), "context": "Sample.Periodic",
             "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "16.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "229.8", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            {"value": "3702", "measurand": "Power.Active.Import", "unit": "W"},
        ]},
    ]  # fmt: skip


@dataclasses.dataclass
class Station:
    """One station's place in its cycle, and the transaction id the worker gave it."""

    station_id: str
    partition: int
    step: int = 0
    energy: int = 0
    transaction: int = 0


class Load:
    """The events of ``stations`` stations in turn; transaction ids counted per partition."""

    def __init__(self, stations: int) -> None:
        run = uuid.uuid4().hex[:6]
        self.stations = [
            Station(f"BENCH-{run}-{n:05d}", partition_for(record_key(f"BENCH-{run}-{n:05d}"), 4))
            for n in range(stations)
        ]
        self.next_transaction = dict.fromkeys(range(PARTITIONS), 1)
        self.turn = 0

    def next(self) -> StationEvent:
        station = self.stations[self.turn % len(self.stations)]
        self.turn += 1
        step, tag = station.step, f"TAG{station.station_id[-5:]}"
        station.step = (step + 1) % (METER_VALUES_PER_SESSION + 3)
        if step == 0:
            action, payload = "Authorize", {"idTag": tag}
        elif step == 1:
            counter = self.next_transaction[station.partition]
            self.next_transaction[station.partition] = counter + 1
            station.transaction = transaction_id(counter, station.partition)
            action, payload = "StartTransaction", {
                "connectorId": 1, "idTag": tag, "meterStart": station.energy, "timestamp": _now(),
            }  # fmt: skip
        elif step <= METER_VALUES_PER_SESSION + 1:
            station.energy += 250
            action, payload = "MeterValues", {
                "connectorId": 1, "transactionId": station.transaction,
                "meterValue": _sampled(station.energy),
            }  # fmt: skip
        else:
            action, payload = "StopTransaction", {
                "transactionId": station.transaction, "idTag": tag, "reason": "Local",
                "meterStop": station.energy, "timestamp": _now(),
            }  # fmt: skip
        received = datetime.now(UTC)
        answered_by_worker = action != "MeterValues"  # the gateway answers MeterValues itself
        return StationEvent(
            station_id=station.station_id,
            kind="call",
            message_id=uuid.uuid4().hex,
            action=action,
            ocpp_version="1.6",
            gateway_id="gw-bench",
            connection_id=f"conn-{station.station_id}",
            received_at=received,
            reply_expected=answered_by_worker,
            reply_by=received + timedelta(seconds=30) if answered_by_worker else None,
            payload=msgspec.Raw(orjson.dumps(payload)),
        )


async def produce(
    publishers: list[Publisher], load: Load, rate: float, start: float, seconds: float
) -> list[float]:
    """Publish ``rate`` events a second to every publisher until ``start + seconds``.

    Returns the wall-clock time of each event, to count those inside a window.
    """
    written: list[float] = []
    failures: list[BaseException] = []

    def done(exc: BaseException | None) -> None:
        if exc is not None:
            failures.append(exc)

    index = 0
    while True:
        due = start + index / rate
        if due >= start + seconds:
            break
        await asyncio.sleep(max(0.0, due - time.time()))
        event = load.next()
        value, headers, key = (
            encode_event(event),
            event_headers(event),
            record_key(event.station_id),
        )
        for one in publishers:
            one.publish(EVENTS.name, key, value, headers, done)
        written.append(time.time())
        index += 1
    for one in publishers:
        await one.flush()
    if failures:
        raise RuntimeError(f"{len(failures)} events were not written: {failures[0]!r}")
    return written


async def lag(kafka: support.KafkaUnderTest, group: str) -> int:
    """Records of ocpp.events.v1 that ``group`` has not committed."""
    admin = admin_client(kafka.settings, "bench-lag")
    reader = consumer(kafka.settings, "bench-lag")
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(EVENTS.name, p) for p in range(PARTITIONS)]
        ends = await reader.end_offsets(partitions)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
    finally:
        await reader.stop()
        await admin.close()


# --------------------------------------------------------------------------- the engine


def run_engine(bootstrap: str, state_dir: str) -> None:
    """The Quix Streams application (in a process of its own: ``--engine BOOTSTRAP DIR``)."""
    from quixstreams import Application, message_context
    from quixstreams.models.serializers import Serializer

    logic = SessionsLogic(
        IdTokenTable(), source=worker_source("sessions", "quix"), allow_unknown_id_tokens=True
    )
    counters: dict[int, TransactionIds] = {}

    class OutputValue(Serializer):
        """An output is (topic, value, headers): its value as it is."""

        def __call__(self, value: Any, ctx: Any) -> bytes:
            return bytes(value[1])

    app = Application(
        broker_address=bootstrap,
        consumer_group=ENGINE_GROUP,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        processing_guarantee="at-least-once",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    events = app.topic(EVENTS.name, value_deserializer="bytes", key_deserializer="bytes")
    outputs = {
        name: app.topic(name, value_serializer=OutputValue(), key_serializer="bytes")
        for name in (COMMANDS.name, "csms.sessions.v1")
    }

    def handle(value: bytes, key: Any, timestamp: int, headers: Any, state: Any) -> list[Any]:
        action = header(headers or (), OCPP_ACTION)
        if action is None or action not in logic.actions:
            return []
        event = decode_event(value)
        if event.kind != "call":
            return []
        context = message_context()
        stored = state.get("sessions")
        station = None if stored is None else msgspec.convert(stored, StationSessions)
        counter = counters.get(context.partition) or logic.initial_partition()
        decision = logic.decide(
            event, station, counter, Position(context.partition, context.offset)
        )
        counters[context.partition] = decision.partition
        if decision.station is not station:
            if decision.station is None:
                state.delete("sessions")
            else:
                state.set("sessions", msgspec.to_builtins(decision.station))
        out = []
        if decision.reply is not None and event.reply_expected:
            reply = decision.reply
            now = datetime.now(UTC)
            command = reply_command("quix", event, reply, source=logic.source, now=now)
            out.append((COMMANDS.name, encode_command(command), command_headers(command)))
        out += [(o.topic, o.value, o.headers) for o in decision.outputs]
        return out

    sdf = app.dataframe(events)
    sdf = sdf.apply(handle, stateful=True, metadata=True, expand=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: value[2])
    sdf.to_topic(lambda value, key, timestamp, headers: outputs[value[0]])
    print("running", flush=True)
    app.run()


@contextlib.contextmanager
def engine(bootstrap: str) -> Iterator[int]:
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.worker_vs_engine", "--engine",
             bootstrap, state_dir],
            stdin=subprocess.DEVNULL, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        try:
            yield child.pid
        finally:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def engine_installed() -> bool:
    try:
        from importlib.metadata import version

        return version(ENGINE) == ENGINE_VERSION
    except Exception:
        return False


# --------------------------------------------------------------------------- the run


async def warm_up(nodes: list[support.Broker], load: Load, rate: float, seconds: float) -> None:
    """Load both until each contender has handled what it got (its lag is 0)."""
    publishers = [publisher(n.kafka.settings, "bench-load", linger=0.005) for n in nodes]
    for one in publishers:
        await one.producer.start()
        await one.start(EVENTS.name)
    try:
        await produce(publishers, load, rate, time.time(), seconds)
    finally:
        for one in publishers:
            await one.stop()
            await one.producer.stop()


def wait_handled(contenders: dict[str, support.Broker], within: float) -> dict[str, int]:
    """Until every group's lag is 0, at most ``within`` seconds; the lags."""
    deadline = time.monotonic() + within
    while True:
        lags = {group: asyncio.run(lag(node.kafka, group)) for group, node in contenders.items()}
        if not any(lags.values()) or time.monotonic() > deadline:
            return lags
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=15.0, help="load before the window")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(
        "--worker-pythonpath",
        metavar="DIR",
        help="run csms's worker from this checkout (a change measured against the engine)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="CSMS_NAME=VALUE",
        help="a setting of csms's worker (repeatable), e.g. CSMS_WORKER_LINGER=0.005",
    )
    parser.add_argument(
        "--engine", nargs=2, metavar=("BOOTSTRAP", "STATE_DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.engine:
        run_engine(*args.engine)
        return 0
    if not engine_installed():
        print(
            f"{ENGINE} {ENGINE_VERSION} is not installed in this venv (it is not a csms "
            f"dependency): .venv/bin/pip install {ENGINE}=={ENGINE_VERSION}",
            file=sys.stderr,
        )
        return 2
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    load = Load(args.stations)
    with (
        support.kafka_node() as csms_node,
        support.kafka_node() as engine_node,
        WorkerProcess(
            csms_node.kafka,
            group=CSMS_GROUP,
            CSMS_ALLOW_UNKNOWN_ID_TOKENS="true",
            CSMS_WORKER_CHECKPOINT_INTERVAL="1",
            CSMS_WORKER_SESSION_TIMEOUT="10",
            CSMS_WORKER_HEARTBEAT_INTERVAL="3",
            **({"PYTHONPATH": args.worker_pythonpath} if args.worker_pythonpath else {}),
            **dict(setting.split("=", 1) for setting in args.worker_env),
        ) as worker,
        engine(engine_node.kafka.bootstrap) as engine_pid,
    ):
        worker.wait_assigned(timeout=120)
        assert worker.process is not None
        pids = {
            "csms worker": worker.process.pid,
            "csms broker": csms_node.pid,
            "engine": engine_pid,
            "engine broker": engine_node.pid,
        }
        nodes = [csms_node, engine_node]
        contenders = {CSMS_GROUP: csms_node, ENGINE_GROUP: engine_node}
        # a first trickle, until both have joined their group, restored and answered
        asyncio.run(warm_up(nodes, load, 20, 5))
        lags = wait_handled(contenders, 120)
        if any(lags.values()):
            raise RuntimeError(
                f"a contender has not committed what it handled within 120 s: lag {lags}"
            )
        figures = asyncio.run(measure(nodes, load, pids, args))
        time.sleep(5)  # the last commits
        lags = wait_handled(contenders, 60)
        figures["lag_after"] = lags
    results |= figures
    report(results, args.json)
    return 0


async def measure(
    nodes: list[support.Broker], load: Load, pids: dict[str, int], args: argparse.Namespace
) -> dict[str, Any]:
    publishers = [publisher(n.kafka.settings, "bench-load", linger=0.005) for n in nodes]
    for one in publishers:
        await one.producer.start()
        await one.start(EVENTS.name)
    start = time.time() + 0.5
    opens, closes = start + args.warmup, start + args.warmup + args.seconds
    readings: dict[str, dict[str, float]] = {}

    async def read_at(moment: float, name: str) -> None:
        await asyncio.sleep(max(0.0, moment - time.time()))
        readings[name] = {role: support.cpu_seconds(pid) for role, pid in pids.items()}
        readings[name]["at"] = time.time()

    try:
        written, *_ = await asyncio.gather(
            produce(publishers, load, args.rate, start, args.warmup + args.seconds + 1.0),
            read_at(opens, "before"),
            read_at(closes, "after"),
        )
    finally:
        for one in publishers:
            await one.stop()
            await one.producer.stop()
    before, after = readings["before"], readings["after"]
    events = sum(1 for at in written if before["at"] <= at < after["at"])
    per_event = {role: (after[role] - before[role]) / max(events, 1) * 1e6 for role in pids}
    per_event["csms total"] = per_event["csms worker"] + per_event["csms broker"]
    per_event["engine total"] = per_event["engine"] + per_event["engine broker"]
    return {"events": events, "window_s": after["at"] - before["at"], "us_per_event": per_event}


def report(results: dict[str, Any], path: str | None) -> None:
    us = results["us_per_event"]
    rows = []
    for role, ratio_to in (
        ("csms worker", "engine"),
        ("csms broker", "engine broker"),
        ("csms total", "engine total"),
    ):
        rows.append(
            [role, f"{us[role]:.0f}", f"{us[ratio_to]:.0f}", f"{us[ratio_to] / us[role]:.1f}x"]
        )
    rows.append(["events in the window", str(results["events"]), "", ""])
    rows.append(["lag after the load (csms, engine)", str(results["lag_after"]), "", ""])
    support.finish(
        rows,
        results,
        path,
        headers=("CPU µs per event", "csms", f"{ENGINE} {ENGINE_VERSION}", "engine ÷ csms"),
    )


if __name__ == "__main__":
    sys.exit(main())
