"""The batching publisher against a real broker: every record acked once, in order per key."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.bus import clients
from contracts.bus.clients import assign_all
from contracts.bus.publisher import Done, Publisher, partition_for
from contracts.bus.wire import Wire
from tests.support.kafka import KafkaUnderTest

TOPIC = "ocpp.events.v1"


async def _read(kafka: KafkaUnderTest, keys: set[bytes], count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    seen: list[tuple[bytes, bytes]] = []
    try:
        partitions = await assign_all(consumer, TOPIC)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(30):
            while len(seen) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.extend((r.key, r.value) for r in records if r.key in keys)
    finally:
        await consumer.stop()
    return seen


class Outcomes:
    """``on_done`` callbacks of numbered records: how often each was called, which failed, why."""

    def __init__(self) -> None:
        self.acks: collections.Counter[int] = collections.Counter()
        self.errors: list[BaseException] = []
        self.failed: set[int] = set()

    def __call__(self, n: int) -> Done:
        def on_done(exc: BaseException | None) -> None:
            self.acks[n] += 1
            if exc is not None:
                self.errors.append(exc)
                self.failed.add(n)

        return on_done


@pytest.mark.parametrize("path", ["csms", "aiokafka"])
async def test_every_record_is_acked_once_and_per_key_order_holds(
    kafka: KafkaUnderTest, path: str
) -> None:
    batches: list[int] = []
    # as the gateway and the workers make theirs: lz4 (the default), compressed by the path
    publisher = clients.publisher(
        dataclasses.replace(kafka.settings, produce_path=path),
        "test-publisher",
        linger=0.002,
        on_batch_acked=lambda n, age, exc: batches.append(n),
    )
    assert (publisher.wire is not None) == (path == "csms")
    client = publisher.producer
    await client.start()
    await publisher.start(TOPIC)
    keys = [f"CP-{uuid.uuid4().hex[:8]}".encode() for _ in range(20)]
    done = Outcomes()
    acks, errors = done.acks, done.errors

    # big enough values that batches fill up and roll over, not only linger
    total = 3000
    for i in range(total):
        key = keys[i % len(keys)]
        value = b'{"seq": %d, "pad": "%s"}' % (i, b"x" * 400)
        publisher.publish(TOPIC, key, value, [("ocpp-action", b"Test")], done(i))
    assert publisher.pending == total
    await publisher.flush()
    await publisher.stop()
    await client.stop()

    assert errors == []
    assert all(acks[i] == 1 for i in range(total)) and len(acks) == total
    assert publisher.pending == 0
    assert sum(batches) == total and len(batches) > len({partition_for(k, 4) for k in keys})

    records = await _read(kafka, set(keys), total)
    by_key: dict[bytes, list[int]] = collections.defaultdict(list)
    for key, value in records:
        by_key[key].append(int(value.split(b",")[0].split(b":")[1]))
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
    assert sum(len(s) for s in by_key.values()) == total


def test_partition_for_matches_kafkas_default_partitioner() -> None:
    # reference values of the Java client's murmur2 partitioner (Utils.toPositive(murmur2(key)) % n)
    from aiokafka.partitioner import DefaultPartitioner

    for key in (b"CP-1", b"station-\xc3\xa9", b"x" * 48):
        for n in (1, 4, 12, 100):
            assert partition_for(key, n) == DefaultPartitioner()(key, list(range(n)), [])


@pytest.mark.parametrize("path", ["csms", "aiokafka"])
async def test_records_fail_to_their_callbacks_when_kafka_is_gone(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    from contracts.bus.broker import LocalKafka

    with LocalKafka(0) as broker:
        client = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, request_timeout_ms=1500, retry_backoff_ms=100
        )
        await client.start()
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
        await admin.close()
        wire = Wire(client_id="t", idempotence=False, delivery_timeout=2.0)
        publisher = Publisher(client, wire=wire if path == "csms" else None)
        await publisher.start(TOPIC)
    # the broker is stopped now
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    publisher.publish(TOPIC, b"CP-1", b"{}", [], outcome.set_result)
    with caplog.at_level(logging.INFO, logger="contracts.bus.wire"):
        exc = await asyncio.wait_for(outcome, 30)
    assert exc is not None
    assert publisher.pending == 0
    if path == "csms":
        # a connect attempt every 100 ms for 2 s, and one warning for the outage
        warnings = [r for r in caplog.records if r.msg == "kafka.connect_failed"]
        assert len(warnings) == 1, warnings
    await asyncio.wait_for(publisher.stop(), 5)
    await asyncio.wait_for(client.stop(), 10)


class HeldProducer(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer's batches, with acknowledgements the test gives by hand.

    A broker that is slow on one partition and not another cannot be arranged
    with the embedded broker, hence this one stand-in.
    """

    def __init__(self) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1")
        self.sent: list[tuple[int, int, asyncio.Future[object]]] = []  # partition, records

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, batch.record_count(), future))
        return future


async def test_a_partition_waiting_for_its_ack_holds_up_no_other_and_gathers_a_batch() -> None:
    producer = HeldProducer()
    publisher = Publisher(producer, linger=0.001)
    await publisher.start(TOPIC)
    done: list[int] = []
    for n in range(3):
        publisher.publish(TOPIC, b"k", b"v", [], lambda exc, n=n: done.append(n), partition=0)
    await asyncio.sleep(0.02)
    assert [(p, n) for p, n, _ in producer.sent] == [(0, 3)]
    # partition 0 waits for its ack; partition 1 goes ahead, partition 0's records gather
    for n in range(3, 8):
        publisher.publish(TOPIC, b"k", b"v", [], lambda exc, n=n: done.append(n), partition=0)
    publisher.publish(TOPIC, b"j", b"v", [], lambda exc: done.append(100), partition=1)
    await asyncio.sleep(0.02)
    assert [(p, n) for p, n, _ in producer.sent] == [(0, 3), (1, 1)]
    producer.sent[1][2].set_result(None)
    await asyncio.sleep(0)
    assert done == [100]
    # the ack of partition 0 sends what gathered, in one batch, at once
    producer.sent[0][2].set_result(None)
    await asyncio.sleep(0.005)
    assert done == [100, 0, 1, 2]
    assert [(p, n) for p, n, _ in producer.sent][2:] == [(0, 5)]
    producer.sent[2][2].set_result(None)
    await asyncio.sleep(0)
    assert done == [100, 0, 1, 2, 3, 4, 5, 6, 7]
    assert publisher.pending == 0
    assert publisher.oldest_pending_age() == 0.0
    await publisher.stop()
    await producer.stop()


async def test_after_an_ack_a_young_batch_still_lingers_for_more_records() -> None:
    producer = HeldProducer()
    publisher = Publisher(producer, linger=0.05)
    await publisher.start(TOPIC)
    publisher.publish(TOPIC, b"k", b"v", [], lambda exc: None, partition=0)
    await asyncio.sleep(0.08)
    assert [(p, n) for p, n, _ in producer.sent] == [(0, 1)]
    publisher.publish(TOPIC, b"k", b"v", [], lambda exc: None, partition=0)
    producer.sent[0][2].set_result(None)  # acked while the next batch is a moment old
    await asyncio.sleep(0.01)
    assert len(producer.sent) == 1, "sent before it lingered"
    publisher.publish(TOPIC, b"k", b"v", [], lambda exc: None, partition=0)
    await asyncio.sleep(0.08)
    assert [(p, n) for p, n, _ in producer.sent] == [(0, 1), (0, 2)]
    producer.sent[1][2].set_result(None)
    await asyncio.sleep(0)
    assert publisher.pending == 0
    await publisher.stop()
    await producer.stop()
