"""A batching Kafka publisher: records go into per-partition batches, acks come back per record.

aiokafka's ``send()`` costs about 30 µs of CPU per record on the machines csms
is measured on (a coroutine, a partitioner call and a future per record); a
gateway answering tens of thousands of calls a second cannot afford that. This
publisher appends records to one open ``BatchBuilder`` per partition (a C
extension, ~1 µs per record), closes the batches every ``linger`` seconds or when
full, sends them and, when Kafka acknowledges a batch, calls each record's
``on_done`` callback. Measured: 6 to 8 µs per record
(docs/decisions/0004-batching-publisher.md). Given a
:class:`~contracts.bus.wire.Wire`, batches go out on csms's own produce path
(one request per broker per round, ``contracts.bus.wire``, ADR 0013);
without one, through the producer's ``send_batch``.

Ordering: records for one partition are appended and sent in call order, and a
partition's next batch is handed to the producer only once the previous one is
acknowledged, so per-key order holds end to end (a station's events stay in
order across retries). Handing it over earlier would not send it sooner:
aiokafka's ``send_batch`` waits while the partition has a batch in its
accumulator, and every other partition's batch would wait behind it.

Backpressure: :attr:`pending` counts records handed in and not yet acknowledged.
Callers stop producing work (the gateway stops reading sockets) while it is above
their high-water mark; nothing here buffers without bound, because the sender
waits for room in the producer's accumulator.

Partitioning uses Kafka's default partitioner (murmur2 of the key), so records
written here land where any other Kafka client would put the same key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from contracts.bus.wire import Done, Wire, WireSender

__all__ = ["Done", "Publisher", "partition_for"]

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner chooses for ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class _OpenBatch:
    __slots__ = ("builder", "callbacks", "opened_at")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.builder = producer.create_batch()
        self.callbacks: list[Done] = []
        self.opened_at = time.monotonic()


class _Slot:
    """One topic partition: the batch being filled, full ones waiting, the one outstanding."""

    __slots__ = ("full", "open", "outstanding", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.open: _OpenBatch | None = None
        self.full: collections.deque[_OpenBatch] = collections.deque()
        self.outstanding: _OpenBatch | None = None  # handed to the producer, not yet acked

    def has_records(self) -> bool:
        return bool(self.full) or (self.open is not None and bool(self.open.callbacks))

    def batches(self) -> list[_OpenBatch]:
        found = [*self.full]
        for batch in (self.open, self.outstanding):
            if batch is not None and batch.callbacks:
                found.append(batch)
        return found


class Publisher:
    """Publishes records in batches on a started ``AIOKafkaProducer``.

    Call :meth:`start` before publishing and :meth:`stop` to flush and wait
    for every outstanding acknowledgement. ``on_batch_acked`` (optional)
    receives each batch's size and its age when acknowledged, for metrics.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        linger: float = 0.002,
        on_batch_acked: Callable[[int, float, BaseException | None], None] | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.producer = producer
        self.linger = linger
        self.on_batch_acked = on_batch_acked
        self.wire = wire
        self._wire_sender: WireSender | None = None
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._due: set[_Slot] = set()  # slots waiting for the linger timer
        self._ready: collections.deque[tuple[_Slot, _OpenBatch]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._sender: asyncio.Task[None] | None = None
        self._partitions: dict[str, int] = {}
        self._settled = asyncio.Event()  # set whenever a batch is acknowledged or fails
        self.pending = 0  # records accepted and not yet acknowledged (or failed)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *topics: str) -> None:
        """Learn the partition counts of ``topics`` and start the sender."""
        for topic in topics:
            await self.refresh_partitions(topic)
        self._loop = asyncio.get_running_loop()
        if self.wire is not None:
            self._wire_sender = WireSender(self.producer, self.wire)
            await self._wire_sender.start()
        else:
            self._sender = self._loop.create_task(self._send_loop(), name="publisher")

    async def refresh_partitions(self, topic: str) -> int:
        partitions = await self.producer.partitions_for(topic)
        if not partitions:
            raise KafkaError(f"topic {topic} has no partitions")
        self._partitions[topic] = len(partitions)
        return len(partitions)

    def partitions(self, topic: str) -> int:
        return self._partitions[topic]

    def oldest_pending_age(self) -> float:
        """Seconds the oldest unacknowledged record has waited (0 when none waits)."""
        waiting = [batch for slot in self._slots.values() for batch in slot.batches()]
        if not waiting:
            return 0.0
        return time.monotonic() - min(batch.opened_at for batch in waiting)

    async def flush(self) -> None:
        """Send every open batch and wait until all records handed in so far are acknowledged."""
        while any(slot.has_records() or slot.outstanding for slot in self._slots.values()):
            self._settled.clear()
            for slot in self._slots.values():
                self._hand_over(slot)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), 0.1)

    async def stop(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.flush()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._wire_sender is not None:
            await self._wire_sender.stop()

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        headers: Headers,
        on_done: Done,
        partition: int | None = None,
    ) -> None:
        """Hand a record in; ``on_done`` is called once it is acknowledged or has failed.

        ``partition`` may be given when the caller cached it (see :func:`partition_for`).
        Never blocks: watch :attr:`pending` for backpressure.
        """
        if partition is None:
            partition = partition_for(key, self._partitions[topic])
        slot = self._slots.get((topic, partition))
        if slot is None:
            slot = self._slots[(topic, partition)] = _Slot(topic, partition)
        batch = slot.open
        if batch is None:
            batch = slot.open = _OpenBatch(self.producer)
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            # full: it waits its turn, and a new one takes this record
            slot.full.append(batch)
            batch = slot.open = _OpenBatch(self.producer)
            if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                slot.open = None
                on_done(KafkaError(f"record of {len(value or b'')} bytes exceeds the batch size"))
                return
        batch.callbacks.append(on_done)
        self.pending += 1
        if slot.outstanding is None and slot not in self._due:
            self._linger(slot)

    # ------------------------------------------------------------------ internals

    def _linger_expired(self) -> None:
        self._flush_handle = None
        due, self._due = self._due, set()
        for slot in due:
            self._hand_over(slot)

    def _hand_over(self, slot: _Slot) -> None:
        """Give the slot's next batch to the sender, unless one is outstanding."""
        if slot.outstanding is not None:
            return
        if slot.full:
            batch = slot.full.popleft()
        elif slot.open is not None and slot.open.callbacks:
            batch, slot.open = slot.open, None
        else:
            return
        slot.outstanding = batch
        self._due.discard(slot)
        if self._wire_sender is not None:
            self._wire_sender.send(
                slot.topic,
                slot.partition,
                batch.builder,
                len(batch.callbacks),
                functools.partial(self._done, slot, batch),
                batch.opened_at,  # a batch that waited behind others has less time left
            )
            return
        self._ready.append((slot, batch))
        self._wakeup.set()

    async def _send_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._ready:
                slot, batch = self._ready.popleft()
                try:
                    # aiokafka holds no earlier batch of this partition (one outstanding at a
                    # time), so this does not wait on other partitions; it waits only while the
                    # producer's accumulator is full: that is the backpressure
                    future = await self.producer.send_batch(
                        batch.builder, slot.topic, partition=slot.partition
                    )
                except KafkaError as exc:
                    self._done(slot, batch, exc)
                    continue
                future.add_done_callback(lambda f, s=slot, b=batch: self._acked(f, s, b))

    def _acked(self, future: asyncio.Future[object], slot: _Slot, batch: _OpenBatch) -> None:
        exc = asyncio.CancelledError() if future.cancelled() else future.exception()
        self._done(slot, batch, exc)

    def _done(self, slot: _Slot, batch: _OpenBatch, exc: BaseException | None) -> None:
        slot.outstanding = None
        self._settled.set()
        self._finish(slot, batch, exc)
        if slot.full or (
            slot.open is not None and time.monotonic() - slot.open.opened_at >= self.linger
        ):
            self._hand_over(slot)  # full, or it lingered long enough while the last was out
        elif slot.open is not None and slot.open.callbacks:
            self._linger(slot)  # young: more records join it, and other partitions' batches

    def _linger(self, slot: _Slot) -> None:
        self._due.add(slot)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_later(self.linger, self._linger_expired)

    def _finish(self, slot: _Slot, batch: _OpenBatch, exc: BaseException | None) -> None:
        self.pending -= len(batch.callbacks)
        if exc is not None:
            log.warning(
                "kafka.batch_failed",
                extra={"topic": slot.topic, "partition": slot.partition, "error": repr(exc)},
            )
        if self.on_batch_acked is not None:
            self.on_batch_acked(len(batch.callbacks), time.monotonic() - batch.opened_at, exc)
        for callback in batch.callbacks:
            try:
                callback(exc)
            except Exception:
                log.exception("publisher.callback_failed")
