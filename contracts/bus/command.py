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

from contracts.settings import KafkaSettings

__all__ = ["UsageError", "run_against_kafka"]


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
