"""Steady load, a ledger of every call, and the checks every broker-failure test makes.

A test starts a three-node Apache Kafka (``tests.support.kafka.local_kafka(nodes=3)``),
a gateway process and, where Authorize must flow, sessions workers; then

1. :class:`Fleet` connects raw OCPP 1.6 stations that call the gateway one call at
   a time (a few calls per second each) and answer its GetConfiguration commands;
   every call goes into the :class:`Ledger` (sent, answered, the answer's kind);
2. :class:`Commands` writes GetConfiguration commands to ocpp.commands.v1;
3. :class:`Probe` samples the gateway's /healthz, /readyz and backpressure;
4. the test injects its fault (:func:`leaders`, :func:`wait_in_sync` find and wait
   for brokers), heals it, and stops the load;
5. :func:`verify` reads ocpp.events.v1 and ocpp.command-results.v1 from the
   beginning, prints a :class:`Report` (calls answered, events found, duplicates,
   longest stall) and asserts: no station got a CALLRESULT for an event that is
   not on the topic, no call is on the topic twice, every command written ended
   in exactly one result, and no station got an answer it did not ask for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import websockets
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.bus.publisher import partition_for
from contracts.envelopes import (
    StationCommand,
    decode_command_result,
    decode_event,
    encode_command,
    record_key,
)
from contracts.headers import command_headers
from contracts.topics import COMMAND_RESULTS, COMMANDS, EVENTS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector

__all__ = [
    "Commands",
    "CommandsNotEndedOnce",
    "Fleet",
    "Ledger",
    "Probe",
    "Recorder",
    "Report",
    "authorize_stall",
    "leaders",
    "longest_stall",
    "station_ids",
    "verify",
    "wait_in_sync",
]

OFFLINE_GRACE = 2.0  # CSMS_OFFLINE_GRACE (its default)
STATION_TIMEOUT = 90.0  # seconds a station waits for an answer: longer than any outage here


# ---------------------------------------------------------------------------------- the ledger


@dataclasses.dataclass
class Call:
    """One call a station made, and what came back."""

    station: str
    message_id: str
    action: str
    sent: float  # time.monotonic()
    answered: float | None = None
    kind: str = "pending"  # result, error; pending: never answered; closed: socket lost
    error_code: str = ""


class Ledger:
    """Every call of every station, and every answer nobody asked for."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.strays: list[Any] = []  # answers to no outstanding call of the station
        self.commands_answered = 0  # GetConfiguration calls the stations answered
        self.reconnects = 0
        self.stopped_at: float | None = None

    def results(self, action: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.kind == "result" and action in (None, c.action)]

    def answered_between(self, start: float, end: float, action: str | None = None) -> int:
        """CALLRESULTs for calls sent in [start, end)."""
        return sum(1 for c in self.results(action) if start <= c.sent < end)

    def answered_within(self, start: float, end: float) -> int:
        """CALLRESULTs for calls sent at or after ``start`` and answered before ``end``."""
        return sum(1 for c in self.results() if c.sent >= start and (c.answered or end) < end)


def longest_stall(calls: Sequence[Call], until: float) -> float:
    """The longest time in which calls were outstanding and none was answered with a CALLRESULT.

    A call is outstanding from its sending until its answer (of any kind), or
    ``until`` when it has none; only CALLRESULTs count as answered, so a
    CALLERROR ends one call's wait but not the stall.
    """
    spans = sorted((c.sent, c.answered if c.answered is not None else until) for c in calls)
    answers = sorted(c.answered for c in calls if c.kind == "result" and c.answered is not None)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    longest = 0.0
    for start, end in merged:
        inside = [a for a in answers if start < a < end]
        points = [start, *inside, end]
        longest = max(longest, *(b - a for a, b in itertools.pairwise(points)))
    return longest


def authorize_stall(fleet: Fleet) -> float:
    """:func:`longest_stall` of the fleet's Authorize calls alone (the worker's answers)."""
    calls = [c for c in fleet.ledger.calls if c.action == "Authorize"]
    return longest_stall(calls, fleet.ledger.stopped_at or time.monotonic())


# ---------------------------------------------------------------------------------- stations


