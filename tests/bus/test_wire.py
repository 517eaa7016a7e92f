"""csms's own produce path: requests byte for byte as Kafka's schema has them, and retries."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka.protocol.produce import ProduceRequest_v7, ProduceResponse_v7
from aiokafka.protocol.transaction import InitProducerIdRequest_v0, InitProducerIdResponse_v0
from aiokafka.record.default_records import DefaultRecordBatch

from contracts.bus.clients import producer
from contracts.bus.publisher import Publisher
from contracts.bus.wire import (
    Wire,
    WireSender,
    init_producer_id_request,
    init_producer_id_response,
    produce_request,
    produce_response,
)
from tests.bus.test_publisher import TOPIC, Outcomes, _read
from tests.support.kafka import KafkaUnderTest


def _as_aiokafka_writes_it(request: object, correlation_id: int, client_id: str) -> bytes:
    header = request.build_request_header(correlation_id, client_id)  # type: ignore[attr-defined]
    body = header.encode() + request.encode()  # type: ignore[attr-defined]
    return len(body).to_bytes(4, "big") + body


def test_a_produce_request_is_the_bytes_kafkas_schema_gives() -> None:
    batches = [("a", 0, b"batch-a0"), ("b", 3, b"batch-b3"), ("a", 2, b"batch-a2")]
    expected = ProduceRequest_v7(
        None, -1, 30000, [("a", [(0, b"batch-a0"), (2, b"batch-a2")]), ("b", [(3, b"batch-b3")])]
    )
    assert produce_request(17, "csms-gateway-x", 30000, batches) == _as_aiokafka_writes_it(
        expected, 17, "csms-gateway-x"
    )


def test_a_produce_response_gives_each_partitions_error_code() -> None:
    response = ProduceResponse_v7(
        [("a", [(0, 0, 41, -1, 0), (2, 6, -1, -1, 0)]), ("b", [(3, 46, -1, -1, 0)])], 0
    )
    frame = (99).to_bytes(4, "big") + response.encode()
    assert produce_response(frame) == {("a", 0): 0, ("a", 2): 6, ("b", 3): 46}


def test_init_producer_id_request_and_response() -> None:
    expected = InitProducerIdRequest_v0(None, 60000)
    assert init_producer_id_request(5, "c", 60000) == _as_aiokafka_writes_it(expected, 5, "c")
    frame = (5).to_bytes(4, "big") + InitProducerIdResponse_v0(0, 0, 4711, 3).encode()
    assert init_producer_id_response(frame) == (0, 4711, 3)


async def test_a_batch_carries_the_producer_id_and_its_partitions_next_sequence(
    kafka: KafkaUnderTest,
) -> None:
    client = producer(kafka.settings, "test-wire-sequence")
    await client.start()
    sender = WireSender(client, Wire(client_id="t", idempotence=True))
    sender._producer_id, sender._epoch = 4711, 2  # as InitProducerId would have answered
    sender._sequences[(TOPIC, 1)] = 40
    written: list[bytes] = []

    class Recorder:
        connected = True

        def request(self, build):  # type: ignore[no-untyped-def]
            written.append(build(1))
            return asyncio.get_running_loop().create_future()

    builder = client.create_batch()
    for n in range(3):
        builder.append(timestamp=None, key=b"k", value=b"%d" % n, headers=[])
    sender.send(TOPIC, 1, builder, 3, lambda exc: None)
    sender._round = None
    batch = sender._queued.pop()
    sender._write(Recorder(), [batch])  # type: ignore[arg-type]
    await client.stop()

    assert batch.data is not None and written and batch.data in written[0]
    stored = DefaultRecordBatch(batch.data)
    assert (stored.producer_id, stored.producer_epoch, stored.base_sequence) == (4711, 2, 40)


async def test_records_written_when_the_connection_dies_are_sent_again_and_acked_once(
    kafka: KafkaUnderTest,
) -> None:
    client = producer(kafka.settings, "test-wire-lost", enable_idempotence=False)
    await client.start()
    publisher = Publisher(client, linger=0.001, wire=Wire(client_id="t", idempotence=False))
    await publisher.start(TOPIC)
    sender = publisher._wire_sender
    assert sender is not None
    key = f"CP-{uuid.uuid4().hex[:8]}".encode()
    done = Outcomes()
    acks, errors = done.acks, done.errors

    for n in range(50):
        publisher.publish(TOPIC, key, b"%d" % n, [], done(n))
    async with asyncio.timeout(10):  # until the first request is on its way
        while not any(c._waiting for c in sender._connections.values()):
            await asyncio.sleep(0)
    for connection in sender._connections.values():
        assert connection.transport is not None
        connection.transport.abort()  # as a broker restart or a network fault would
    for n in range(50, 100):
        publisher.publish(TOPIC, key, b"%d" % n, [], done(n))
    await asyncio.wait_for(publisher.flush(), 20)
    await publisher.stop()
    await client.stop()

    assert errors == [] and sorted(acks) == list(range(100)) and set(acks.values()) == {1}
    stored = [int(value) for _, value in await _read(kafka, {key}, 100)]
    # at least once without idempotence (the broker may have stored what it could not
    # answer), and in order: a batch is sent again before the next one is sent
    assert list(dict.fromkeys(stored)) == list(range(100))
