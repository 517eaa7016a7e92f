"""Kafka's Produce and InitProducerId requests, encoded by hand, on a connection of our own.

The :class:`~contracts.bus.publisher.Publisher` already builds whole record
batches. Handing them to aiokafka's ``send_batch`` costs more than writing
them (a sender task woken per round, futures, a timeout and a handler per
request, requests encoded and responses decoded field by field in Python):
through the Publisher, in a closed loop on Apache Kafka with idempotence on,
289 against 150 µs of the producing process's CPU per produce request
(``tests.benchmarks.produce_request``, ADR 0013). This module writes
one Produce request per broker per round with every batch due for it, and
reads back only what decides a batch's fate: its partition's error code.

What stays with aiokafka: bootstrapping, cluster metadata (which broker
leads which partition), building record batches, and SASL, which this path
does not speak (``clients.wire`` returns ``None`` for SASL and the Publisher
keeps aiokafka's sender there). Compression is the path's own
(``contracts.bus.compression``: lz4 at its fast level, not aiokafka's level 9).

Guarantees, the same as aiokafka's with ``acks=all``: a batch is reported done
only when its partition's leader answered with no error; retriable errors
and lost connections send the same bytes again, after refreshing metadata,
until ``delivery_timeout``; with idempotence every batch carries the
producer id, epoch and its partition's next sequence, so a batch written
twice is stored once. A batch given up after it may have been written ends
the producer id: later batches get a new one, so that no later batch can be
taken for a duplicate of it. A batch the broker refuses for its producer state
(a sequence it does not expect) was not stored: it is sent again under a new
producer id. Tested on a three-broker cluster under broker faults
(``tests/bus/test_wire_cluster.py``).

A leader that stops answering without closing its connections (frozen: a long
GC pause, a hung machine) would hold its batches for the whole request timeout,
although Kafka hands its partitions to another broker after its session timeout
(ADR 0013, "A frozen leader"). So a batch unanswered for ``STALLED_AFTER``
seconds makes the sender ask another broker for metadata every ``CHECK_EVERY``
seconds, and a stalled batch whose partition has a new leader is sent there at
once: a new attempt, the same bytes. Only the answer to a batch's latest attempt
counts; the old leader's late answer is ignored, so a batch is settled once. With
idempotence the new leader stores the batch once (a copy that reached it is
answered as a duplicate); without it, the batch may be stored twice, as with any
retry.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import random
import ssl
import struct
import time
from collections.abc import Callable, Sequence
from typing import cast

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    for_code,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.metadata import MetadataRequest

from contracts.bus.compression import compress, restamp
from contracts.bus.outage import Outage
from contracts.settings import Compression

__all__ = [
    "BrokerConnection",
    "Wire",
    "WireSender",
    "init_producer_id_request",
    "init_producer_id_response",
    "produce_request",
    "produce_response",
]

log = logging.getLogger(__name__)

PRODUCE, PRODUCE_VERSION = 0, 7  # v7: zstd batches; every broker since Kafka 2.1 (and 4.x)
INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION = 22, 0
ACKS_ALL = -1
NO_ERROR, DUPLICATE_SEQUENCE_NUMBER = 0, 46
# the broker refused the batch for its producer state (it did not store it): the batch is
# sent again under a new producer id, from sequence 0
PRODUCER_STATE_LOST = {45, 47, 59}  # out of order sequence, invalid epoch, unknown producer id
RETRY_BACKOFF = 0.1  # seconds before a batch is sent again
# a batch unanswered this long (produce answers come in milliseconds) makes its broker suspect:
# while it is, metadata is asked of another broker every CHECK_EVERY seconds (one request at
# a time, each given METADATA_TIMEOUT), and a batch whose partition moved goes to its new leader
STALLED_AFTER = 2.0
CHECK_EVERY = 0.5
METADATA_TIMEOUT = 1.0
SEQUENCE_WRAP = 2**31

# Called once per record (or batch): None when Kafka acknowledged it, else the exception.
Done = Callable[[BaseException | None], None]

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_PARTITION_RESULT = struct.Struct(">ihqqq")  # index, error, base offset, append time, log start
_INIT_RESULT = struct.Struct(">ihqh")  # throttle, error, producer id, epoch


# --------------------------------------------------------------------------- encoding


def _string(text: str | None) -> bytes:
    if text is None:
        return _INT16.pack(-1)
    data = text.encode()
    return _INT16.pack(len(data)) + data


def _header(api_key: int, version: int, correlation_id: int, client_id: str) -> bytes:
    return struct.pack(">hhi", api_key, version, correlation_id) + _string(client_id)


def _frame(parts: list[bytes]) -> bytes:
    size = sum(len(part) for part in parts)
    return b"".join([_INT32.pack(size), *parts])


def produce_request(
    correlation_id: int,
    client_id: str,
    timeout_ms: int,
    batches: Sequence[tuple[str, int, bytes]],
) -> bytes:
    """A whole Produce v7 request (acks=all) for ``(topic, partition, record batch)`` items."""
    by_topic: dict[str, list[tuple[int, bytes]]] = collections.defaultdict(list)
    for topic, partition, data in batches:
        by_topic[topic].append((partition, data))
    parts = [
        _header(PRODUCE, PRODUCE_VERSION, correlation_id, client_id),
        _string(None),  # transactional id
        struct.pack(">hii", ACKS_ALL, timeout_ms, len(by_topic)),
    ]
    for topic, partitions in by_topic.items():
        parts += [_string(topic), _INT32.pack(len(partitions))]
        for partition, data in partitions:
            parts += [struct.pack(">ii", partition, len(data)), data]
    return _frame(parts)


def produce_response(frame: bytes) -> dict[tuple[str, int], int]:
    """The error code per ``(topic, partition)`` of a Produce v7 response (without its size)."""
    results: dict[tuple[str, int], int] = {}
    (topics,) = _INT32.unpack_from(frame, 4)  # after the correlation id
    at = 8
    for _ in range(topics):
        (length,) = _INT16.unpack_from(frame, at)
        topic = frame[at + 2 : at + 2 + length].decode()
        at += 2 + length
        (partitions,) = _INT32.unpack_from(frame, at)
        at += 4
        for _ in range(partitions):
            partition, error, _offset, _time, _start = _PARTITION_RESULT.unpack_from(frame, at)
            at += _PARTITION_RESULT.size
            results[(topic, partition)] = error
    return results


def init_producer_id_request(correlation_id: int, client_id: str, timeout_ms: int) -> bytes:
    """An InitProducerId v0 request for an idempotent producer (no transactional id)."""
    return _frame(
        [
            _header(INIT_PRODUCER_ID, INIT_PRODUCER_ID_VERSION, correlation_id, client_id),
            _string(None),
            _INT32.pack(timeout_ms),
        ]
    )


def init_producer_id_response(frame: bytes) -> tuple[int, int, int]:
    """``(error code, producer id, epoch)`` of an InitProducerId v0 response."""
    _throttle, error, producer_id, epoch = _INIT_RESULT.unpack_from(frame, 4)
    return error, producer_id, epoch


def correlation_id_of(frame: bytes) -> int:
    return int(_INT32.unpack_from(frame)[0])


# --------------------------------------------------------------------------- connection


class BrokerConnection(asyncio.Protocol):
    """One connection to a broker: requests written whole, answered in order.

    Kafka answers a connection's requests in the order they were sent, so the
    waiting futures are a queue. A request unanswered after ``request_timeout``
    seconds closes the connection; closing fails every waiting request with
    ``KafkaConnectionError``.
    """

    def __init__(self, request_timeout: float) -> None:
        self.request_timeout = request_timeout
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiting: collections.deque[tuple[int, float, asyncio.Future[bytes]]] = (
            collections.deque()
        )
        self._next_id = 0
        self._watch: asyncio.TimerHandle | None = None

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        request_timeout: float,
        connect_timeout: float = 10.0,
    ) -> BrokerConnection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _, connection = await loop.create_connection(
                lambda: cls(request_timeout), host, port, ssl=ssl_context
            )
        return connection

    @property
    def connected(self) -> bool:
        return self.transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self._watch = self._loop.call_later(1.0, self._check_timeouts)

    def request(self, build: Callable[[int], bytes]) -> asyncio.Future[bytes]:
        """Write the request ``build(correlation_id)``; the future gets the response frame."""
        future: asyncio.Future[bytes] = self._loop.create_future()
        if self.transport is None:
            future.set_exception(KafkaConnectionError("connection to the broker is closed"))
            return future
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        self._waiting.append((self._next_id, time.monotonic(), future))
        self.transport.write(build(self._next_id))
        return future

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            (size,) = _INT32.unpack_from(buffer)
            if len(buffer) < 4 + size:
                return
            frame = bytes(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            if not self._waiting or self._waiting[0][0] != correlation_id_of(frame):
                self.close(KafkaConnectionError("response out of order"))
                return
            _, _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(frame)

    def close(self, reason: BaseException | None = None) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._fail_all(reason or KafkaConnectionError("connection to the broker closed"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(KafkaConnectionError(f"connection to the broker lost: {exc!r}"))

    def _fail_all(self, reason: BaseException) -> None:
        self.transport = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self._waiting:
            _, _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(reason)

    def _check_timeouts(self) -> None:
        self._watch = self._loop.call_later(1.0, self._check_timeouts)
        if self._waiting and time.monotonic() - self._waiting[0][1] > self.request_timeout:
            self.close(KafkaTimeoutError("the broker did not answer within the request timeout"))


# --------------------------------------------------------------------------- sender


@dataclasses.dataclass(frozen=True)
class Wire:
    """How the wire path connects and writes: made by ``contracts.bus.clients.wire``.

    The batches it is handed are uncompressed; it compresses them with ``compression``.
    """

    client_id: str
    idempotence: bool
    compression: Compression = "none"
    ssl_context: ssl.SSLContext | None = None
    request_timeout: float = 30.0
    delivery_timeout: float = 60.0  # a batch not written by then fails


class _Batch:
    __slots__ = (
        "attempt",
        "builder",
        "created_at",
        "data",
        "done",
        "node",
        "producer_id",
        "records",
        "sent_at",
        "sequence",
        "tp",
    )

    def __init__(
        self,
        tp: tuple[str, int],
        builder: BatchBuilder,
        records: int,
        done: Done,
        created_at: float,
    ) -> None:
        self.tp = tp
        self.builder = builder
        self.records = records
        self.done = done
        self.data: bytes | None = None  # built on first send, then resent unchanged
        self.producer_id = -1
        self.sequence = 0
        self.created_at = created_at  # the delivery timeout counts from here
        # each write is a new attempt; only the answer to the latest one counts
        self.attempt = 0
        self.node = -1  # the broker the latest attempt waits for, -1 when none waits
        self.sent_at = 0.0


class WireSender:
    """Sends closed record batches to their partitions' leaders, one request per broker per round.

    The caller keeps at most one batch per partition in flight (the Publisher
    does), which keeps a partition's batches and sequences in order, also when a
    stalled batch is sent to its partition's new leader.
    """

    def __init__(self, producer: AIOKafkaProducer, wire: Wire) -> None:
        self.producer = producer
        self.wire = wire
        self._loop = asyncio.get_running_loop()
        self._queued: list[_Batch] = []
        self._round: asyncio.Handle | None = None
        self._connections: dict[int, BrokerConnection] = {}
        self._connecting: dict[int, asyncio.Task[None]] = {}
        self._producer_id = -1
        self._epoch = -1
        self._sequences: dict[tuple[str, int], int] = {}
        self._renewing: asyncio.Task[None] | None = None
        self._outages: dict[int, Outage] = {}  # per broker
        self._in_flight: set[_Batch] = set()  # written, their latest attempt unanswered
        self._watch: asyncio.TimerHandle | None = None  # the stall check, while any is in flight
        self._refreshing: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> None:
        if self.wire.idempotence:
            await self._renew_producer_id()

    async def stop(self) -> None:
        self.closed = True
        for task in [*self._connecting.values(), self._renewing, self._refreshing]:
            if task is not None:
                task.cancel()
        if self._watch is not None:
            self._watch.cancel()
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def send(
        self,
        topic: str,
        partition: int,
        builder: BatchBuilder,
        records: int,
        done: Done,
        created_at: float | None = None,
    ) -> None:
        """Send a closed batch; ``done`` gets None once its leader stored it, else the error.

        The batch fails once it is ``delivery_timeout`` older than ``created_at``
        (``time.monotonic()``, default now: when its first record came, as Kafka's
        producers count), at its first failed attempt after that.
        """
        created = time.monotonic() if created_at is None else created_at
        self._queue(_Batch((topic, partition), builder, records, done, created))

    # ------------------------------------------------------------------ rounds

    def _queue(self, batch: _Batch) -> None:
        self._queued.append(batch)
        if self._round is None:
            self._round = self._loop.call_soon(self._send_round)

    def _send_round(self) -> None:
        """One request per leader with every queued batch it leads."""
        self._round = None
        queued, self._queued = self._queued, []
        by_leader: dict[int, list[_Batch]] = collections.defaultdict(list)
        cluster = self.producer.client.cluster
        for batch in queued:
            leader = cluster.leader_for_partition(TopicPartition(*batch.tp))
            if leader is None or leader < 0:
                self._retry(batch, KafkaError(f"no leader known for {batch.tp}"), refresh=True)
            else:
                by_leader[leader].append(batch)
        for leader, batches in by_leader.items():
            connection = self._connections.get(leader)
            if connection is None or not connection.connected:
                self._connect(leader, batches)
            else:
                self._write(leader, connection, batches)

    def _write(self, node: int, connection: BrokerConnection, batches: list[_Batch]) -> None:
        items: list[tuple[str, int, bytes]] = []
        sent: list[_Batch] = []
        for batch in batches:
            if self.wire.idempotence and batch.producer_id < 0:
                if self._producer_id < 0:  # being renewed: the batch waits for the new id
                    self._retry(batch, None)
                    continue
                batch.producer_id = self._producer_id
                batch.sequence = self._sequences.get(batch.tp, 0)
                if batch.data is None:
                    batch.builder._set_producer_state(
                        self._producer_id, self._epoch, batch.sequence
                    )
                else:  # refused for its producer state: the same records under the new id
                    batch.data = restamp(batch.data, self._producer_id, self._epoch, batch.sequence)
            if batch.data is None:
                batch.data = compress(bytes(batch.builder._build()), self.wire.compression)
            items.append((batch.tp[0], batch.tp[1], batch.data))
            sent.append(batch)
        if not sent:
            return
        timeout_ms = int(self.wire.request_timeout * 1000)
        response = connection.request(
            lambda correlation_id: produce_request(
                correlation_id, self.wire.client_id, timeout_ms, items
            )
        )
        now = time.monotonic()
        attempts: list[tuple[_Batch, int]] = []
        for batch in sent:
            batch.attempt += 1
            batch.node, batch.sent_at = node, now
            self._in_flight.add(batch)
            attempts.append((batch, batch.attempt))
        response.add_done_callback(lambda future: self._answered(future, attempts))
        if self._watch is None:
            self._watch = self._loop.call_later(CHECK_EVERY, self._check_stalls)

    def _answered(self, future: asyncio.Future[bytes], attempts: list[tuple[_Batch, int]]) -> None:
        """Settle the batches of an answered (or failed) request whose attempt is their latest.

        An earlier attempt's answer is ignored: the batch was sent again since
        (:meth:`_resend_moved`), and that attempt's answer settles it.
        """
        batches = [batch for batch, attempt in attempts if batch.attempt == attempt]
        for batch in batches:
            self._landed(batch)
        if not batches:
            return
        error = KafkaConnectionError() if future.cancelled() else future.exception()
        if error is not None:
            for batch in batches:
                self._retry(batch, error, refresh=True)
            return
        errors = produce_response(future.result())
        for batch in batches:
            code = errors.get(batch.tp)
            if code is None:
                self._retry(batch, KafkaError(f"the broker did not answer for {batch.tp}"))
            elif code in (NO_ERROR, DUPLICATE_SEQUENCE_NUMBER):
                if batch.producer_id == self._producer_id and batch.producer_id >= 0:
                    self._sequences[batch.tp] = (batch.sequence + batch.records) % SEQUENCE_WRAP
                batch.done(None)
            else:
                self._settle_error(batch, code)

    def _settle_error(self, batch: _Batch, code: int) -> None:
        error_type = for_code(code)
        error = error_type()
        if code in PRODUCER_STATE_LOST and self.wire.idempotence:
            # refused, so not stored: sent again, stamped under a new producer id
            self._forget_producer_id(batch)
            batch.producer_id = -1
            self._retry(batch, error)
        elif error_type.retriable:
            self._retry(batch, error, refresh=error_type.invalid_metadata)
        else:
            batch.done(error)

    def _retry(self, batch: _Batch, error: BaseException | None, *, refresh: bool = False) -> None:
        if self.closed:
            batch.done(error or KafkaConnectionError("the publisher stopped"))
            return
        if time.monotonic() - batch.created_at > self.wire.delivery_timeout:
            self._fail(
                batch, KafkaTimeoutError(f"not stored within the delivery timeout: {error!r}")
            )
            return
        if refresh:
            self.producer.client.force_metadata_update()
        self._loop.call_later(RETRY_BACKOFF, self._queue, batch)

    def _fail(self, batch: _Batch, error: BaseException) -> None:
        """Give a batch up; if it may have been stored, later batches get a new producer id."""
        self._forget_producer_id(batch)
        batch.done(error)

    def _landed(self, batch: _Batch) -> None:
        """The batch's latest attempt is over: answered, failed, or given up for a new one."""
        self._in_flight.discard(batch)
        batch.node = -1

    # ------------------------------------------------------------------ stalled leaders

    def _stalled(self) -> list[_Batch]:
        now = time.monotonic()
        return [batch for batch in self._in_flight if now - batch.sent_at > STALLED_AFTER]

    def _check_stalls(self) -> None:
        """Every ``CHECK_EVERY`` s while batches are in flight: act on those long unanswered."""
        self._watch = None
        if self.closed:
            return
        if self._in_flight:
            self._watch = self._loop.call_later(CHECK_EVERY, self._check_stalls)
        if self._resend_moved() and (self._refreshing is None or self._refreshing.done()):
            suspects = {batch.node for batch in self._stalled()}
            self._refreshing = self._loop.create_task(self._refresh_metadata(suspects))

    def _resend_moved(self) -> bool:
        """Send each stalled batch whose partition has a new leader there; True if any stays.

        The new attempt carries the same bytes (producer id, epoch, sequence): a copy the
        old leader passed on before it stalled is answered as a duplicate, and stored once.
        """
        cluster = self.producer.client.cluster
        moved: collections.Counter[int] = collections.Counter()
        stalled = self._stalled()
        for batch in stalled:
            leader = cluster.leader_for_partition(TopicPartition(*batch.tp))
            if leader is not None and leader >= 0 and leader != batch.node:
                moved[batch.node] += 1
                batch.attempt += 1  # the old leader's answer, if any comes, is ignored
                self._landed(batch)
                self._queue(batch)
        for node, batches in moved.items():
            log.warning("kafka.leader_stalled_resent", extra={"node": node, "batches": batches})
        return len(stalled) > sum(moved.values())

    async def _refresh_metadata(self, suspects: set[int]) -> None:
        """Ask a broker not in ``suspects`` who leads what, then resend what moved.

        Not aiokafka's ``force_metadata_update``: it asks a random broker, perhaps the
        stalled one, and waits for it as long as its request timeout.
        """
        cluster = self.producer.client.cluster
        topics = sorted(cluster.topics())
        nodes = [broker.nodeId for broker in cluster.brokers() if broker.nodeId not in suspects]
        if not topics or not nodes:
            return
        node = random.choice(nodes)  # another one next time, should this one not answer
        try:
            async with asyncio.timeout(METADATA_TIMEOUT):
                metadata = await self.producer.client.send(node, MetadataRequest(topics))
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("kafka.metadata_failed", extra={"node": node, "error": repr(exc)})
            return
        if metadata.brokers:
            cluster.update_metadata(metadata)
            self._resend_moved()

    # ------------------------------------------------------------------ producer id

    def _forget_producer_id(self, batch: _Batch) -> None:
        """End the producer id ``batch`` was stamped with, if it is the current one."""
        if self.wire.idempotence and batch.producer_id == self._producer_id >= 0:
            self._producer_id = -1
            self._sequences.clear()
            if self._renewing is None or self._renewing.done():
                self._renewing = self._loop.create_task(self._renew_producer_id())

    # ------------------------------------------------------------------ connections

    def _opening(self, node: int) -> asyncio.Task[None]:
        """The attempt to connect to ``node``: the one under way, or a new one."""
        if node not in self._connecting:
            self._connecting[node] = self._loop.create_task(self._open(node))
        return self._connecting[node]

    def _connect(self, leader: int, batches: list[_Batch]) -> None:
        def requeue(_: object) -> None:
            connection = self._connections.get(leader)
            for batch in batches:
                if connection is not None and connection.connected:
                    self._queue(batch)
                else:
                    # the leader may be gone for good: ask who leads now
                    self._retry(
                        batch,
                        KafkaConnectionError(f"no connection to broker {leader}"),
                        refresh=True,
                    )

        self._opening(leader).add_done_callback(requeue)

    async def _open(self, node: int) -> None:
        try:
            broker = self.producer.client.cluster.broker_metadata(node)
            if broker is None:
                self.producer.client.force_metadata_update()
                return
            self._connections[node] = await BrokerConnection.open(
                broker.host,
                broker.port,
                ssl_context=self.wire.ssl_context,
                request_timeout=self.wire.request_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self._outage(node).failed(exc)
        else:
            self._outage(node).succeeded()
        finally:
            self._connecting.pop(node, None)

    def _outage(self, node: int) -> Outage:
        outage = self._outages.get(node)
        if outage is None:
            outage = self._outages[node] = Outage(
                log, "kafka.connect_failed", "kafka.connected", node=node
            )
        return outage

    async def _renew_producer_id(self) -> None:
        """InitProducerId until it succeeds; sequences start again at 0 under the new id."""
        while True:
            try:
                connection = await self._any_connection()
                frame = await connection.request(
                    lambda correlation_id: init_producer_id_request(
                        correlation_id, self.wire.client_id, int(self.wire.request_timeout * 1000)
                    )
                )
                error, producer_id, epoch = init_producer_id_response(frame)
                if error == NO_ERROR:
                    self._producer_id, self._epoch = producer_id, epoch
                    self._sequences.clear()
                    return
                log.warning("kafka.producer_id_refused", extra={"error": for_code(error).__name__})
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("kafka.producer_id_failed", extra={"error": repr(exc)})
            await asyncio.sleep(RETRY_BACKOFF * 10)

    async def _any_connection(self) -> BrokerConnection:
        for connection in self._connections.values():
            if connection.connected:
                return connection
        nodes = sorted(broker.nodeId for broker in self.producer.client.cluster.brokers())
        for node in nodes:  # the first that answers: one may be down
            await self._opening(node)
            opened = self._connections.get(node)
            if opened is not None and opened.connected:
                return opened
        await self.producer.client.force_metadata_update()
        raise KafkaConnectionError(f"could not connect to any broker of {nodes}")
