"""Collect a topic's records in a test, from the moment the collector starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from contracts.bus.follower import TopicFollower
from tests.support.kafka import KafkaUnderTest


class Collector:
    """Every record written to ``topic`` after :meth:`start`; ``wait_for`` a condition on them."""

    def __init__(self, kafka: KafkaUnderTest, topic: str, *, from_beginning: bool = False) -> None:
        self.records: list[Any] = []
        self._changed = asyncio.Event()
        self._follower = TopicFollower(
            kafka.settings,
            topic,
            self._on_records,
            client_id=f"test-collector-{topic}",
            from_beginning=from_beginning,
            fetch_max_wait=kafka.settings.fetch_max_wait,
        )

    def _on_records(self, records: list[Any]) -> None:
        self.records.extend(records)
        self._changed.set()

    async def start(self) -> Collector:
        await self._follower.start()
        return self

    async def stop(self) -> None:
        await self._follower.stop()

    async def __aenter__(self) -> Collector:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def keyed(self, key: str) -> list[Any]:
        return [r for r in self.records if r.key == key.encode()]

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], timeout: float = 15.0, what: str = ""
    ) -> list[Any]:
        """Wait until ``predicate(records)`` holds; fail with what was seen if it does not."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.records):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = "\n".join(repr(r.value)[:300] for r in self.records[-20:])
            raise AssertionError(
                f"timed out waiting for {what or predicate}; last records:\n{seen}"
            ) from None
        return self.records
