"""A worker's state changelog: a compacted topic, partition for partition with ocpp.events.v1.

The changelog of the consumer group ``G`` is the topic ``G-changelog`` (as
Kafka Streams names its changelogs), created by the worker when missing, with
as many partitions as ``ocpp.events.v1``. Partition ``n`` of the changelog
holds the states of partition ``n`` of the events (written to it explicitly,
never by the partitioner):

- key = the station id, value = the station's state in the worker's format
  (a tombstone when the state was deleted);
- key = ``#checkpoint`` (``#`` never appears in a station id), value = a
  :class:`~workers.runtime.partition.CheckpointValue`: the last event offset
  the states before it reflect, and the partition's own state.

It is internal to the worker, not part of the downstream contract (nobody else
reads it; its format may change with the worker), and so not in the topic
catalogue. :func:`read_changelog` rebuilds a partition's states: every record up
to the last checkpoint record counts; records after it belong to a checkpoint
that was never finished and are ignored (their events are handled again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable

import msgspec
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from contracts.bus.clients import admin_client, consumer
from contracts.settings import KafkaSettings
from workers.runtime.partition import CheckpointValue

__all__ = [
    "CHECKPOINT_KEY",
    "Restored",
    "UnusableTopics",
    "changelog_topic",
    "ensure_changelog",
    "read_changelog",
]

log = logging.getLogger(__name__)

CHECKPOINT_KEY = b"#checkpoint"
TOPIC_ALREADY_EXISTS = 36

_CHECKPOINT = msgspec.json.Decoder(CheckpointValue)


class UnusableTopics(RuntimeError):
    """The topics are not what the worker needs (a changelog with too few partitions, an
    unreadable checkpoint, more event partitions than the worker handles): it cannot run."""


def changelog_topic(group: str) -> str:
    return f"{group}-changelog"


@dataclasses.dataclass(slots=True)
class Restored:
    """A partition's states as the changelog holds them, still encoded."""

    offset: int | None = None  # of the last checkpoint; None: never checkpointed
    state: bytes | None = None
    stations: dict[str, bytes] = dataclasses.field(default_factory=dict)


async def ensure_changelog(
    kafka: KafkaSettings,
    topic: str,
    partitions: int,
    *,
    replication_factor: int,
    compaction_lag: float,
) -> None:
    """Create the changelog when missing; refuse one with fewer partitions than the events."""
    admin = admin_client(kafka, f"{topic}-admin")
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs={
                        "cleanup.policy": "compact",
                        "min.compaction.lag.ms": str(int(compaction_lag * 1000)),
                    },
                )
            ]
        )
        for name, code, message in (e[:3] for e in response.topic_errors):
            if code == 0:
                log.info("changelog.created", extra={"topic": name, "partitions": partitions})
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(f"creating {name} failed: error {code} {message or ''}".strip())
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = len(described[0]["partitions"])
    if found < partitions:
        raise UnusableTopics(
            f"{topic} has {found} partitions, ocpp.events.v1 has {partitions}: add partitions "
            "to the changelog (kafka-topics --alter) before starting the worker"
        )


async def read_changelog(
    kafka: KafkaSettings,
    topic: str,
    partitions: Iterable[int],
    *,
    client_id: str,
    timeout: float,
) -> dict[int, Restored]:
    """Read the changelog ``partitions`` to their end; their states as of their last checkpoint.

    The end is the high watermark of fetch responses (not ListOffsets, which
    the embedded broker answers wrongly after batched produces).
    """
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    restored = {tp.partition: Restored() for tp in wanted}
    if not wanted:
        return restored
    # states written after the last checkpoint seen so far, per partition
    pending: dict[int, dict[str, bytes | None]] = {tp.partition: {} for tp in wanted}
    committed: dict[int, dict[str, bytes | None]] = {tp.partition: {} for tp in wanted}
    reader = consumer(
        kafka,
        client_id,
        max_poll_records=5000,
    )
    await reader.start()
    try:
        reader.assign(wanted)
        await reader.seek_to_beginning(*wanted)
        async with asyncio.timeout(timeout):
            remaining = set(wanted)
            while remaining:
                batches = await reader.getmany(*remaining, timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        if record.key == CHECKPOINT_KEY:
                            if record.value is None:
                                raise UnusableTopics(f"{topic}[{tp.partition}]: a null checkpoint")
                            checkpoint = _CHECKPOINT.decode(record.value)
                            committed[tp.partition].update(pending[tp.partition])
                            pending[tp.partition] = {}
                            restored[tp.partition].offset = checkpoint.offset
                            restored[tp.partition].state = bytes(checkpoint.state)
                        elif record.key is not None:
                            pending[tp.partition][record.key.decode()] = record.value
                for tp in list(remaining):
                    highwater = reader.highwater(tp)
                    if highwater is not None and await reader.position(tp) >= highwater:
                        remaining.discard(tp)
    except TimeoutError:
        raise UnusableTopics(f"{topic} was not read to its end within {timeout:g} s") from None
    except msgspec.DecodeError as exc:
        raise UnusableTopics(f"{topic}: an unreadable checkpoint: {exc}") from exc
    finally:
        await reader.stop()
    for number, states in committed.items():
        restored[number].stations = {k: v for k, v in states.items() if v is not None}
    return restored
