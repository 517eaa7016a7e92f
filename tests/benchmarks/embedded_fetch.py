"""How late the embedded broker hands a waiting consumer a new record, per fetch wait.

    .venv/bin/python -m tests.benchmarks.embedded_fetch [--records 10] [--json out.json]

Kafka answers a waiting fetch as soon as a record arrives; the embedded broker
(Tansu) does not. For each ``fetch_max_wait`` (20, 100, 500 ms) a consumer
follows an empty partition: first idle for 3 s (fetch requests per second,
counted on the client), then ``--records`` times a record is produced at an
odd moment and the time from the producer's acknowledgement to the consumer
holding it is taken. This is why csms talks to the embedded broker with short
waits (``EmbeddedBroker.kafka_settings``) and to Kafka with its default
500 ms (ADR 0014).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.bus.broker import EmbeddedBroker
from tests.benchmarks import _support as support

WAITS_MS = (20, 100, 500)
TOPIC = "fetch-latency"


async def _one(
    producer: AIOKafkaProducer, bootstrap: str, wait: int, records: int
) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=wait, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        send, requests = consumer._client.send, [0]

        async def counted(*args: Any, **kwargs: Any) -> Any:
            requests[0] += 1
            return await send(*args, **kwargs)

        consumer._client.send = counted
        await asyncio.sleep(0.5)
        requests[0], started = 0, time.perf_counter()
        await asyncio.sleep(3.0)
        rate = requests[0] / (time.perf_counter() - started)
        latencies = []
        for _ in range(records):
            await asyncio.sleep(0.137)  # not in step with the waits
            sent = time.perf_counter()
            await producer.send_and_wait(TOPIC, b"x")
            while not (await consumer.getmany(timeout_ms=2000)).get(tp):
                pass
            latencies.append((time.perf_counter() - sent) * 1000)
    finally:
        await consumer.stop()
    return {
        "idle_requests_per_s": rate,
        "median_ms": statistics.median(latencies),
        "max_ms": max(latencies),
    }


async def _measure(bootstrap: str, records: int) -> dict[int, dict[str, float]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return {wait: await _one(producer, bootstrap, wait, records) for wait in WAITS_MS}
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10, help="records timed per wait")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with EmbeddedBroker(0) as broker:
        figures = asyncio.run(_measure(broker.bootstrap, args.records))
    results["by_wait_ms"] = figures
    support.finish(
        [
            [wait, f"{f['idle_requests_per_s']:.1f}", f"{f['median_ms']:.1f}", f"{f['max_ms']:.1f}"]
            for wait, f in figures.items()
        ],
        results,
        args.json,
        headers=("fetch_max_wait ms", "idle fetches/s", "record seen after: median ms", "max ms"),
    )


if __name__ == "__main__":
    main()
