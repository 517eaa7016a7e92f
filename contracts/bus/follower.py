"""Follow every partition of one or more topics without a consumer group, and know when caught up.

For state that every instance needs whole: compacted registries read from the
beginning (stations, id tokens, presence) and the command stream every gateway
reads from the end. Nothing is committed; a restart reads again.

A :class:`Follower` reads several topics through one consumer: an idle
consumer costs the broker a fetch every ``fetch_max_wait``, whatever the
number of partitions in it, so a process that follows three topics with one
consumer makes a third of the fetches (docs/benchmarks.md, "Kafka clients:
an idle broker"). :class:`TopicFollower` is a follower of one topic.

"Caught up" means every partition's position reached the high watermark at
least once, as the fetch responses report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.bus.clients import assign_all, consumer, seek_to_end
from contracts.bus.outage import Outage
from contracts.settings import KafkaSettings

__all__ = ["Followed", "Follower", "TopicFollower", "read_table", "read_to_end"]

log = logging.getLogger(__name__)

OnRecords = Callable[[list[Any]], None]
T = TypeVar("T")


class Followed:
    """One topic of a :class:`Follower`: whether it caught up, and the records it delivered."""

    def __init__(self, topic: str, on_records: OnRecords, from_beginning: bool) -> None:
        self.topic = topic
        self.on_records = on_records
        self.from_beginning = from_beginning
        self.partitions: list[TopicPartition] = []
        self.records = 0
        self._caught_up = asyncio.Event()

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until :attr:`caught_up`, at most ``timeout`` seconds; returns it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._caught_up.wait()
        return self.caught_up


class Follower:
    """One group-less consumer following the topics given to :meth:`follow` before :meth:`start`.

    Each topic's ``on_records`` is called with each fetched batch of its
    records, in partition order. Fetches wait at the broker up to
    ``fetch_max_wait`` seconds, by default the settings' ``table_fetch_max_wait``
    (registries); a follower with a topic on a reply's path passes
    ``kafka.fetch_max_wait``.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str,
        max_records: int = 2000,
        fetch_max_wait: float | None = None,
    ) -> None:
        self.max_records = max_records
        self._kafka = kafka
        self._client_id = client_id
        self._fetch_max_wait = (
            kafka.table_fetch_max_wait if fetch_max_wait is None else fetch_max_wait
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._topics: dict[str, Followed] = {}
        self._task: asyncio.Task[None] | None = None
        self._outage: Outage | None = None

    def follow(self, topic: str, on_records: OnRecords, *, from_beginning: bool = True) -> Followed:
        """Add ``topic`` (before :meth:`start`); ``from_beginning=False``: only records written
        after :meth:`start` returned are delivered."""
        if self._task is not None:
            raise RuntimeError("topics are added before the follower starts")
        followed = self._topics[topic] = Followed(topic, on_records, from_beginning)
        return followed

    @property
    def caught_up(self) -> bool:
        return all(followed.caught_up for followed in self._topics.values())

    async def start(self) -> None:
        """Connect, position, and start following in the background.

        Raises the Kafka client's error when Kafka cannot be reached, and
        ``TimeoutError`` when a topic does not exist; :meth:`stop`, then
        :meth:`start` again tries anew with a new consumer.
        """
        client = self._consumer = consumer(
            self._kafka, self._client_id, fetch_max_wait=self._fetch_max_wait
        )
        await client.start()
        assigned = await assign_all(client, *self._topics)
        for followed in self._topics.values():
            followed.partitions = [tp for tp in assigned if tp.topic == followed.topic]
        for followed in self._topics.values():
            if followed.from_beginning:
                await client.seek_to_beginning(*followed.partitions)
            else:
                await seek_to_end(client, followed.partitions)
                followed._caught_up.set()
        topics = ",".join(self._topics)
        self._outage = Outage(log, "kafka.fetch_failed", "kafka.fetch_resumed", topic=topics)
        self._task = asyncio.get_running_loop().create_task(self._follow(), name=f"follow {topics}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self) -> None:
        client = self._consumer
        outage = self._outage
        assert client is not None and outage is not None
        while True:
            try:
                batches = await client.getmany(timeout_ms=500, max_records=self.max_records)
            except KafkaError as exc:  # the broker is away: keep trying, the client reconnects
                outage.failed(exc)
                await asyncio.sleep(1.0)
                continue
            outage.succeeded()
            for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition)):
                followed = self._topics[tp.topic]
                records = batches[tp]
                followed.records += len(records)
                try:
                    followed.on_records(records)
                except Exception:
                    log.exception("follower.handler_failed", extra={"topic": tp.topic})
            for followed in self._topics.values():
                if not followed.caught_up and await self._reached_end(followed.partitions):
                    followed._caught_up.set()

    async def _reached_end(self, partitions: list[TopicPartition]) -> bool:
        client = self._consumer
        assert client is not None
        for tp in partitions:
            highwater = client.highwater(tp)
            if highwater is None or await client.position(tp) < highwater:
                return False
        return True


class TopicFollower(Follower):
    """A :class:`Follower` of one topic: ``on_records`` with each fetched batch of ``topic``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        on_records: OnRecords,
        *,
        client_id: str,
        from_beginning: bool = True,
        max_records: int = 2000,
        fetch_max_wait: float | None = None,
    ) -> None:
        super().__init__(
            kafka, client_id=client_id, max_records=max_records, fetch_max_wait=fetch_max_wait
        )
        self.topic = topic
        self._only = self.follow(topic, on_records, from_beginning=from_beginning)

    @property
    def records(self) -> int:
        return self._only.records

    async def wait_caught_up(self, timeout: float) -> bool:
        return await self._only.wait_caught_up(timeout)


async def read_to_end(
    kafka: KafkaSettings, topic: str, on_records: OnRecords, *, client_id: str, within: float
) -> None:
    """Read ``topic`` from its beginning to its end into ``on_records`` (a command's table).

    Raises ``TimeoutError`` when the end is not reached within ``within`` seconds.
    """
    follower = TopicFollower(kafka, topic, on_records, client_id=client_id)
    try:
        await follower.start()
        if not await follower.wait_caught_up(within):
            raise TimeoutError(f"{topic} was not read to its end within {within:g} s")
    finally:
        await follower.stop()


async def read_table(
    kafka: KafkaSettings,
    topic: str,
    decode: Callable[[bytes | None], T | None],
    *,
    client_id: str,
    within: float,
) -> dict[str, T]:
    """A compacted topic read to its end: each key's latest record, decoded with ``decode``.

    A tombstone (``decode`` gives ``None``) removes its key; records without a
    key or that do not decode are skipped, as their topic's readers skip them.
    Raises ``TimeoutError`` like :func:`read_to_end`.
    """
    table: dict[str, T] = {}

    def apply(records: list[Any]) -> None:
        for record in records:
            if record.key is None:
                continue
            key = record.key.decode("utf-8", "replace")
            try:
                value = decode(record.value)
            except msgspec.MsgspecError:
                continue
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    await read_to_end(kafka, topic, apply, client_id=client_id, within=within)
    return table
