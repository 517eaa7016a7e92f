"""csms's own produce path: requests byte for byte as Kafka's schema has them, and retries.

The tests that write to Kafka run for both produce paths (``CSMS_KAFKA_PRODUCE_PATH``
csms and aiokafka) and check what the topic holds afterwards, read back by aiokafka's
consumer: with idempotence on, every record exactly once and in order per key. The
faults that need a cluster of their own (a leader killed, a broker frozen, two of three
brokers down) are in ``test_wire_cluster.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import types
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.metadata import MetadataResponse_v1
from aiokafka.protocol.produce import ProduceRequest_v7, ProduceResponse_v7
from aiokafka.protocol.transaction import InitProducerIdRequest_v0, InitProducerIdResponse_v0
from aiokafka.record.default_records import DefaultRecordBatch

from contracts.bus import clients
from contracts.bus.clients import assign_all, producer
from contracts.bus.publisher import Publisher, partition_for
from contracts.bus.wire import (
    STALLED_AFTER,
    Wire,
    WireSender,
    init_producer_id_request,
    init_producer_id_response,
    produce_request,
    produce_response,
)
from contracts.settings import Compression, KafkaSettings
from tests.bus.test_publisher import TOPIC, Outcomes
from tests.support.kafka import KafkaUnderTest, local_kafka

PATHS = ["csms", "aiokafka"]


def path_publisher(
    kafka: KafkaSettings,
    path: str,
    *,
    request_timeout: float = 30.0,
    delivery_timeout: float = 60.0,
    idempotence: bool = True,
    compression: Compression = "lz4",
) -> Publisher:
    """A Publisher on ``path`` as ``clients.publisher`` makes it, with these timeouts.

    aiokafka's path has no delivery timeout with idempotence: it retries a batch until
    it is stored (its ``send_batch`` fails only a batch whose partition has no leader).
    """
    settings = dataclasses.replace(
        kafka, produce_path=path, idempotence=idempotence, compression=compression
    )
    client_id = f"test-wire-{path}"
    wire = clients.wire(settings, client_id)
    timeout_ms = int(request_timeout * 1000)
    if wire is None:
        client = producer(settings, client_id, request_timeout_ms=timeout_ms)
    else:
        wire = dataclasses.replace(
            wire, request_timeout=request_timeout, delivery_timeout=delivery_timeout
        )
        client = producer(
            settings,
            client_id,
            enable_idempotence=False,
            compression_type=None,
            request_timeout_ms=timeout_ms,
        )
    return Publisher(client, linger=0.005, wire=wire)


class Stream:
    """Records numbered in the order they are published, over a few keys, with their outcomes."""

    def __init__(self, publisher: Publisher, keys: int = 8, value: bytes = b"") -> None:
        tag = uuid.uuid4().hex[:8]
        self.publisher = publisher
        self.keys = [f"CP-{tag}-{k}".encode() for k in range(keys)]
        self.value = value
        self.outcomes = Outcomes()
        self.count = 0

    def publish(self, records: int) -> None:
        for _ in range(records):
            n = self.count
            self.count += 1
            key = self.keys[n % len(self.keys)]
            self.publisher.publish(TOPIC, key, b"%d:%s" % (n, self.value), [], self.outcomes(n))

    async def steady(self, stop: asyncio.Event, per_round: int = 2) -> None:
        """``per_round`` records every 5 ms until ``stop`` is set."""
        while not stop.is_set():
            self.publish(per_round)
            await asyncio.sleep(0.005)

    async def finish(self, within: float) -> None:
        """Wait until every record has its outcome."""
        await asyncio.wait_for(self.publisher.flush(), within)


Start = Callable[..., Awaitable[Publisher]]


@pytest.fixture
async def started() -> AsyncIterator[Start]:
    """``await started(settings, path, **options)``: a started :func:`path_publisher`.

    Each is stopped, with its producer, after the test, whether it passed or not.
    """
    made: list[Publisher] = []

    async def start(settings: KafkaSettings, path: str, **options: Any) -> Publisher:
        publisher = path_publisher(settings, path, **options)
        made.append(publisher)
        await publisher.producer.start()
        await publisher.start(TOPIC)
        return publisher

    yield start
    for publisher in made:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(publisher.stop(), 10)
        await publisher.producer.stop()


async def stored(kafka: KafkaSettings, keys: typing.Collection[bytes]) -> dict[bytes, list[int]]:
    """The record numbers the topic holds per key of ``keys``, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[bytes, list[int]] = collections.defaultdict(list)
    try:
        partitions = await assign_all(consumer, TOPIC, within=30)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(60):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.key in keys:
                            assert record.value is not None
                            found[record.key].append(int(record.value.split(b":")[0]))
    finally:
        await consumer.stop()
    return found


