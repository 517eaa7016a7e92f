"""``station_offline``: the one result for a command whose station no gateway holds.

Every gateway reads every command (to deliver those of its stations), so "nobody
holds it" needs one decider per command. The gateways form a consumer group on
``ocpp.commands.v1``; the member that owns a record's partition decides for it:
after ``offline_grace`` seconds (time for a station that is connecting right
now to appear in ``ocpp.presence.v1``) it looks at presence, and when no
instance holds the station, or its holder connected more than ``offline_grace``
after the command was written (a late decision: that holder never got it), it
publishes ``station_offline`` (``expired`` if the command's ``expires_at`` has
passed). The holder of a station, if any, delivers
and answers; the station that connects within the grace period gets the command
from its new gateway (see :mod:`gateway.commands`).

Offsets are committed once a record's decision is made, so a rebalance hands
undecided records to the next owner; a decision made but not yet committed may
be made twice after a crash (``station_offline`` is then published twice).

A gateway that crashed (no tombstone) is still named by presence until
:mod:`gateway.peers` notices, from this group's members (each member's client
id carries its instance id), that it is gone; from then on its stations count
as held by nobody. Commands left to it in between are kept (``deferred``, in
memory: their offsets are committed) and decided when it is declared gone
(:meth:`OfflineResponder.holder_gone`).

Offsets: a partition this member is the first to own (no committed offset)
starts at the end; its start is committed at the first fetch, so that a next
owner (this one crashed, say) starts there, not at its own end, which would
skip the commands written in between.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from contracts.bus.clients import consumer
from contracts.bus.outage import Outage
from contracts.envelopes import CommandError, Presence, decode_command
from contracts.settings import KafkaSettings
from contracts.topics import COMMANDS
from gateway.commands import CommandDelivery, RecentIds

if TYPE_CHECKING:
    from gateway.presence import PresenceView
    from gateway.server import Gateway

__all__ = [
    "CLOCK_SKEW",
    "GROUP",
    "SESSION_TIMEOUT",
    "OfflineResponder",
    "client_id",
    "instance_of",
]

log = logging.getLogger("gateway.offline")

GROUP = "csms-gateway-offline"
STOP_TIMEOUT = 2.0
SESSION_TIMEOUT = 10.0  # seconds: the group loses a member that stopped heartbeating after this
CLOCK_SKEW = 5.0  # seconds a command producer's clock may be off from the gateways'
_CLIENT_PREFIX, _CLIENT_SUFFIX = "csms-gateway-", "-offline"


def client_id(instance_id: str) -> str:
    """The offline responder's Kafka client id: the group's members are known by it."""
    return f"{_CLIENT_PREFIX}{instance_id}{_CLIENT_SUFFIX}"


def instance_of(member_client_id: str) -> str | None:
    """The instance id in a group member's client id (None: not a gateway's)."""
    if member_client_id.startswith(_CLIENT_PREFIX) and member_client_id.endswith(_CLIENT_SUFFIX):
        return member_client_id[len(_CLIENT_PREFIX) : -len(_CLIENT_SUFFIX)] or None
    return None


class _Positioner(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commit before giving partitions away; start new ones (no committed offset) at the end.

    "The end" by ListOffsets may be early on the embedded broker (see
    :func:`contracts.bus.clients.seek_to_end`), so records older than the
    assignment are skipped on such partitions until a newer one arrives.
    """

    def __init__(self, responder: OfflineResponder) -> None:
        self.responder = responder

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        with contextlib.suppress(KafkaError):
            await self.responder.commit()
        self.responder.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        client = self.responder.client
        fresh = [tp for tp in assigned if await client.committed(tp) is None]
        if fresh:
            await client.seek_to_end(*fresh)
            now_ms = int(time.time() * 1000)
            for tp in fresh:
                self.responder.skip_before[tp] = now_ms