def station_ids(
    count: int, partitions: int, *, into: Iterable[int] | None = None, prefix: str = "FT"
) -> list[str]:
    """``count`` new station ids, all keyed to a partition in ``into`` (default: any)."""
    wanted = set(range(partitions) if into is None else into)
    found: list[str] = []
    while len(found) < count:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        if partition_for(record_key(name), partitions) in wanted:
            found.append(name)
    return found


def _meter_values(seq: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "meterValue": [{"timestamp": _now(), "sampledValue": [{"value": str(seq)}]}],
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


ROUTINE: tuple[tuple[str, Callable[[int], dict[str, Any]]], ...] = (
    ("Heartbeat", lambda _: {}),
    ("MeterValues", _meter_values),
    (
        "StatusNotification",
        lambda _: {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    ),
)
WITH_AUTHORIZE = (*ROUTINE[:2], ("Authorize", lambda seq: {"idTag": f"TAG{seq % 7:04d}"}))


class _Station:
    """One charge point: a call at a time, answering the gateway's calls, reconnecting."""

    def __init__(self, fleet: Fleet, name: str) -> None:
        self.fleet = fleet
        self.name = name
        self.ws: Any = None
        self.sent: dict[str, Call] = {}
        self.waiting: dict[str, asyncio.Future[None]] = {}

    async def run(self) -> None:
        rng = random.Random(self.name)
        seq = 0
        await _sleep_unless(self.fleet.stopping, rng.uniform(0, self.fleet.period))
        while not self.fleet.stopping.is_set():
            try:
                async with websockets.connect(
                    self.fleet.gateway.url(self.name),
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                ) as ws:
                    self.ws = ws
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        while not self.fleet.stopping.is_set():
                            action, payload = self.fleet.actions[seq % len(self.fleet.actions)]
                            await self._call(ws, action, payload(seq))
                            seq += 1
                            await _sleep_unless(
                                self.fleet.stopping, self.fleet.period * rng.uniform(0.5, 1.5)
                            )
                    finally:
                        self.ws = None
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
            except (OSError, websockets.WebSocketException):
                pass
            if not self.fleet.stopping.is_set():
                self.fleet.ledger.reconnects += 1
                await _sleep_unless(self.fleet.stopping, 1.0)

    async def _call(self, ws: Any, action: str, payload: dict[str, Any]) -> None:
        """Send one call and wait for its answer (the reader records it) or give up."""
        call = Call(self.name, uuid.uuid4().hex, action, time.monotonic())
        self.fleet.ledger.calls.append(call)
        self.sent[call.message_id] = call
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[call.message_id] = answer
        try:
            await ws.send(orjson.dumps([2, call.message_id, action, payload]).decode())
            await asyncio.wait_for(answer, STATION_TIMEOUT)
        except TimeoutError:
            pass  # unanswered, unless the answer comes later (the reader still records it)
        except (OSError, websockets.WebSocketException):
            call.kind = "closed"
            raise
        finally:
            self.waiting.pop(call.message_id, None)

    def _answered(self, frame: list[Any]) -> None:
        call = self.sent.get(str(frame[1]))
        if call is None or call.answered is not None:
            self.fleet.ledger.strays.append(frame)
            return
        call.answered = time.monotonic()
        call.kind = "result" if frame[0] == 3 else "error"
        if frame[0] == 4:
            call.error_code = str(frame[2])
        waiting = self.waiting.get(call.message_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def _read(self, ws: Any) -> None:
        try:
            async for message in ws:
                frame = orjson.loads(message)
                if frame[0] == 2:  # the gateway's call: a command
                    self.fleet.ledger.commands_answered += 1
                    answer: dict[str, Any] = (
                        {"configurationKey": []} if frame[2] == "GetConfiguration" else {}
                    )
                    await ws.send(orjson.dumps([3, frame[1], answer]).decode())
                else:
                    self._answered(frame)
        except websockets.ConnectionClosed:
            pass
        for waiting in self.waiting.values():  # the socket closed under a call in flight
            if not waiting.done():
                waiting.set_exception(ConnectionError("the gateway closed the connection"))


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class Fleet:
    """Stations calling ``gateway`` in steady load until :meth:`stop`; a context manager."""

    def __init__(
        self,
        gateway: GatewayProcess,
        names: Sequence[str],
        *,
        period: float = 1.0,
        actions: Sequence[tuple[str, Callable[[int], dict[str, Any]]]] = ROUTINE,
    ) -> None:
        self.gateway = gateway
        self.names = list(names)
        self.period = period
        self.actions = list(actions)
        self.ledger = Ledger()
        self.stopping = asyncio.Event()
        self.stations = [_Station(self, n) for n in self.names]
        self._tasks: list[asyncio.Task[None]] = []

    def connected(self) -> list[str]:
        return [s.name for s in self.stations if s.ws is not None]

    async def start(self) -> Fleet:
        self._tasks = [asyncio.create_task(s.run()) for s in self.stations]
        return self

    async def stop(self) -> None:
        """Let every station finish its call in flight, then disconnect them all."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.ledger.stopped_at = time.monotonic()
        await asyncio.gather(*self._tasks)

    async def __aenter__(self) -> Fleet:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ---------------------------------------------------------------------------------- commands


class Commands:
    """GetConfiguration commands to connected stations, one every ``period`` seconds.

    Written the way a downstream service writes them, with an idempotent Kafka
    producer of the test's own; a write it gives up (its request timeout is
    ``WRITE_TIMEOUT``) is counted as refused, and the next one gets a new producer.
    """

    WRITE_TIMEOUT = 10.0

    def __init__(self, kafka: KafkaUnderTest, fleet: Fleet, period: float = 0.5) -> None:
        self.kafka = kafka
        self.fleet = fleet
        self.period = period
        self.written: dict[str, float] = {}  # command id: when Kafka acknowledged it
        self.refused = 0  # writes Kafka did not acknowledge in time
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _write(self, producer: AIOKafkaProducer, station: str) -> None:
        command = StationCommand(
            command_id=str(uuid.uuid4()),
            station_id=station,
            kind="call",
            action="GetConfiguration",
            created_at=datetime.now(UTC),
            source="/tests/faults",
            payload=msgspec.Raw(b"{}"),
        )
        await producer.send_and_wait(
            COMMANDS.name,
            encode_command(command),
            key=record_key(station),
            headers=command_headers(command),
        )
        self.written[command.command_id] = time.monotonic()

    async def _run(self) -> None:
        rng = random.Random(0)
        producer: AIOKafkaProducer | None = None
        while not self._stopping.is_set():
            connected = self.fleet.connected()
            if connected:
                try:
                    if producer is None:
                        producer = AIOKafkaProducer(
                            bootstrap_servers=self.kafka.bootstrap,
                            acks="all",
                            enable_idempotence=True,
                            request_timeout_ms=int(self.WRITE_TIMEOUT * 1000),
                        )
                        await producer.start()
                    await self._write(producer, rng.choice(connected))
                except Exception:  # counted: a command never written has no result
                    self.refused += 1
                    if producer is not None:
                        with contextlib.suppress(Exception):
                            await producer.stop()
                    producer = None
            await _sleep_unless(self._stopping, self.period)
        if producer is not None:
            await producer.stop()

    async def start(self) -> Commands:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        """Write no more; return once the write under way is acknowledged or refused."""
        self._stopping.set()
        if self._task is not None:
            await self._task


# ---------------------------------------------------------------------------------- the probe


@dataclasses.dataclass(frozen=True)
class Sample:
    at: float
    live: int
    ready: int
    failing: tuple[str, ...]
    backpressure: float


class Probe:
    """Samples the gateway's liveness, readiness and backpressure twice a second."""

    def __init__(self, gateway: GatewayProcess, interval: float = 0.5) -> None:
        self.gateway = gateway
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> Sample:
        live, _ = self.gateway.status("/healthz")
        ready, body = self.gateway.status("/readyz")
        failing = orjson.loads(body).get("failing", []) if body.startswith("{") else []
        return Sample(
            time.monotonic(),
            live,
            ready,
            tuple(failing),
            self.gateway.metric("csms_gateway_backpressure"),
        )

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(await asyncio.to_thread(self._sample))
            await _sleep_unless(self._stop, self.interval)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    async def __aenter__(self) -> Probe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


# ---------------------------------------------------------------------------------- the cluster


async def _describe(kafka: KafkaUnderTest, topic: str, timeout: float) -> list[dict[str, Any]]:
    """The topic's partitions as the metadata has them; an admin request waits ``timeout``."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap,
        client_id=f"faults-{uuid.uuid4().hex[:6]}",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
        return list(described["partitions"])
    finally:
        await admin.close()


async def leaders(
    kafka: KafkaUnderTest, topic: str = EVENTS.name, timeout: float = 10.0
) -> dict[int, int]:
    """Partition number: the node id of its leader; raises a KafkaError after ``timeout``."""
    return {p["partition"]: p["leader"] for p in await _describe(kafka, topic, timeout)}


async def wait_in_sync(
    kafka: KafkaUnderTest,
    replicas: int = 3,
    topics: Sequence[str] = (EVENTS.name, COMMANDS.name, COMMAND_RESULTS.name),
    timeout: float = 120.0,
) -> None:
    """Until every partition of ``topics`` has a leader and ``replicas`` replicas in sync."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(Exception):
                described = [await _describe(kafka, t, 5.0) for t in topics]
                # a topic the cluster does not list yet describes as no partition: not in sync
                if all(described) and all(
                    p["leader"] >= 0 and len(p["isr"]) >= replicas for ps in described for p in ps
                ):
                    return
            await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------------- checks


Recorder = Callable[[str, object], None]  # pytest's record_property


class CommandsNotEndedOnce(AssertionError):
    """A command written to ocpp.commands.v1 ended in no result, or in more than one."""


@dataclasses.dataclass
class Report:
    """What a fault test counted; :meth:`lines` is what it prints."""

    fault: str
    calls: int
    answered: int  # CALLRESULTs
    errors: dict[str, int]  # CALLERRORs by error code
    unanswered: int  # no answer within the station's timeout, or the socket closed
    events_found: int  # distinct station calls of this fleet on ocpp.events.v1
    errored_but_stored: int  # calls answered with a CALLERROR whose event is on the topic
    duplicates: int  # station calls on the topic more than once
    missing: int  # CALLRESULTs whose event is not on the topic
    strays: int  # answers no station asked for
    longest_stall: float
    longest_call: float  # the longest a single call waited for its answer
    commands_written: int = 0
    commands_refused: int = 0  # writes Kafka did not acknowledge (they need no result)
    command_results: dict[str, int] = dataclasses.field(default_factory=dict)
    commands_without_one_result: int = 0
    reconnects: int = 0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def lines(self) -> list[str]:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        results = ", ".join(f"{k} {v}" for k, v in sorted(self.command_results.items()))
        lines = [
            f"[{self.fault}] calls {self.calls}: answered {self.answered}, "
            f"CALLERROR {errors}, unanswered {self.unanswered}; reconnects {self.reconnects}",
            f"[{self.fault}] events found {self.events_found} (of CALLERROR'd calls "
            f"{self.errored_but_stored}), missing {self.missing}, duplicates {self.duplicates}, "
            f"stray answers {self.strays}",
            f"[{self.fault}] longest stall {self.longest_stall:.2f} s, "
            f"longest call {self.longest_call:.2f} s",
        ]
        if self.commands_written or self.commands_refused:
            lines.append(
                f"[{self.fault}] commands written {self.commands_written} (refused "
                f"{self.commands_refused}): results "
                f"{results or 'none'}; without exactly one result "
                f"{self.commands_without_one_result}"
            )
        lines += [f"[{self.fault}] {key}: {value}" for key, value in self.extra.items()]
        return lines


async def verify(
    kafka: KafkaUnderTest,
    fault: str,
    fleet: Fleet,
    commands: Commands | None = None,
    *,
    record: Recorder | None = None,
    extra: dict[str, Any] | None = None,
) -> Report:
    """Read the topics back, print the counts, then assert what every fault test asserts."""
    ledger = fleet.ledger
    until = ledger.stopped_at or time.monotonic()
    answered = {(c.station, c.message_id) for c in ledger.results()}
    ours = set(fleet.names)
    async with Collector(kafka, EVENTS.name, from_beginning=True) as events:

        def on_topic() -> collections.Counter[tuple[str, str]]:
            found: collections.Counter[tuple[str, str]] = collections.Counter()
            for record in events.records:
                if record.key is None or record.key.decode() not in ours:
                    continue
                event = decode_event(record.value)
                if event.kind == "call":
                    found[(event.station_id, str(event.message_id))] += 1
            return found

        with contextlib.suppress(AssertionError):  # what is missing is counted below
            await events.wait_for(
                lambda _: answered <= set(on_topic()), timeout=60, what="the answered calls"
            )
        await asyncio.sleep(2.0)  # long enough for a second copy to show up
        found = on_topic()
    results: collections.Counter[str] = collections.Counter()
    per_command: collections.Counter[str] = collections.Counter()
    endings: dict[str, list[str]] = collections.defaultdict(list)
    if commands is not None:
        async with Collector(kafka, COMMAND_RESULTS.name, from_beginning=True) as collected:
            written = set(commands.written)

            def ended() -> collections.Counter[str]:
                return collections.Counter(
                    r.command_id
                    for r in map(decode_command_result, (x.value for x in collected.records))
                    if r.command_id in written
                )

            with contextlib.suppress(AssertionError):  # what is missing is counted below
                await collected.wait_for(
                    lambda _: set(ended()) >= written, timeout=60, what="every command's result"
                )
            await asyncio.sleep(2.0)
            per_command = ended()
            for x in collected.records:
                r = decode_command_result(x.value)
                if r.command_id in written:
                    results[r.status] += 1
                    endings[r.command_id].append(r.status)
    errored = {(c.station, c.message_id) for c in ledger.calls if c.kind == "error"}
    report = Report(
        fault=fault,
        calls=len(ledger.calls),
        answered=len(answered),
        errors=dict(collections.Counter(c.error_code for c in ledger.calls if c.kind == "error")),
        unanswered=sum(1 for c in ledger.calls if c.kind in ("pending", "closed")),
        events_found=len(found),
        errored_but_stored=len(errored & set(found)),
        duplicates=sum(1 for n in found.values() if n > 1),
        missing=len(answered - set(found)),
        strays=len(ledger.strays),
        longest_stall=longest_stall(ledger.calls, until),
        longest_call=max(
            (c.answered - c.sent for c in ledger.calls if c.answered is not None), default=0.0
        ),
        commands_written=len(commands.written) if commands else 0,
        commands_refused=commands.refused if commands else 0,
        command_results=dict(results),
        commands_without_one_result=(
            sum(1 for c in commands.written if per_command[c] != 1) if commands else 0
        ),
        reconnects=ledger.reconnects,
        extra=extra or {},
    )
    for line in report.lines():
        print(line)
    if record is not None:
        for key, value in dataclasses.asdict(report).items():
            record(key, value)
    assert report.answered > 0, "no call was answered at all"
    assert report.missing == 0, (
        f"{report.missing} CALLRESULTs for events not on {EVENTS.name}: "
        f"{sorted(answered - set(found))[:5]}"
    )
    assert report.duplicates == 0, (
        f"station calls on {EVENTS.name} more than once: "
        f"{[k for k, n in found.items() if n > 1][:5]}"
    )
    assert report.strays == 0, f"answers no station asked for: {ledger.strays[:5]}"
    if report.commands_without_one_result:
        assert commands is not None
        wrong = [(c, endings.get(c, [])) for c in commands.written if per_command[c] != 1]
        raise CommandsNotEndedOnce(
            f"{len(wrong)} commands without exactly one result, e.g. {wrong[:3]}"
        )
    return report


@contextlib.asynccontextmanager
async def steady_load(
    kafka: KafkaUnderTest,
    gateway: GatewayProcess,
    names: Sequence[str],
    *,
    commands: bool = False,
    actions: Sequence[tuple[str, Callable[[int], dict[str, Any]]]] = ROUTINE,
) -> AsyncIterator[tuple[Fleet, Commands | None, Probe]]:
    """A fleet on ``gateway`` (with commands if asked) and a probe, until the block ends."""
    async with Probe(gateway) as probe, Fleet(gateway, names, actions=actions) as fleet:
        writer = await Commands(kafka, fleet).start() if commands else None
        try:
            yield fleet, writer, probe
        finally:
            if writer is not None:
                await writer.stop()
                # the stations stay until every command is decided: one answered less than
                # CSMS_OFFLINE_GRACE before its station leaves would also end station_offline
                # (a defect of its own, tests/faults/test_found_defects.py)
                await asyncio.sleep(OFFLINE_GRACE + 3.0)
            await fleet.stop()