def assert_exactly_once_in_order(stream: Stream, on_topic: dict[bytes, list[int]]) -> None:
    """One outcome per record; stored at most once, in order per key; every acked one stored."""
    outcomes = stream.outcomes
    assert sorted(outcomes.acks) == list(range(stream.count))
    assert set(outcomes.acks.values()) == {1}, "a callback called more than once"
    numbers = [n for values in on_topic.values() for n in values]
    duplicates = [n for n, times in collections.Counter(numbers).items() if times > 1]
    assert duplicates == [], f"stored more than once: {sorted(duplicates)[:20]}"
    for values in on_topic.values():
        assert values == sorted(values), "stored out of order"
    lost = set(range(stream.count)) - outcomes.failed - set(numbers)
    assert lost == set(), f"acknowledged, not stored: {sorted(lost)[:20]}"


def assert_all_stored_once(stream: Stream, on_topic: dict[bytes, list[int]]) -> None:
    assert stream.outcomes.errors == []
    assert_exactly_once_in_order(stream, on_topic)
    assert sorted(n for values in on_topic.values() for n in values) == list(range(stream.count))


def _as_aiokafka_writes_it(request: object, correlation_id: int, client_id: str) -> bytes:
    header = request.build_request_header(correlation_id, client_id)  # type: ignore[attr-defined]
    body = header.encode() + request.encode()  # type: ignore[attr-defined]
    return len(body).to_bytes(4, "big") + body


def test_a_produce_request_is_the_bytes_kafkas_schema_gives() -> None:
    batches = [("a", 0, b"batch-a0"), ("b", 3, b"batch-b3"), ("a", 2, b"batch-a2")]
    expected = ProduceRequest_v7(
        None, -1, 30000, [("a", [(0, b"batch-a0"), (2, b"batch-a2")]), ("b", [(3, b"batch-b3")])]
    )
    assert produce_request(17, "csms-gateway-x", 30000, batches) == _as_aiokafka_writes_it(
        expected, 17, "csms-gateway-x"
    )


def test_a_produce_response_gives_each_partitions_error_code() -> None:
    response = ProduceResponse_v7(
        [("a", [(0, 0, 41, -1, 0), (2, 6, -1, -1, 0)]), ("b", [(3, 46, -1, -1, 0)])], 0
    )
    frame = (99).to_bytes(4, "big") + response.encode()
    assert produce_response(frame) == {("a", 0): 0, ("a", 2): 6, ("b", 3): 46}


def test_init_producer_id_request_and_response() -> None:
    expected = InitProducerIdRequest_v0(None, 60000)
    assert init_producer_id_request(5, "c", 60000) == _as_aiokafka_writes_it(expected, 5, "c")
    frame = (5).to_bytes(4, "big") + InitProducerIdResponse_v0(0, 0, 4711, 3).encode()
    assert init_producer_id_response(frame) == (0, 4711, 3)


