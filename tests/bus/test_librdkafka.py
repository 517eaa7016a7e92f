"""A downstream service that is not aiokafka: librdkafka (``confluent-kafka``) reads csms's topics.

A real gateway and sessions worker run on a Kafka of the test's own; a real OCPP 1.6
charge point boots, heartbeats, charges and leaves; an operator adds an id token and
adds and removes a station. Then a librdkafka consumer reads every topic of the
catalogue from the start, checking batch CRCs: each value decodes with csms's own
decoder, each record's headers are exactly the ones csms's builders give for the decoded
value, every record of the station is on one partition, and the batches csms wrote are
lz4, its default codec. A librdkafka producer writes a command (zstd, the Java
partitioner) that the station executes, and a record the worker dead-letters; their
results are read back with librdkafka. docs/topics.md, "Other languages", is what this
test holds csms to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as Partition
from ocpp.v16 import call as call16

from contracts.bus.broker import LocalKafka
from contracts.envelopes import (
    CommandResult,
    StationCommand,
    decode_command,
    decode_command_result,
    decode_dead_letter,
    decode_event,
    decode_id_token,
    decode_presence,
    decode_session,
    decode_station,
    encode_command,
    record_key,
)
from contracts.headers import (
    COMMANDS_HANDLED,
    Headers,
    command_headers,
    command_result_headers,
    dead_letter_headers,
    event_headers,
    id_token_headers,
    presence_headers,
    read_headers,
    session_headers,
    station_headers,
    tombstone_headers,
)
from contracts.topics import (
    ALERTS,
    CATALOGUE,
    COMMAND_RESULTS,
    COMMANDS,
    DEAD_LETTER,
    EVENTS,
    ID_TOKENS,
    PRESENCE,
    SESSIONS,
    SILENCES,
    SITES,
    STATION_STATUS,
    STATIONS,
    Topic,
)
from tests.support.gateway import GatewayProcess
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest, local_kafka
from tests.support.processes import run_csms
from tests.support.stations import connect16, station_id
from tests.workers.processes import WorkerProcess

pytestmark = pytest.mark.kafka

# the codec field of a record batch's attributes (its lowest three bits)
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
SOURCE = "/tests/librdkafka"


def _json(value: Any) -> msgspec.Raw:
    return msgspec.Raw(orjson.dumps(value))


def letter_value(station: str) -> bytes:
    """An event value cut short: no decoder reads it."""
    return b'{"station_id": "' + station.encode()


def _rebuilt_headers(topic: Topic, message: Message) -> Headers:
    """The headers csms's own builder gives for ``message``'s decoded value and source."""
    value = message.value()
    source = read_headers(message.headers() or []).ce_source or ""
    if value is None:
        at = read_headers(message.headers() or []).time()
        assert at is not None
        handled = dict(message.headers() or []).get(COMMANDS_HANDLED)
        return tombstone_headers(
            topic,
            message.key().decode(),
            source=source,
            at=at,
            commands_handled=None if handled is None else int(handled),
        )
    builders: dict[Topic, Callable[[bytes], Headers]] = {
        EVENTS: lambda v: event_headers(decode_event(v)),
        COMMANDS: lambda v: command_headers(decode_command(v)),
        COMMAND_RESULTS: lambda v: command_result_headers(decode_command_result(v)),
        PRESENCE: lambda v: presence_headers(_present(decode_presence(v))),
        SESSIONS: lambda v: session_headers(decode_session(v), source=source),
        STATIONS: lambda v: station_headers(_present(decode_station(v)), source=source),
        ID_TOKENS: lambda v: id_token_headers(_present(decode_id_token(v)), source=source),
        DEAD_LETTER: lambda v: dead_letter_headers(decode_dead_letter(v), source=source),
    }
    return builders[topic](value)


def _present(record: Any) -> Any:
    assert record is not None, "a value that is not null decoded as a tombstone"
    return record


class Reader:
    """A librdkafka consumer on every partition of every catalogue topic, from the start."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"librdkafka-{uuid.uuid4().hex[:8]}",  # never joined: assigned
                "enable.auto.commit": False,
                "check.crcs": True,  # csms's own produce path wrote the batches and their CRCs
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 100,
            }
        )
        topics = self.consumer.list_topics(timeout=30).topics
        self.consumer.assign(
            [
                Partition(t.name, p, OFFSET_BEGINNING)
                for t in CATALOGUE
                for p in sorted(topics[t.name].partitions)
            ]
        )
        self.records: dict[str, list[Message]] = defaultdict(list)

    def _poll(self, seconds: float) -> None:
        for message in self.consumer.consume(500, seconds):
            error = message.error()
            if error is not None:
                raise KafkaException(error)
            self.records[message.topic()].append(message)

    async def until(
        self, predicate: Callable[[dict[str, list[Message]]], bool], what: str, timeout: float = 60
    ) -> None:
        """Read (in a thread: the station's loop must go on) until ``predicate`` holds."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.records):
                    await asyncio.to_thread(self._poll, 0.2)
        except TimeoutError:
            seen = {topic: len(messages) for topic, messages in self.records.items()}
            raise AssertionError(f"timed out waiting for {what}; read {seen}") from None

    def close(self) -> None:
        self.consumer.close()


def _writer(bootstrap: str, compression: str) -> Producer:
    """A librdkafka producer as a downstream service should configure it (docs/topics.md)."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": compression,
            # Java's and csms's partitioner: a station's records on the partition of its others
            "partitioner": "murmur2_random",
            "linger.ms": 5,
        }
    )


