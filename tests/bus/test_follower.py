"""One consumer following several topics: each topic's records reach its own handler."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import NewTopic

from contracts.bus.clients import admin_client, producer
from contracts.bus.follower import Follower
from tests.support.kafka import KafkaUnderTest


async def _topics(kafka: KafkaUnderTest, *names: str) -> None:
    admin = admin_client(kafka.settings, "test-follower")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1) for name in names])
    finally:
        await admin.close()


async def _write(kafka: KafkaUnderTest, topic: str, *values: str) -> None:
    client = producer(kafka.settings, "test-follower")
    await client.start()
    try:
        for value in values:
            await client.send_and_wait(topic, value.encode(), key=value.encode())
    finally:
        await client.stop()


async def _until(predicate: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_each_topic_reaches_its_handler_from_its_start(kafka: KafkaUnderTest) -> None:
    table, stream = f"test-table-{uuid.uuid4().hex[:8]}", f"test-stream-{uuid.uuid4().hex[:8]}"
    await _topics(kafka, table, stream)
    await _write(kafka, table, "t1", "t2", "t3", "t4")
    await _write(kafka, stream, "before")  # written before the start: not delivered
    seen: dict[str, list[str]] = {table: [], stream: []}
    follower = Follower(kafka.settings, client_id="test-follower", fetch_max_wait=0.1)
    from_table = follower.follow(table, lambda rs: seen[table].extend(r.value.decode() for r in rs))
    from_stream = follower.follow(
        stream,
        lambda rs: seen[stream].extend(r.value.decode() for r in rs),
        from_beginning=False,
    )
    await follower.start()
    try:
        assert from_stream.caught_up  # from the end: nothing to catch up with
        assert await from_table.wait_caught_up(20)
        assert follower.caught_up
        assert sorted(seen[table]) == ["t1", "t2", "t3", "t4"]
        await _write(kafka, stream, "s1", "s2")
        await _write(kafka, table, "t5")
        await _until(lambda: len(seen[stream]) == 2 and len(seen[table]) == 5)
        assert sorted(seen[stream]) == ["s1", "s2"]
        assert sorted(seen[table]) == ["t1", "t2", "t3", "t4", "t5"]
        assert (from_table.records, from_stream.records) == (5, 2)
        with pytest.raises(RuntimeError):
            follower.follow("another", lambda rs: None)
    finally:
        await follower.stop()


async def test_a_topic_that_does_not_exist_fails_the_start(kafka: KafkaUnderTest) -> None:
    follower = Follower(kafka.settings, client_id="test-follower")
    follower.follow(f"test-missing-{uuid.uuid4().hex[:8]}", lambda rs: None)
    try:
        with pytest.raises(TimeoutError, match="does not exist"):
            await follower.start()
    finally:
        await follower.stop()