async def test_a_batch_carries_the_producer_id_and_its_partitions_next_sequence(
    kafka: KafkaUnderTest,
) -> None:
    client = producer(kafka.settings, "test-wire-sequence")
    await client.start()
    sender = WireSender(client, Wire(client_id="t", idempotence=True))
    sender._producer_id, sender._epoch = 4711, 2  # as InitProducerId would have answered
    sender._sequences[(TOPIC, 1)] = 40
    written: list[bytes] = []

    class Recorder:
        connected = True

        def request(self, build):  # type: ignore[no-untyped-def]
            written.append(build(1))
            return asyncio.get_running_loop().create_future()

    builder = client.create_batch()
    for n in range(3):
        builder.append(timestamp=None, key=b"k", value=b"%d" % n, headers=[])
    sender.send(TOPIC, 1, builder, 3, lambda exc: None)
    sender._round = None
    batch = sender._queued.pop()
    sender._write(1, Recorder(), [batch])  # type: ignore[arg-type]
    await client.stop()

    assert batch.data is not None and written and batch.data in written[0]
    stored = DefaultRecordBatch(batch.data)
    assert (stored.producer_id, stored.producer_epoch, stored.base_sequence) == (4711, 2, 40)


# ------------------------------------------------------------------ a stalled leader, in process


def _metadata(leader: int) -> MetadataResponse_v1:
    """Brokers 1, 2 and 3; ``leader`` leads partition 0 of TOPIC."""
    brokers = [(node, "127.0.0.1", 9000 + node, None) for node in (1, 2, 3)]
    return MetadataResponse_v1(brokers, 1, [(0, TOPIC, False, [(0, 0, leader, [1, 2, 3], [])])])


class _Client:
    """aiokafka's client as the sender uses it: metadata, asked of a broker on request."""

    def __init__(self) -> None:
        self.cluster = ClusterMetadata()
        self.cluster.update_metadata(_metadata(1))
        self.leader = 1  # what the brokers answer
        self.asked: list[int] = []
        self.forced = 0

    async def send(self, node: int, request: object) -> MetadataResponse_v1:
        self.asked.append(node)
        return _metadata(self.leader)

    def force_metadata_update(self) -> None:
        self.forced += 1


class _Connection:
    """A connection whose requests the test answers."""

    connected = True

    def __init__(self) -> None:
        self.requests: list[asyncio.Future[bytes]] = []

    def request(self, build: Callable[[int], bytes]) -> asyncio.Future[bytes]:
        self.requests.append(asyncio.get_running_loop().create_future())
        return self.requests[-1]


def _answer(request: asyncio.Future[bytes], code: int | None) -> None:
    """A Produce answer for partition 0 of TOPIC with error ``code``; None: the connection lost."""
    if code is None:
        request.set_exception(KafkaConnectionError("lost"))
    else:
        response = ProduceResponse_v7([(TOPIC, [(0, code, 7, -1, 0)])], 0)
        request.set_result((1).to_bytes(4, "big") + response.encode())


async def _turns() -> None:
    for _ in range(3):  # a round, an answer's callback
        await asyncio.sleep(0)


@dataclasses.dataclass
class _Stalled:
    sender: WireSender
    client: _Client
    connections: dict[int, _Connection]
    outcomes: list[BaseException | None]


async def _a_batch_stalled_at_broker_1() -> _Stalled:
    """A batch of two records written to broker 1, unanswered for longer than STALLED_AFTER."""
    client = _Client()
    sender = WireSender(
        types.SimpleNamespace(client=client),  # type: ignore[arg-type]
        Wire(client_id="t", idempotence=True),
    )
    sender._producer_id, sender._epoch = 4711, 0
    connections = {node: _Connection() for node in (1, 2, 3)}
    sender._connections.update(connections)  # type: ignore[arg-type]
    outcomes: list[BaseException | None] = []
    builder = BatchBuilder(16384, 0)
    for n in range(2):
        builder.append(timestamp=None, key=b"k", value=b"%d" % n, headers=[])
    sender.send(TOPIC, 0, builder, 2, outcomes.append)
    await _turns()
    (batch,) = sender._in_flight
    assert batch.node == 1 and len(connections[1].requests) == 1
    batch.sent_at -= STALLED_AFTER + 0.1
    return _Stalled(sender, client, connections, outcomes)


