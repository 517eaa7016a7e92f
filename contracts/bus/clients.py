"""Kafka clients built from :class:`~contracts.settings.KafkaSettings`, and positioning helpers.

Every csms process creates its producers, consumers and admin clients here, so
security, compression and idempotence are configured in one place.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.bus.publisher import Publisher
from contracts.bus.wire import Wire
from contracts.settings import KafkaSettings

__all__ = [
    "admin_client",
    "assign_all",
    "common_config",
    "consumer",
    "producer",
    "publisher",
    "seek_to_end",
    "wire",
]


def common_config(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap.split(","),
        "client_id": client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_context"] = _ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        config["sasl_plain_password"] = kafka.sasl_password
    return config


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=kafka.ssl_cafile or None)


def wire(kafka: KafkaSettings, client_id: str) -> Wire | None:
    """csms's own produce path for a Publisher, or None where aiokafka's is used.

    None when the settings ask for aiokafka's, and under SASL, which the own
    path does not speak.
    """
    if kafka.produce_path != "csms" or kafka.security_protocol.startswith("SASL"):
        return None
    return Wire(
        client_id=client_id,
        idempotence=kafka.idempotence,
        compression=kafka.compression,
        ssl_context=_ssl_context(kafka) if kafka.security_protocol == "SSL" else None,
    )


def producer(kafka: KafkaSettings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer with acks=all; idempotent and compressed as the settings say.

    It does not linger: :class:`~contracts.bus.publisher.Publisher` has closed
    its batches after its own linger, and aiokafka's would hold each of them
    for another ``linger_ms`` and wake the loop once more per batch (measured:
    2.6 ms and 340 µs of CPU per produce request, docs/benchmarks.md).

    Command-line tools that write a record or two pass ``enable_idempotence=False``:
    what they write is deduplicated downstream anyway (commands by ``command_id``,
    registry records by compaction), and so they work against any broker without
    the idempotence setting.
    """
    config = common_config(kafka, client_id) | {
        "acks": "all",
        "enable_idempotence": kafka.idempotence,
        "compression_type": None if kafka.compression == "none" else kafka.compression,
        "linger_ms": 0,
    }
    return AIOKafkaProducer(**(config | overrides))


def publisher(
    kafka: KafkaSettings,
    client_id: str,
    *,
    linger: float,
    on_batch_acked: Callable[[int, float, BaseException | None], None] | None = None,
) -> Publisher:
    """A :class:`Publisher` on a new producer (start both), on csms's own produce path if it can.

    On the own path the producer only supplies metadata and record batches: the
    producer id, the sequences and the compression are the path's, so the
    producer is neither idempotent nor compressing.
    """
    path = wire(kafka, client_id)
    if path is None:
        client = producer(kafka, client_id)
    else:
        client = producer(kafka, client_id, enable_idempotence=False, compression_type=None)
    return Publisher(client, linger=linger, on_batch_acked=on_batch_acked, wire=path)


# aiokafka's fetcher retries a leader it cannot reach without asking for metadata again, so a
# consumer learns a lost broker's partitions' new leaders only at its next periodic refresh
# (5 min by default); every 3 s instead, one small Metadata request
METADATA_MAX_AGE_MS = 3000


def consumer(
    kafka: KafkaSettings,
    client_id: str,
    *topics: str,
    fetch_max_wait: float | None = None,
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer with manual commits (``group_id=None`` unless given: no group).

    Its fetches wait at most ``fetch_max_wait`` seconds at the broker
    (default: the settings' ``fetch_max_wait``, for what is on a reply's path),
    and it asks for metadata every :data:`METADATA_MAX_AGE_MS`, so that it follows
    a partition to its new leader within seconds when a broker is lost.
    """
    wait = kafka.fetch_max_wait if fetch_max_wait is None else fetch_max_wait
    config = common_config(kafka, client_id) | {
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        "fetch_max_wait_ms": max(1, round(wait * 1000)),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    return AIOKafkaConsumer(*topics, **(config | overrides))


def admin_client(kafka: KafkaSettings, client_id: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**common_config(kafka, client_id))


async def assign_all(
    client: AIOKafkaConsumer, *topics: str, within: float = 3.0
) -> list[TopicPartition]:
    """Assign every partition of ``topics`` to a group-less consumer and return them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    assigned = []
    for topic in topics:
        while True:
            partitions = client.partitions_for_topic(topic)
            if partitions:
                break
            if loop.time() > deadline:
                raise TimeoutError(
                    f"topic {topic} does not exist (csms topics create makes the csms topics)"
                )
            await client._client.force_metadata_update()
            await asyncio.sleep(0.1)
        assigned += [TopicPartition(topic, p) for p in sorted(partitions)]
    client.assign(assigned)
    return assigned


async def seek_to_end(client: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> None:
    """Position at the end of each partition now, so that only later records are read.

    aiokafka resolves a seek to the end lazily, at the next fetch; asking for the
    position resolves it here (one ListOffsets), so that a record written after
    this returns is never skipped.
    """
    partitions = list(partitions)
    await client.seek_to_end(*partitions)
    for tp in partitions:
        await client.position(tp)
