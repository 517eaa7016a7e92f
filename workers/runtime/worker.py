"""The worker: a consumer group member that runs a :class:`~workers.runtime.logic.Logic` on events.

One ``Worker`` owns some partitions of ``ocpp.events.v1`` at a time:

- **Assigned** partitions get their states back from the changelog (every
  record up to the last checkpoint) and the consumer is positioned right after
  the checkpoint's offset. A partition never checkpointed starts at the group's
  committed offset, or at the earliest retained event for a new group (a
  sessions worker must see a transaction's start to account for it).
- **Polled** records are filtered on their ``ocpp-action`` header, decoded,
  decided about, and their outputs (the reply, session records, dead letters)
  handed to the batching publisher at once.
- **Checkpoints**, every ``checkpoint_interval`` per partition: once the
  outputs are acknowledged the changed states go to the changelog, then the
  offset is committed (:mod:`workers.runtime.partition` says why in this order).
- **Revoked** partitions, and all of them on stop, are checkpointed before they
  are let go, so the next owner continues exactly where this one stopped.

A record whose handling raises is tried ``max_attempts`` times, then written
to ``csms.dead-letter.v1`` with the reason (at once for an undecodable or
rejected record); a call that expected a reply is answered CALLERROR
InternalError. Either way the partition moves on.

Kafka away: the publisher retries every write through a leader change until
its delivery timeout. A write given up there **rewinds** its partition: the
states are read back from the changelog (as of the last checkpoint, which
never covers a lost output) and the events after it are handled again (their
outputs are the same records again). Reading the changelog is retried too. A
partition whose writes have failed for ``kafka_outage_limit`` seconds, or a
changelog that cannot be read for that long, is fatal: the process exits with
status 1, and its restart restores the states the same way. A changelog that
cannot be decoded is fatal at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from contracts.bus.clients import consumer, publisher
from contracts.bus.follower import TopicFollower
from contracts.bus.outage import Outage
from contracts.envelopes import (
    DeadLetter,
    StationEvent,
    decode_event,
    encode_command,
    encode_dead_letter,
    original_record,
)
from contracts.headers import (
    CE_TYPE,
    OCPP_ACTION,
    command_headers,
    dead_letter_headers,
    header,
    worker_source,
)
from contracts.topics import COMMANDS, DEAD_LETTER, EVENTS
from workers.runtime.changelog import (
    CHECKPOINT_HEADER,
    CHECKPOINT_KEY,
    Restored,
    UnusableTopics,
    changelog_topic,
    ensure_changelog,
    read_changelog,
)
from workers.runtime.logic import (
    Decision,
    Logic,
    Position,
    RecordRejected,
    Reply,
    reply_command,
)
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.partition import Acks, Checkpoint, OwnedPartition, PublishFailed
from workers.runtime.settings import WorkerSettings

__all__ = ["Worker"]

log = logging.getLogger("workers.runtime")

S = TypeVar("S")
P = TypeVar("P")

_POLL_TIMEOUT_MS = 200
_RETRY_DELAY = 1.0  # seconds between two attempts at reading a changelog Kafka does not serve


class Worker(Generic[S, P]):
    """Runs ``logic`` on the partitions of ocpp.events.v1 this member of the group owns."""

    def __init__(
        self,
        name: str,
        settings: WorkerSettings,
        logic: Logic[S, P],
        metrics: WorkerMetrics,
        *,
        tables: Sequence[TopicFollower] = (),
        outputs: Sequence[str] = (),
        max_partitions: int | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.logic = logic
        self.metrics = metrics
        self.tables = list(tables)
        self.outputs = list(outputs)
        self.max_partitions = max_partitions
        self.instance = settings.service.instance_name()
        self.source = worker_source(name, self.instance)
        self.group = settings.group_for(name)
        self.changelog = changelog_topic(self.group)
        self.publisher = publisher(
            settings.kafka, f"csms-{name}-{self.instance}", linger=settings.linger
        )
        self.producer = self.publisher.producer
        self.consumer: AIOKafkaConsumer | None = None
        self.owned: dict[int, OwnedPartition[S, P]] = {}
        self.started = False
        self.failure: BaseException | None = None
        self._stopping = False
        self._ownership = asyncio.Lock()
        self._rewinds: set[asyncio.Task[None]] = set()
        self._station_decoder = msgspec.json.Decoder(logic.station_type)
        self._partition_decoder = msgspec.json.Decoder(logic.partition_type)
        metrics.states.set_function(lambda: sum(len(p.stations) for p in self.owned.values()))

    # ------------------------------------------------------------------ lifecycle

    def readiness(self) -> Mapping[str, bool]:
        return {
            "kafka": self.started and self.failure is None,
            "tables": all(table.caught_up for table in self.tables),
        }

    async def start(self) -> None:
        """Connect, make the changelog, read the tables to their end, and join the group."""
        settings = self.settings
        await self.producer.start()
        await self.publisher.start(COMMANDS.name, DEAD_LETTER.name, *self.outputs)
        partitions = await self.producer.partitions_for(EVENTS.name)
        if self.max_partitions is not None and len(partitions) > self.max_partitions:
            raise UnusableTopics(
                f"{EVENTS.name} has {len(partitions)} partitions; the {self.name} worker "
                f"handles at most {self.max_partitions}"
            )
        await ensure_changelog(
            settings.kafka,
            self.changelog,
            len(partitions),
            replication_factor=settings.changelog_replication_factor,
            compaction_lag=settings.changelog_compaction_lag,
            wait=settings.kafka_outage_limit,
        )
        await self.publisher.refresh_partitions(self.changelog)  # its leaders, for the writes
        for table in self.tables:
            await table.start()
            while not await table.wait_caught_up(10):
                log.warning("worker.catching_up", extra={"topic": table.topic})
        self.consumer = consumer(
            settings.kafka,
            f"csms-{self.name}-{self.instance}",
            group_id=self.group,
            max_poll_records=settings.max_batch,
            session_timeout_ms=int(settings.session_timeout * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
            group_instance_id=(
                f"{self.group}-{self.instance}" if settings.static_membership else None
            ),
        )
        await self.consumer.start()
        self.consumer.subscribe([EVENTS.name], listener=_Rebalance(self))
        self.started = True
        log.info(
            "worker.started",
            extra={"worker": self.name, "group": self.group, "changelog": self.changelog},
        )

    async def run(self) -> None:
        """Poll, decide and checkpoint until :meth:`request_stop`; raises when something fatal."""
        client = self.consumer
        assert client is not None
        try:
            while not self._stopping:
                batches = await client.getmany(
                    timeout_ms=_POLL_TIMEOUT_MS, max_records=self.settings.max_batch
                )
                if self.failure is not None:
                    raise self.failure
                if batches:
                    now = datetime.now(UTC)
                    for tp, records in batches.items():
                        owned = self.owned.get(tp.partition)
                        if owned is None or owned.released or tp.topic != EVENTS.name:
                            continue  # restoring or being released: read again by its owner
                        for record in records:
                            self._handle(owned, record, now)
                        owned.handled_up_to(records[-1].offset)
                self._expire(client)
                self._after_poll(client)
        except BaseException as exc:
            if self.failure is None and not isinstance(exc, asyncio.CancelledError):
                self.failure = exc
            raise

    def request_stop(self) -> None:
        self._stopping = True

    async def close(self) -> None:
        """Checkpoint and let go of every partition (unless failed), leave the group, flush."""
        for rewind in list(self._rewinds):
            rewind.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await rewind
        if self.consumer is not None:
            await self._release(list(self.owned))
            with contextlib.suppress(KafkaError):
                await self.consumer.stop()
            self.consumer = None
        for table in self.tables:
            await table.stop()
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(self.publisher.stop(), 10)
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(self.producer.stop(), 10)
        self.started = False

    # ------------------------------------------------------------------ one record

    def _wanted(self, record: Any) -> str | None:
        """The record's action (its kind, for a lifecycle event) when the logic reads it."""
        action = header(record.headers, OCPP_ACTION)
        if action is not None:
            return action if action in self.logic.actions else None
        kind = header(record.headers, CE_TYPE)
        kind = None if kind is None else kind.rpartition(".")[2]
        return kind if kind in self.logic.kinds and kind != "call" else None

    def _handle(self, owned: OwnedPartition[S, P], record: Any, now: datetime) -> None:
        action = self._wanted(record)
        if action is None:
            self.metrics.records_skipped.inc()
            return
        started = time.perf_counter()
        try:
            event = decode_event(record.value)
        except (msgspec.DecodeError, TypeError) as exc:
            self._dead_letter(owned, record, "undecodable", f"{type(exc).__name__}: {exc}", 1, now)
            self.metrics.record(action, "dead_letter", time.perf_counter() - started)
            return
        if event.kind not in self.logic.kinds:
            self.metrics.records_skipped.inc()
            return
        key = record.key.decode() if record.key is not None else event.station_id
        decision: Decision[S, P] | None = None
        failure: Exception | None = None
        attempts = 0
        while decision is None and attempts < self.settings.max_attempts:
            attempts += 1
            try:
                decision = self.logic.decide(
                    event,
                    owned.stations.get(key),
                    owned.state,
                    Position(record.partition, record.offset),
                )
            except RecordRejected as exc:
                failure = exc
                break
            except Exception as exc:
                failure = exc
        if decision is None:
            assert failure is not None
            reason = "rejected" if isinstance(failure, RecordRejected) else "failed"
            text = f"{type(failure).__name__}: {failure}"
            self._dead_letter(owned, record, reason, text, attempts, now)
            if event.reply_expected:
                self._reply(owned, event, Reply.error("InternalError", "could not process"), now)
            self.metrics.record(action, "dead_letter", time.perf_counter() - started)
            return
        self._take(owned, key, decision)
        if decision.reply is not None and event.reply_expected:
            self._reply(owned, event, decision.reply, now)
        for anomaly in decision.anomalies:
            self.metrics.anomalies.labels(anomaly).inc()
            log.info(
                "worker.anomaly",
                extra={
                    "anomaly": anomaly,
                    "station_id": event.station_id,
                    "action": action,
                    "message_id": event.message_id,
                },
            )
        self.metrics.record(action, decision.outcome, time.perf_counter() - started)

    def _take(self, owned: OwnedPartition[S, P], key: str, decision: Decision[S, P]) -> None:
        """Apply a decision's states, publish its outputs, and note the station's next deadline."""
        owned.apply(key, decision)
        station = owned.stations.get(key)
        owned.set_deadline(key, None if station is None else self.logic.deadline(station))
        for output in decision.outputs:
            self.publisher.publish(
                output.topic, output.key, output.value, output.headers, owned.outputs.expect()
            )

    def _expire(self, client: AIOKafkaConsumer) -> None:
        """Run the logic's expiries that are due, on partitions caught up with their events."""
        now = datetime.now(UTC)
        for owned in self.owned.values():
            if owned.released or not owned.deadlines:
                continue
            highwater = client.highwater(TopicPartition(EVENTS.name, owned.number))
            if (
                highwater is None
                or (owned.handled if owned.handled is not None else -1) + 1 < highwater
            ):
                continue  # events still to read could change the states: they come first
            for key in owned.expired(now):
                station = owned.stations.get(key)
                if station is None:
                    continue
                started = time.perf_counter()
                try:
                    decision = self.logic.expire(key, station, owned.state, now)
                except Exception:
                    log.exception("worker.expiry_failed", extra={"station_id": key})
                    self.metrics.record("expiry", "failed", time.perf_counter() - started)
                    continue
                self._take(owned, key, decision)
                self.metrics.record("expiry", decision.outcome, time.perf_counter() - started)

    def _reply(
        self, owned: OwnedPartition[S, P], event: StationEvent, reply: Reply, now: datetime
    ) -> None:
        if event.reply_by is not None and now > event.reply_by:
            self.metrics.replies_late.inc()  # the station got the fallback already
            return
        command = reply_command(self.name, event, reply, source=self.source, now=now)
        self.publisher.publish(
            COMMANDS.name,
            event.station_id.encode(),
            encode_command(command),
            command_headers(command),
            owned.outputs.expect(),
        )
        self.metrics.replies_sent.inc()
        self.metrics.reply_delay.observe((now - event.received_at).total_seconds())

    def _dead_letter(
        self,
        owned: OwnedPartition[S, P],
        record: Any,
        reason: str,
        text: str,
        failures: int,
        now: datetime,
    ) -> None:
        letter = DeadLetter(
            record=original_record(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
                timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            ),
            worker=self.name,
            reason=f"{reason}: {text}"[:2000],
            failures=failures,
            failed_at=now,
        )
        self.publisher.publish(
            DEAD_LETTER.name,
            record.key or b"",
            encode_dead_letter(letter),
            dead_letter_headers(letter, source=self.source),
            owned.outputs.expect(),
        )
        self.metrics.dead_letters.labels(reason).inc()
        log.warning(
            "worker.dead_letter",
            extra={
                "reason": reason,
                "error": text[:500],
                "partition": record.partition,
                "offset": record.offset,
                "failures": failures,
            },
        )

    # ------------------------------------------------------------------ checkpoints

    def _after_poll(self, client: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        interval = self.settings.checkpoint_interval
        for owned in self.owned.values():
            if owned.failing_for(now) > self.settings.kafka_outage_limit:
                raise PublishFailed(
                    f"partition {owned.number}: Kafka has not stored its outputs or checkpoints "
                    f"for {self.settings.kafka_outage_limit:g} s"
                )
            highwater = client.highwater(TopicPartition(EVENTS.name, owned.number))
            if highwater is not None and owned.handled is not None:
                lag = max(0, highwater - owned.handled - 1)
                self.metrics.lag.labels(str(owned.number)).set(lag)
            if owned.due(now, interval):
                checkpoint = owned.close()
                if checkpoint is not None:
                    owned.writing = asyncio.create_task(
                        self._write(checkpoint), name=f"checkpoint {owned.number}"
                    )
                    owned.writing.add_done_callback(functools.partial(self._written, owned))

    def _written(self, owned: OwnedPartition[S, P], task: asyncio.Task[None]) -> None:
        owned.writing = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            owned.failing_since = None
        elif isinstance(exc, PublishFailed):
            owned.broken = True
            if not owned.released:
                self._rewind(owned, exc)
        elif self.failure is None:
            self.failure = exc
            log.error("worker.checkpoint_failed", exc_info=exc)

    async def _write(self, checkpoint: Checkpoint) -> None:
        """Outputs acknowledged, then the states, then the checkpoint record; then commit.

        The checkpoint record goes out once the states are stored, so that no
        checkpoint can stand in the changelog after a state record given up.
        Raises :class:`PublishFailed` when Kafka did not store one of them.
        """
        await checkpoint.outputs.wait()
        if checkpoint.records:
            states = Acks()
            tag = [(CHECKPOINT_HEADER, str(checkpoint.offset).encode())]
            for key, value in checkpoint.records:
                self.publisher.publish(
                    self.changelog, key.encode(), value, tag, states.expect(), checkpoint.partition
                )
            await states.wait()
        written = Acks()
        self.publisher.publish(
            self.changelog,
            CHECKPOINT_KEY,
            checkpoint.value,
            [],
            written.expect(),
            checkpoint.partition,
        )
        self.metrics.changelog_records.inc(len(checkpoint.records) + 1)
        await written.wait()
        tp = TopicPartition(EVENTS.name, checkpoint.partition)
        if self.consumer is not None:
            try:
                await self.consumer.commit({tp: checkpoint.offset + 1})
            except KafkaError as exc:
                # the changelog's checkpoint is what positions the next owner: nothing is lost
                log.warning(
                    "worker.commit_failed",
                    extra={"partition": checkpoint.partition, "error": repr(exc)},
                )
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(time.monotonic() - checkpoint.closed_at)

    # ------------------------------------------------------------------ ownership

    async def _acquire(self, numbers: Sequence[int]) -> None:
        """Restore the states of newly assigned partitions and position the consumer after them."""
        async with self._ownership:
            client = self.consumer
            if client is None or not numbers:
                return
            await self._restore(client, numbers)
            self.metrics.rebalances.inc()

    async def _restore(self, client: AIOKafkaConsumer, numbers: Sequence[int]) -> None:
        started = time.monotonic()
        restored = await self._read_changelog(numbers)
        for number, found in restored.items():
            stations = {
                key: self._station_decoder.decode(value) for key, value in found.stations.items()
            }
            state = (
                self.logic.initial_partition()
                if found.state is None
                else self._partition_decoder.decode(found.state)
            )
            owned: OwnedPartition[S, P] = OwnedPartition(number, stations, state, found.offset)
            for key, station in stations.items():
                owned.set_deadline(key, self.logic.deadline(station))
            self.owned[number] = owned
            await self._position(client, TopicPartition(EVENTS.name, number), found.offset)
        seconds = time.monotonic() - started
        self.metrics.restore_seconds.observe(seconds)
        self.metrics.partitions.set(len(self.owned))
        log.info(
            "worker.partitions_assigned",
            extra={
                "partitions": sorted(numbers),
                "states": sum(len(r.stations) for r in restored.values()),
                "resume_at": {n: r.offset for n, r in restored.items()},
                "seconds": round(seconds, 3),
            },
        )

    async def _read_changelog(self, numbers: Sequence[int]) -> dict[int, Restored]:
        """The changelog's states, read again while Kafka does not serve them, up to the limit."""
        outage = Outage(log, "worker.restore_failed", "worker.restore_recovered")
        while True:
            try:
                restored = await read_changelog(
                    self.settings.kafka,
                    self.changelog,
                    numbers,
                    client_id=f"csms-{self.name}-{self.instance}-restore",
                    timeout=self.settings.restore_timeout,
                )
            except (KafkaError, OSError) as exc:
                outage.failed(exc)
                assert outage.since is not None
                if time.monotonic() - outage.since > self.settings.kafka_outage_limit:
                    raise
                await asyncio.sleep(_RETRY_DELAY)
            else:
                outage.succeeded()
                return restored

    def _rewind(self, owned: OwnedPartition[S, P], exc: BaseException) -> None:
        """Drop a partition whose write failed and restore it from its last checkpoint."""
        owned.released = True  # what is polled until it is restored is read again after
        if owned.failing_since is None:
            owned.failing_since = time.monotonic()
        self.metrics.rewinds.inc()
        log.warning(
            "worker.partition_rewound",
            extra={"partition": owned.number, "error": repr(exc)[:500]},
        )
        task = asyncio.create_task(self._rewound(owned), name=f"rewind {owned.number}")
        self._rewinds.add(task)
        task.add_done_callback(self._rewinds.discard)

    async def _rewound(self, owned: OwnedPartition[S, P]) -> None:
        async with self._ownership:
            client = self.consumer
            if client is None or self.owned.get(owned.number) is not owned:
                return  # let go meanwhile: its next owner restores it
            del self.owned[owned.number]
            if TopicPartition(EVENTS.name, owned.number) not in client.assignment():
                return
            try:
                await self._restore(client, [owned.number])
            except Exception as exc:
                if self.failure is None:
                    self.failure = exc
                log.exception("worker.rewind_failed", extra={"partition": owned.number})
                return
            self.owned[owned.number].failing_since = owned.failing_since

    @staticmethod
    async def _position(
        client: AIOKafkaConsumer, tp: TopicPartition, checkpoint: int | None
    ) -> None:
        """Right after the checkpoint; else at the committed offset; else at the earliest event.

        Always explicit: records fetched while the state was being restored were
        not handled, so the position they left behind means nothing.
        """
        if checkpoint is not None:
            client.seek(tp, checkpoint + 1)
            return
        committed = await client.committed(tp)
        if committed is not None:
            log.warning("worker.no_checkpoint", extra={"partition": tp.partition})
            client.seek(tp, committed)
        else:
            await client.seek_to_beginning(tp)

    async def _release(self, numbers: Sequence[int]) -> None:
        """Checkpoint partitions (unless failed) and forget them."""
        async with self._ownership:
            for number in sorted(numbers):
                owned = self.owned.get(number)
                if owned is None:
                    continue
                owned.released = True  # what is polled from now on is the next owner's
                if owned.writing is not None:
                    with contextlib.suppress(Exception):
                        await owned.writing
                checkpoint = owned.close()
                if checkpoint is not None and self.failure is None and not owned.broken:
                    try:
                        await self._write(checkpoint)
                    except PublishFailed as exc:
                        # the next owner handles again what followed the last checkpoint
                        log.warning(
                            "worker.checkpoint_failed",
                            extra={"partition": number, "error": repr(exc)[:500]},
                        )
                    except Exception as exc:
                        self.failure = exc
                        log.error("worker.checkpoint_failed", exc_info=exc)
                del self.owned[number]
                with contextlib.suppress(KeyError):
                    self.metrics.lag.remove(str(number))
            self.metrics.partitions.set(len(self.owned))
            if numbers:
                log.info("worker.partitions_released", extra={"partitions": sorted(numbers)})


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Checkpoints revoked partitions before they go; restores assigned ones before reading."""

    def __init__(self, worker: Worker[Any, Any]) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._guarded(self.worker._release, revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._guarded(self.worker._acquire, assigned)

    async def _guarded(self, change: Any, partitions: Any) -> None:
        numbers = [tp.partition for tp in partitions if tp.topic == EVENTS.name]
        try:
            await change(numbers)
        except Exception as exc:
            # aiokafka would log and carry on; a partition without its state must not be read
            if self.worker.failure is None:
                self.worker.failure = exc
            log.exception("worker.rebalance_failed", extra={"partitions": numbers})