async def _check(stalled: _Stalled) -> None:
    """The sender's stall check and the metadata refresh it starts."""
    stalled.sender._check_stalls()
    assert stalled.sender._refreshing is not None
    await stalled.sender._refreshing
    await _turns()


@pytest.mark.parametrize("late", [0, 6, 45, None], ids=["stored", "not-leader", "sequence", "lost"])
@pytest.mark.parametrize("first", ["old", "new"])
async def test_a_batch_sent_to_the_new_leader_is_settled_once_by_its_answer(
    late: int | None, first: str
) -> None:
    stalled = await _a_batch_stalled_at_broker_1()
    stalled.client.leader = 2  # Kafka moved the partition
    await _check(stalled)

    assert stalled.client.asked and 1 not in stalled.client.asked, "asked the stalled broker"
    (old,) = stalled.connections[1].requests
    (new,) = stalled.connections[2].requests  # at once, no retry backoff
    answers = [(old, late), (new, 0)]
    for request, code in answers if first == "old" else reversed(answers):
        _answer(request, code)
        await _turns()

    sender = stalled.sender
    assert stalled.outcomes == [None]
    assert sender._sequences[(TOPIC, 0)] == 2 and sender._producer_id == 4711
    assert not sender._in_flight and not sender._queued and stalled.client.forced == 0


async def test_a_stalled_batch_whose_partition_did_not_move_waits_for_its_answer() -> None:
    stalled = await _a_batch_stalled_at_broker_1()
    await _check(stalled)  # a slow broker, not a frozen one: it still leads

    assert stalled.client.asked and 1 not in stalled.client.asked
    assert stalled.connections[2].requests == [] and stalled.sender._in_flight
    (request,) = stalled.connections[1].requests
    _answer(request, 0)
    await _turns()
    assert stalled.outcomes == [None] and stalled.sender._sequences[(TOPIC, 0)] == 2


async def abort_a_request_in_flight(stream: Stream) -> None:
    """Publish until a request is in flight, then abort its connection."""
    async with asyncio.timeout(30):
        while not _abort_in_flight(stream.publisher):
            if stream.publisher.pending == 0:  # all answered before it was seen: more
                stream.publish(10)
            await asyncio.sleep(0)


def _abort_in_flight(publisher: Publisher) -> bool:
    """Abort every connection the path produces on that has a request in flight."""
    if publisher._wire_sender is not None:
        connections = [
            c.transport for c in publisher._wire_sender._connections.values() if c._waiting
        ]
    else:
        connections = [
            c._writer.transport
            for c in publisher.producer.client._conns.values()
            if c._requests and c._writer is not None
        ]
    for transport in connections:
        assert transport is not None
        transport.abort()  # as a broker restart or a network fault would
    return bool(connections)


@pytest.mark.parametrize("path", PATHS)
async def test_a_connection_aborted_with_a_request_in_flight_stores_each_record_once(
    kafka: KafkaUnderTest, started: Start, path: str
) -> None:
    publisher = await started(kafka.settings, path)
    stream = Stream(publisher, keys=3)
    aborted = 0
    for _ in range(5):  # the broker stored what it could not answer: sent again, deduplicated
        stream.publish(40)
        await abort_a_request_in_flight(stream)
        aborted += 1
    stream.publish(40)
    await stream.finish(within=60)

    assert aborted == 5
    assert_all_stored_once(stream, await stored(kafka.settings, stream.keys))


async def test_without_idempotence_a_resent_batch_is_stored_at_least_once_in_order(
    kafka: KafkaUnderTest, started: Start
) -> None:
    publisher = await started(kafka.settings, "csms", idempotence=False)
    stream = Stream(publisher, keys=1)
    stream.publish(50)
    await abort_a_request_in_flight(stream)
    stream.publish(50)
    await stream.finish(within=30)

    everything = list(range(stream.count))
    assert stream.outcomes.errors == [] and sorted(stream.outcomes.acks) == everything
    (numbers,) = (await stored(kafka.settings, stream.keys)).values()
    # a batch is sent again before the next one is sent
    assert list(dict.fromkeys(numbers)) == everything