class OfflineResponder:
    def __init__(
        self,
        gateway: Gateway,
        delivery: CommandDelivery,
        presence: PresenceView,
        kafka: KafkaSettings,
    ) -> None:
        self.gateway = gateway
        self.delivery = delivery
        self.presence = presence
        self.client: AIOKafkaConsumer = consumer(
            kafka,
            client_id(gateway.instance_id),
            group_id=GROUP,
            fetch_max_wait=kafka.table_fetch_max_wait,
            session_timeout_ms=int(SESSION_TIMEOUT * 1000),
        )
        self._waiting: collections.deque[tuple[float, Any]] = collections.deque()
        self._decided: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._seen = RecentIds(100_000)
        # commands left to a holder on another gateway: (deferred at, record, its instance)
        self._deferred: collections.deque[tuple[float, Any, str]] = collections.deque()
        gone_after = gateway.settings.gone_after
        # kept until that holder could have been declared gone (gateway.peers), with a margin
        self._keep_deferred = gone_after * 4 / 3 + 2 * SESSION_TIMEOUT + 10.0 if gone_after else 0.0
        self._task: asyncio.Task[None] | None = None
        # partitions started at the end: records older than this (ms) are from before
        self.skip_before: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        await self.client.start()
        self.client.subscribe([COMMANDS.name], listener=_Positioner(self))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="offline responder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(KafkaError):
            await self.commit()
        # leaving the group waits for a join in progress; do not hold up the drain for it
        # (the broker notices a member that left without a word after its session timeout)
        with contextlib.suppress(TimeoutError, KafkaError):
            await asyncio.wait_for(self.client.stop(), STOP_TIMEOUT)

    def forget(self, partitions: list[TopicPartition]) -> None:
        gone = set(partitions)
        self._waiting = collections.deque(w for w in self._waiting if _tp(w[1]) not in gone)
        for tp in gone:
            self._decided.pop(tp, None)
            self._committed.pop(tp, None)
            self.skip_before.pop(tp, None)

    async def commit(self) -> None:
        due = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._decided.items()
            if self._committed.get(tp) != offset
        }
        if due:
            await self.client.commit(due)
            for tp, meta in due.items():
                self._committed[tp] = meta.offset

    async def _run(self) -> None:
        last_commit = time.monotonic()
        outage = Outage(log, "kafka.fetch_failed", "kafka.fetch_resumed", topic=COMMANDS.name)
        while True:
            try:
                batches = await self.client.getmany(timeout_ms=200)
            except KafkaError as exc:
                outage.failed(exc)
                await asyncio.sleep(1.0)
                continue
            outage.succeeded()
            now = time.monotonic()
            try:
                for tp in self._take(batches, now):  # fetched, nothing there: the start is here
                    self._decided[tp] = await self.client.position(tp)
                self._decide(now)
            except Exception:  # a bug must not end the decisions (nor the group membership)
                log.exception("gateway.offline_failed")
            if now - last_commit > 1.0:
                with contextlib.suppress(KafkaError):
                    await self.commit()
                last_commit = now

    def _take(self, batches: dict[TopicPartition, list[Any]], now: float) -> set[TopicPartition]:
        """Queue the fetched records; returns the new partitions whose start to commit."""
        grace = self.gateway.settings.offline_grace
        for tp, records in batches.items():
            skip_before = self.skip_before.get(tp)
            for record in records:
                if skip_before is not None:
                    if record.timestamp < skip_before:
                        self._decided[tp] = record.offset + 1  # from before this owner
                        continue
                    del self.skip_before[tp]
                    skip_before = None
                self._waiting.append((now + grace, record))
        return {
            tp
            for tp in self.skip_before.keys() - batches.keys() - self._decided.keys()
            if self.client.highwater(tp) is not None
        }

    def _decide(self, now: float) -> None:
        waiting = self._waiting
        while waiting and waiting[0][0] <= now:
            _, record = waiting.popleft()
            self._decided[_tp(record)] = record.offset + 1
            if record.key is None or record.value is None:
                continue
            holder = self._given_to(record)
            if holder is None:
                if not self._handled_before_leaving(record):
                    self._offline(record)
            elif holder.gateway_id != self.presence.instance_id and self._keep_deferred:
                # held elsewhere: that gateway answers, unless it crashed
                self._deferred.append((now, record, holder.gateway_id))
        deferred = self._deferred
        while deferred and deferred[0][0] < now - self._keep_deferred:
            deferred.popleft()

    def holder_gone(self, instance_id: str, died_after_ms: float) -> None:
        """``instance_id`` crashed, not before ``died_after_ms``: decide the commands left to it
        since (those before it may have answered; downstream deduplicates on command_id)."""
        kept: collections.deque[tuple[float, Any, str]] = collections.deque()
        for entry in self._deferred:
            _, record, holder = entry
            if holder != instance_id:
                kept.append(entry)
            elif (
                record.timestamp >= died_after_ms
                and self._given_to(record) is None
                and not self._handled_before_leaving(record)
            ):
                self._offline(record)
        self._deferred = kept

    def _given_to(self, record: Any) -> Presence | None:
        """The live holder that got the command: it held the station when the command came,
        or connected within ``offline_grace`` after (its gateway replays those to it); None
        when no gateway did. (A decision can come late: after a rebalance, or a crash.) The
        command's time is its producer's: ``CLOCK_SKEW`` more is allowed for."""
        holder = self.presence.holder(record.key.decode("utf-8", "replace"))
        if holder is None or not self._in_time(holder, record):
            return None
        return holder

    def _handled_before_leaving(self, record: Any) -> bool:
        """Whether the station's last holder, which let it go itself, handled the command:
        its tombstone says up to which offset it did, and it got the command in time. Its
        gateway published (or publishes) the command's one result."""
        departed = self.presence.departed(record.key.decode("utf-8", "replace"))
        if departed is None:
            return False
        holder, handled = departed
        return record.offset < handled and self._in_time(holder, record)

    def _in_time(self, holder: Presence, record: Any) -> bool:
        """The holder connected before the command came, or within ``offline_grace`` after
        (plus ``CLOCK_SKEW``: the command's time is its producer's)."""
        given_by_ms: float = (
            record.timestamp + (self.gateway.settings.offline_grace + CLOCK_SKEW) * 1000
        )
        return holder.connected_at.timestamp() * 1000 <= given_by_ms

    def _offline(self, record: Any) -> None:
        """Publish the command's one result: ``station_offline``, or ``expired``."""
        try:
            command = decode_command(record.value)
        except Exception:
            return
        if not self._seen.add(command.command_id):
            return
        if command.expires_at is not None and command.expires_at <= datetime.now(UTC):
            status, error = (
                "expired",
                CommandError(code="Expired", description="past expires_at"),
            )
        else:
            status, error = (
                "station_offline",
                CommandError(code="StationOffline", description="no gateway holds the station"),
            )
        self.delivery.publish(None, command, status, error=error)  # type: ignore[arg-type]


def _tp(record: Any) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)
