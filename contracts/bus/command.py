"""Running a ``csms`` subcommand's work against Kafka, with the exit statuses such commands share.

``csms stations`` and ``csms id-tokens`` read and write a compacted registry;
both answer a bad request with status 2 and an unreachable or slow Kafka with
status 1, each with one line on standard error that names the command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TextIO

from aiokafka.errors import KafkaError

from contracts.bus.clients import producer
from contracts.envelopes import record_key
from contracts.headers import Headers
from contracts.settings import KafkaSettings
from contracts.topics import Topic

__all__ = ["UsageError", "run_against_kafka", "write_record"]


class UsageError(Exception):
    """The command cannot do what it was asked (exit status 2); the message says why."""


def run_against_kafka(
    name: str, kafka: KafkaSettings, work: Coroutine[Any, Any, None], err: TextIO
) -> int:
    """Run ``work``; the exit status, and on failure one line to ``err`` starting with ``name``."""
    try:
        asyncio.run(work)
    except UsageError as exc:
        print(f"{name}: {exc}", file=err)
        return 2
    except TimeoutError as exc:
        print(f"{name}: {exc}", file=err)
        return 1
    except (KafkaError, OSError) as exc:
        print(f"{name}: cannot reach Kafka at {kafka.bootstrap}: {exc}", file=err)
        return 1
    return 0


async def write_record(
    kafka: KafkaSettings,
    topic: Topic,
    key: str,
    value: bytes | None,
    headers: Headers,
    *,
    client_id: str,
) -> None:
    """Write one record of a command (``value`` ``None``: a tombstone) and wait for Kafka."""
    client = producer(kafka, client_id, enable_idempotence=False)
    await client.start()
    try:
        await client.send_and_wait(topic.name, value, key=record_key(key), headers=headers)
    finally:
        await client.stop()
