"""What one produce request costs the producing process: aiokafka's path against csms's own.

    .venv/bin/python -m tests.benchmarks.produce_request [--rounds 3] [--requests 3000]

A closed loop against one local Apache Kafka node (``LocalKafka``): three
records are handed to a :class:`~contracts.bus.publisher.Publisher` and
flushed (one produce request, acknowledged), then the next three. CPU of this
process per request (``time.process_time``) for the Publisher on aiokafka's
``send_batch`` (``CSMS_KAFKA_PRODUCE_PATH=aiokafka``) and on csms's own path
(``contracts.bus.wire``, ADR 0013), built by ``clients.publisher`` as the
gateway builds its own; idempotence on (the default) and no compression, so
that only the request path differs. Interleaved rounds, median.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.bus import clients
from contracts.bus.broker import LocalKafka
from contracts.settings import KafkaSettings
from tests.benchmarks import _support as support

TOPIC = "produce-request"
PATHS = ("aiokafka", "csms")


async def _round(kafka: KafkaSettings, path: str, requests: int) -> float:
    """µs of this process's CPU per produce request."""
    settings = dataclasses.replace(kafka, produce_path=path, compression="none", idempotence=True)
    publisher = clients.publisher(settings, f"bench-{path}", linger=0.0)
    await publisher.producer.start()
    await publisher.start(TOPIC)
    value = b'{"payload":"%s"}' % (b"x" * 400)
    try:
        for _ in range(50):  # warm up: connections, metadata
            publisher.publish(TOPIC, b"CP-1", value, [], lambda exc: None, 0)
            await publisher.flush()
        started = time.process_time()
        for _ in range(requests):
            for _ in range(3):
                publisher.publish(TOPIC, b"CP-1", value, [], lambda exc: None, 0)
            await publisher.flush()
        return (time.process_time() - started) / requests * 1e6
    finally:
        await publisher.stop()
        await publisher.producer.stop()


async def _measure(kafka: KafkaSettings, rounds: int, requests: int) -> dict[str, list[float]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    await admin.close()
    figures: dict[str, list[float]] = {path: [] for path in PATHS}
    for r in range(rounds):
        for path in PATHS if r % 2 == 0 else reversed(PATHS):
            figures[path].append(await _round(kafka, path, requests))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with LocalKafka(0) as broker:
        figures = asyncio.run(_measure(broker.kafka_settings(), args.rounds, args.requests))
    results["us_per_request"] = figures
    support.finish(
        [
            [path, f"{statistics.median(us):.0f}", " / ".join(f"{u:.0f}" for u in us)]
            for path, us in figures.items()
        ],
        results,
        args.json,
        headers=("produce path", "µs of CPU per request, median", "rounds"),
    )


if __name__ == "__main__":
    main()