@pytest.mark.parametrize("codec", typing.get_args(Compression))
@pytest.mark.parametrize("path", PATHS)
async def test_every_codec_is_stored_by_kafka_and_read_back(
    kafka: KafkaUnderTest, started: Start, path: str, codec: Compression
) -> None:
    publisher = await started(kafka.settings, path, compression=codec)
    stream = Stream(publisher, keys=4, value=b'{"meterValue":"%s"}' % (b"12.5," * 40))
    stream.publish(400)
    # one record of 256 KiB: more than one lz4 block (64 KiB) in its frame
    big = Stream(publisher, keys=1, value=b"0123456789abcdef" * 16384)
    big.publish(1)
    await stream.finish(within=30)

    assert_all_stored_once(stream, await stored(kafka.settings, stream.keys))
    assert_all_stored_once(big, await stored(kafka.settings, big.keys))


@pytest.fixture(scope="module")
def forgetful_kafka() -> Iterator[KafkaUnderTest]:
    """A node that forgets an idempotent producer after a second without its records."""
    expiring = {
        "producer.id.expiration.ms": "1000",
        "producer.id.expiration.check.interval.ms": "200",
    }
    with local_kafka(overrides=expiring) as (_, kafka):
        yield kafka


@pytest.mark.parametrize("path", PATHS)
async def test_a_producer_the_broker_forgot_goes_on_with_its_records_stored_once(
    forgetful_kafka: KafkaUnderTest, started: Start, path: str
) -> None:
    # Kafka forgets an idempotent producer's state on a partition it has not written for
    # producer.id.expiration.ms (a day by default: a quiet partition); the producer's next
    # batch there carries a sequence the broker no longer has (Kafka accepts it, KIP-360)
    kafka = forgetful_kafka
    publisher = await started(kafka.settings, path, delivery_timeout=30)
    stream = Stream(publisher, keys=4)
    for _ in range(3):
        stream.publish(40)
        await asyncio.wait_for(publisher.flush(), 30)
        await asyncio.sleep(2)  # the broker expires the producer's state meanwhile
    stream.publish(40)
    await stream.finish(within=60)

    assert_all_stored_once(stream, await stored(kafka.settings, stream.keys))


AIOKAFKA_KEEPS_THE_GAP = pytest.mark.xfail(
    strict=True,
    reason="aiokafka 0.14 fails a batch refused with OUT_OF_ORDER_SEQUENCE_NUMBER and, its "
    "sequence never reset, every later batch of that partition",
)


@pytest.mark.parametrize("path", ["csms", pytest.param("aiokafka", marks=AIOKAFKA_KEEPS_THE_GAP)])
async def test_a_batch_refused_for_its_sequence_is_stored_under_a_new_producer_id(
    kafka: KafkaUnderTest, started: Start, path: str
) -> None:
    publisher = await started(kafka.settings, path, delivery_timeout=30)
    stream = Stream(publisher, keys=1)
    (key,) = stream.keys
    tp = (TOPIC, partition_for(key, publisher.partitions(TOPIC)))
    stream.publish(10)
    await asyncio.wait_for(publisher.flush(), 30)
    # the next sequence jumps, as after a batch given up: the broker answers
    # OUT_OF_ORDER_SEQUENCE_NUMBER and stores nothing of that batch
    sender = publisher._wire_sender
    if sender is not None:
        first_id = sender._producer_id
        sender._sequences[tp] += 7
    else:
        manager = publisher.producer._txn_manager
        manager._sequence_numbers[TopicPartition(*tp)] += 7
    stream.publish(10)
    await asyncio.wait_for(publisher.flush(), 40)
    stream.publish(10)
    await stream.finish(within=40)

    assert_all_stored_once(stream, await stored(kafka.settings, stream.keys))
    if sender is not None:
        assert sender._producer_id not in (first_id, -1)
