"""A batching Kafka publisher: records go into per-partition batches, acks come back per record.

aiokafka's ``send()`` costs about 30 µs of CPU per record on the machines csms
is measured on (a coroutine, a partitioner call and a future per record); a
gateway answering tens of thousands of calls a second cannot afford that. This
publisher appends records to one open ``BatchBuilder`` per partition (a C
extension, ~1 µs per record), closes the batches every ``linger`` seconds or when
full, hands them to the producer with ``send_batch`` and, when Kafka acknowledges
a batch, calls each record's ``on_done`` callback. Measured: 6 to 8 µs per record
(docs/benchmarks.md).

Ordering: records for one partition are appended and sent in call order, and
aiokafka keeps a single batch in flight per partition, so per-key order holds
end to end (a station's events stay in order across retries).

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
import logging
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

__all__ = ["Done", "Publisher", "partition_for"]

log = logging.getLogger(__name__)

# Called once per record: None when Kafka acknowledged it, else the exception.
Done = Callable[[BaseException | None], None]
Headers = Sequence[tuple[str, bytes]]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner chooses for ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class _OpenBatch:
    __slots__ = ("builder", "callbacks", "opened_at", "partition", "topic")

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = producer.create_batch()
        self.callbacks: list[Done] = []
        self.opened_at = time.monotonic()


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
    ) -> None:
        self.producer = producer
        self.linger = linger
        self.on_batch_acked = on_batch_acked
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._ready: collections.deque[_OpenBatch] = collections.deque()
        self._wakeup = asyncio.Event()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._sender: asyncio.Task[None] | None = None
        self._partitions: dict[str, int] = {}
        self._sending: dict[asyncio.Future[object], _OpenBatch] = {}  # handed to the producer
        self.pending = 0  # records accepted and not yet acknowledged (or failed)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *topics: str) -> None:
        """Learn the partition counts of ``topics`` and start the sender."""
        for topic in topics:
            await self.refresh_partitions(topic)
        self._sender = asyncio.get_running_loop().create_task(self._send_loop(), name="publisher")

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
        waiting = [*self._open.values(), *self._ready, *self._sending.values()]
        if not waiting:
            return 0.0
        return time.monotonic() - min(batch.opened_at for batch in waiting)

    async def flush(self) -> None:
        """Send every open batch and wait until all records handed in so far are acknowledged."""
        self._close_open_batches()
        while self._ready or self._sending:
            if self._sending:
                await asyncio.wait(list(self._sending))
            else:
                await asyncio.sleep(0.001)

    async def stop(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.flush()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

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
        slot = (topic, partition)
        batch = self._open.get(slot)
        if batch is None:
            batch = self._open[slot] = _OpenBatch(self.producer, topic, partition)
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            # full: send it, and start a new one for this record
            self._ready_batch(self._open.pop(slot))
            batch = self._open[slot] = _OpenBatch(self.producer, topic, partition)
            if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                del self._open[slot]
                on_done(KafkaError(f"record of {len(value or b'')} bytes exceeds the batch size"))
                return
        batch.callbacks.append(on_done)
        self.pending += 1
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(
                self.linger, self._close_open_batches
            )

    # ------------------------------------------------------------------ internals

    def _ready_batch(self, batch: _OpenBatch) -> None:
        if batch.callbacks:
            self._ready.append(batch)
            self._wakeup.set()

    def _close_open_batches(self) -> None:
        self._flush_handle = None
        batches, self._open = self._open, {}
        for batch in batches.values():
            self._ready_batch(batch)

    async def _send_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._ready:
                batch = self._ready[0]
                try:
                    # waits while the producer's accumulator is full: that is the backpressure
                    future = await self.producer.send_batch(
                        batch.builder, batch.topic, partition=batch.partition
                    )
                except KafkaError as exc:
                    self._ready.popleft()
                    self._finish(batch, exc)
                    continue
                self._ready.popleft()
                self._sending[future] = batch
                future.add_done_callback(lambda f, b=batch: self._acked(f, b))

    def _acked(self, future: asyncio.Future[object], batch: _OpenBatch) -> None:
        self._sending.pop(future, None)
        exc = asyncio.CancelledError() if future.cancelled() else future.exception()
        self._finish(batch, exc)

    def _finish(self, batch: _OpenBatch, exc: BaseException | None) -> None:
        self.pending -= len(batch.callbacks)
        if exc is not None:
            log.warning(
                "kafka.batch_failed",
                extra={"topic": batch.topic, "partition": batch.partition, "error": repr(exc)},
            )
        if self.on_batch_acked is not None:
            self.on_batch_acked(len(batch.callbacks), time.monotonic() - batch.opened_at, exc)
        for callback in batch.callbacks:
            try:
                callback(exc)
            except Exception:
                log.exception("publisher.callback_failed")
