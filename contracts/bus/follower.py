"""Follow every partition of a topic without a consumer group, and know when you have caught up.

For state that every instance needs whole: compacted registries read from the
beginning (stations, id tokens, presence) and the command stream every gateway
reads from the end. Nothing is committed; a restart reads again.

"Caught up" means every partition's position reached the high watermark at
least once, as the fetch responses report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.bus.clients import assign_all, consumer, seek_to_end
from contracts.bus.outage import Outage
from contracts.settings import KafkaSettings

__all__ = ["TopicFollower"]

log = logging.getLogger(__name__)

OnRecords = Callable[[list[Any]], None]


class TopicFollower:
    """Calls ``on_records`` with each fetched batch of records of ``topic``, in partition order.

    ``from_beginning=False`` starts at the end: only records written after
    :meth:`start` returned are delivered. Fetches wait at the broker up to
    ``fetch_max_wait`` seconds, by default the settings' ``table_fetch_max_wait``
    (a registry); a follower on a reply's path passes ``kafka.fetch_max_wait``.
    """

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
        self.topic = topic
        self.on_records = on_records
        self.from_beginning = from_beginning
        self.max_records = max_records
        if fetch_max_wait is None:
            fetch_max_wait = kafka.table_fetch_max_wait
        self._consumer: AIOKafkaConsumer = consumer(kafka, client_id, fetch_max_wait=fetch_max_wait)
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._outage = Outage(log, "kafka.fetch_failed", "kafka.fetch_resumed", topic=topic)
        self.records = 0

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    async def start(self) -> None:
        """Connect, position, and start following in the background."""
        await self._consumer.start()
        self._partitions = await assign_all(self._consumer, self.topic)
        if self.from_beginning:
            await self._consumer.seek_to_beginning(*self._partitions)
        else:
            await seek_to_end(self._consumer, self._partitions)
            self._caught_up.set()
        self._task = asyncio.get_running_loop().create_task(
            self._follow(), name=f"follow {self.topic}"
        )

    async def wait_caught_up(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._caught_up.wait()
        return self.caught_up

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._consumer.stop()

    async def _follow(self) -> None:
        client = self._consumer
        while True:
            try:
                batches = await client.getmany(timeout_ms=500, max_records=self.max_records)
            except KafkaError as exc:  # the broker is away: keep trying, the client reconnects
                self._outage.failed(exc)
                await asyncio.sleep(1.0)
                continue
            self._outage.succeeded()
            for tp in sorted(batches, key=lambda tp: tp.partition):
                records = batches[tp]
                self.records += len(records)
                try:
                    self.on_records(records)
                except Exception:
                    log.exception("follower.handler_failed", extra={"topic": self.topic})
            if not self._caught_up.is_set() and await self._reached_end():
                self._caught_up.set()

    async def _reached_end(self) -> bool:
        for tp in self._partitions:
            highwater = self._consumer.highwater(tp)
            if highwater is None or await self._consumer.position(tp) < highwater:
                return False
        return True