def _write(producer: Producer, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
    delivered: list[Any] = []
    producer.produce(
        topic, value, key, headers=headers, on_delivery=lambda e, m: delivered.append(e or m)
    )
    assert producer.flush(30) == 0
    assert len(delivered) == 1 and not isinstance(delivered[0], Exception), delivered


class Batch(msgspec.Struct, frozen=True):
    partition: int
    first: int  # offset of its first record
    last: int
    codec: str


def _stored_batches(broker: LocalKafka, topic: str) -> list[Batch]:
    """Every record batch of ``topic`` as the broker stored it in its log segments."""
    batches = []
    for folder in (broker.nodes[0].directory / "data").glob(f"{topic}-*"):
        partition = int(folder.name.rsplit("-", 1)[1])
        for segment in sorted(folder.glob("*.log")):
            batches.extend(_segment_batches(segment, partition))
    return batches


def _segment_batches(segment: Path, partition: int) -> Iterator[Batch]:
    data = segment.read_bytes()
    position = 0
    # base offset (8), batch length (4), leader epoch (4), magic (1), CRC (4), attributes (2),
    # last offset delta (4), ...
    while position + 27 <= len(data):
        first, length = struct.unpack_from(">qi", data, position)
        if length == 0:  # the preallocated, unwritten rest of the segment
            break
        assert data[position + 16] == 2, f"{segment}: magic {data[position + 16]}, not 2"
        attributes, delta = struct.unpack_from(">hi", data, position + 21)
        yield Batch(partition, first, first + delta, CODECS[attributes & 0x07])
        position += 12 + length


def _batch_of(batches: list[Batch], message: Message) -> Batch:
    (batch,) = [
        b
        for b in batches
        if b.partition == message.partition() and b.first <= message.offset() <= b.last
    ]
    return batch


def _misplaced_by_default() -> str:
    """A station id that librdkafka's default partitioner (CRC32) puts on another partition
    than Java's and csms's (murmur2), so that the test holds the writers to the latter."""
    while True:
        station = station_id("LR")
        key = record_key(station)
        if zlib.crc32(key) % TEST_PARTITIONS != (murmur2(key) & 0x7FFFFFFF) % TEST_PARTITIONS:
            return station


def _is(message: Message, ce_type: str) -> bool:
    return ("ce_type", ce_type.encode()) in (message.headers() or [])


def _by_key(records: list[Message], key: str) -> list[Message]:
    return [m for m in records if m.key() == key.encode()]


@dataclasses.dataclass(frozen=True)
class System:
    broker: LocalKafka
    kafka: KafkaUnderTest
    gateway: GatewayProcess
    tag: str  # an id token in the authorization list
    removed: str  # a station added to the registry, then removed


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    """Kafka of this module's own (only csms's records on it), operators' records, a gateway
    and a sessions worker."""
    tag, removed = f"TAG{uuid.uuid4().hex[:8]}", station_id("GONE")
    with local_kafka() as (broker, kafka):
        for operator in (
            ("id-tokens", "add", tag),
            ("stations", "add", removed, "--profile", "3"),
            ("stations", "remove", removed),
        ):
            done = run_csms(*operator, env=kafka.env(), timeout=60)
            assert done.returncode == 0, done.stderr
        with (
            GatewayProcess(kafka) as gateway,
            WorkerProcess(kafka, CSMS_ALLOW_UNKNOWN_ID_TOKENS="false") as worker,
        ):
            worker.wait_assigned(timeout=60)
            yield System(broker, kafka, gateway, tag, removed)


async def test_librdkafka_reads_every_topic_and_writes_a_command_a_station_executes(
    system: System,
) -> None:
    station, removed = _misplaced_by_default(), system.removed
    reader = Reader(system.kafka.bootstrap)
    try:
        result = await _charge_and_command(system, reader, station)
        await reader.until(
            lambda r: (
                any(m.value() is None for m in _by_key(r[PRESENCE.name], station))
                and any(_is(m, "csms.ocpp.event.disconnected") for m in r[EVENTS.name])
                and any(_is(m, "csms.session.completed") for m in r[SESSIONS.name])
                and len(r[DEAD_LETTER.name]) == 1
            ),
            "the disconnection, the completed session and the dead letter",
        )
        records = dict(reader.records)
    finally:
        reader.close()
    batches = {t.name: _stored_batches(system.broker, t.name) for t in CATALOGUE}

    assert result.status == "completed", result
    assert result.action == "GetConfiguration"
    assert orjson.loads(bytes(result.payload))["configurationKey"][0]["key"] == "HeartbeatInterval"

    # every topic that has records was read; alerts, silences, station status and sites have
    # no writer here
    assert {name for name, messages in records.items() if messages} == {
        t.name for t in CATALOGUE if t not in (ALERTS, SILENCES, SITES, STATION_STATUS)
    }
    # the one record csms did not write: the test's undecodable event, headers and all
    (foreign,) = [m for m in records[EVENTS.name] if read_headers(m.headers() or []).ce_id is None]
    assert foreign.value() == letter_value(station)
    for topic in CATALOGUE:
        for message in records.get(topic.name, []):
            if message is foreign:
                continue
            headers = message.headers() or []
            assert headers == _rebuilt_headers(topic, message), (topic.name, headers)
            assert read_headers(headers).ce_type in topic.ce_types

    events = [
        decode_event(m.value()) for m in _by_key(records[EVENTS.name], station) if m is not foreign
    ]
    assert (events[0].kind, events[-1].kind) == ("connected", "disconnected")
    assert {e.action for e in events} >= {
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StopTransaction",
    }
    sessions = [decode_session(m.value()) for m in records[SESSIONS.name]]
    assert [(s.station_id, s.event) for s in sessions] == [
        (station, "started"),
        (station, "completed"),
    ]
    assert sessions[-1].energy_wh == 2500.0
    presence = [m.value() for m in _by_key(records[PRESENCE.name], station)]
    assert presence[0] is not None and presence[-1] is None
    stations = [decode_station(m.value()) for m in _by_key(records[STATIONS.name], removed)]
    assert stations[0] is not None and stations[-1] is None
    tokens = [decode_id_token(m.value()) for m in records[ID_TOKENS.name]]
    assert [(t.id_token, t.status) for t in tokens if t is not None] == [(system.tag, "Accepted")]
    (letter,) = [decode_dead_letter(m.value()) for m in records[DEAD_LETTER.name]]
    assert (letter.worker, letter.record.topic) == ("sessions", EVENTS.name)
    assert letter.reason.startswith("undecodable")

    # one partition holds all of the station's records, whoever wrote them with whichever client
    placed = {(name, m.partition()) for name, ms in records.items() for m in _by_key(ms, station)}
    assert len({partition for _, partition in placed}) == 1, sorted(placed)
    assert {name for name, _ in placed} >= {EVENTS.name, COMMANDS.name, DEAD_LETTER.name}

    # csms compresses with lz4 (CSMS_KAFKA_COMPRESSION); the test's own command is zstd
    (command,) = [
        m for m in records[COMMANDS.name] if read_headers(m.headers()).ce_source == SOURCE
    ]
    assert _batch_of(batches[COMMANDS.name], command).codec == "zstd"
    own = {_batch_of(batches[COMMANDS.name], command), _batch_of(batches[EVENTS.name], foreign)}
    by_csms = {name: {b.codec for b in found if b not in own} for name, found in batches.items()}
    assert by_csms == {
        t.name: set() if t in (ALERTS, SILENCES, SITES, STATION_STATUS) else {"lz4"}
        for t in CATALOGUE
    }


async def _charge_and_command(system: System, reader: Reader, station: str) -> CommandResult:
    """The station's day, a command from librdkafka that it executes, and that command's result."""
    tag, bootstrap = system.tag, system.kafka.bootstrap
    async with connect16(system.gateway.url(station)) as cp:
        await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        await cp.call(call16.Heartbeat())
        await cp.call(call16.StatusNotification(1, "NoError", "Available"))
        assert (await cp.call(call16.Authorize(tag))).id_tag_info["status"] == "Accepted"
        now = datetime.now(UTC).isoformat()
        started = await cp.call(call16.StartTransaction(1, tag, 10_000, now))
        await cp.call(
            call16.StopTransaction(12_500, now, started.transaction_id, reason="EVDisconnected")
        )

        command = StationCommand(
            command_id=str(uuid.uuid4()),
            station_id=station,
            kind="call",
            action="GetConfiguration",
            ocpp_version="1.6",
            created_at=datetime.now(UTC),
            source=SOURCE,
            timeout_s=30,
            payload=_json({"key": ["HeartbeatInterval"]}),
        )
        writer = _writer(bootstrap, "zstd")
        _write(
            writer,
            COMMANDS.name,
            record_key(station),
            encode_command(command),
            command_headers(command),
        )
        # a record the sessions worker cannot decode: it goes to the dead-letter topic
        _write(
            _writer(bootstrap, "lz4"),
            EVENTS.name,
            record_key(station),
            letter_value(station),
            [("ocpp-action", b"StartTransaction")],
        )
        ce_id = f"{command.command_id}:result".encode()
        await reader.until(
            lambda r: any(("ce_id", ce_id) in (m.headers() or []) for m in r[COMMAND_RESULTS.name]),
            "the command's result",
        )
    (answer,) = [
        m for m in reader.records[COMMAND_RESULTS.name] if ("ce_id", ce_id) in (m.headers() or [])
    ]
    return decode_command_result(answer.value())
