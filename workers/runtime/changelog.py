"""A worker's state changelog: a compacted topic, partition for partition with ocpp.events.v1.

The changelog of the consumer group ``G`` is the topic ``G-changelog`` (as
Kafka Streams names its changelogs), created by the worker when missing, with
as many partitions as ``ocpp.events.v1``. Partition ``n`` of the changelog
holds the states of partition ``n`` of the events (written to it explicitly,
never by the partitioner):

- key = the station id, value = the station's state in the worker's format
  (a tombstone when the state was deleted), header ``csms-checkpoint`` = the
  offset of the checkpoint it was written for;
- key = ``#checkpoint`` (``#`` never appears in a station id), value = a
  :class:`~workers.runtime.partition.CheckpointValue`: the last event offset
  the states before it reflect, and the partition's own state.

It is internal to the worker, not part of the downstream contract (nobody else
reads it; its format may change with the worker), and so not in the topic
catalogue. :func:`read_changelog` rebuilds a partition's states: a state
record counts once the checkpoint record of its checkpoint follows it. Records
of a checkpoint that never finished (after the last checkpoint record, or
followed by another checkpoint's record, once a partition was rewound or its
owner died mid-checkpoint) are ignored: their events are handled again.
Records without the header (written before it existed) count at the next
checkpoint record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable

import msgspec
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError

from contracts.bus.clients import admin_client, consumer
from contracts.settings import KafkaSettings
from contracts.topics import EVENTS
from workers.runtime.partition import CheckpointValue

__all__ = [
    "CHECKPOINT_HEADER",
    "CHECKPOINT_KEY",
    "Restored",
    "UnusableTopics",
    "changelog_topic",
    "ensure_changelog",
    "read_changelog",
]

log = logging.getLogger(__name__)

CHECKPOINT_KEY = b"#checkpoint"
CHECKPOINT_HEADER = "csms-checkpoint"
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
    wait: float,
) -> None:
    """Create the changelog when missing and wait until every partition has a leader.

    ``replication_factor`` 0 takes ocpp.events.v1's; ``min.insync.replicas`` is
    one less, at least 1 and at most 2. Kafka answers CreateTopics before every
    broker knows the new topic, so the metadata is asked again until it lists
    ``partitions`` partitions, each with a leader, for at most ``wait`` seconds.

    Raises :class:`UnusableTopics` for a changelog with fewer partitions than the
    events, ``KafkaError`` when a leader is still missing after ``wait`` (Kafka is
    not there yet: the caller retries the start).
    """
    admin = admin_client(kafka, f"{topic}-admin")
    await admin.start()
    try:
        if replication_factor <= 0:
            replication_factor = await _replicas_of(admin, EVENTS.name)
        response = await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs={
                        "cleanup.policy": "compact",
                        "min.compaction.lag.ms": str(int(compaction_lag * 1000)),
                        "min.insync.replicas": str(min_insync_replicas(replication_factor)),
                    },
                )
            ]
        )
        for name, code, message in (e[:3] for e in response.topic_errors):
            if code == 0:
                log.info(
                    "changelog.created",
                    extra={
                        "topic": name,
                        "partitions": partitions,
                        "replication_factor": replication_factor,
                    },
                )
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(f"creating {name} failed: error {code} {message or ''}".strip())
        found = await _wait_for_leaders(admin, topic, partitions, wait)
    finally:
        await admin.close()
    if found < partitions:
        raise UnusableTopics(
            f"{topic} has {found} partitions, ocpp.events.v1 has {partitions}: add partitions "
            "to the changelog (kafka-topics --alter) before starting the worker"
        )


def min_insync_replicas(replication_factor: int) -> int:
    """One replica may be lost without refusing writes: 1 for 1 or 2 replicas, 2 from 3 up."""
    return max(1, min(2, replication_factor - 1))


async def _replicas_of(admin: AIOKafkaAdminClient, topic: str) -> int:
    described = await admin.describe_topics([topic])
    partitions = described[0]["partitions"] if described else []
    if not partitions:
        raise KafkaError(f"{topic} is not known to the cluster yet")
    return len(partitions[0]["replicas"])


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topic: str, expected: int, wait: float
) -> int:
    """How many partitions ``topic`` has, once the cluster lists it with a leader for each.

    A new topic appears in a broker's metadata with all its partitions at once,
    so a topic listed at all has its final count. KafkaError after ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        described = await admin.describe_topics([topic])
        partitions = described[0]["partitions"] if described else []
        led = [p for p in partitions if p["leader"] >= 0]
        if partitions and len(led) == len(partitions):
            return len(partitions)
        if time.monotonic() > deadline:
            raise KafkaError(
                f"{topic}: {len(led)} of {expected} partitions have a leader after {wait:g} s"
            )
        await asyncio.sleep(0.2)


def _checkpoint_of(headers: Iterable[tuple[str, bytes]]) -> int | None:
    for name, value in headers:
        if name == CHECKPOINT_HEADER:
            return int(value)
    return None


async def read_changelog(
    kafka: KafkaSettings,
    topic: str,
    partitions: Iterable[int],
    *,
    client_id: str,
    timeout: float,
) -> dict[int, Restored]:
    """Read the changelog ``partitions`` to their end; their states as of their last checkpoint.

    The end is the partitions' end offsets when the read starts (nobody writes
    to a partition while its next owner restores it: the last owner wrote its
    checkpoint before letting it go). Raises :class:`UnusableTopics` for a
    record it cannot read, ``KafkaTimeoutError`` when the end was not reached
    within ``timeout`` seconds (Kafka is away: the caller may try again).
    """
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    restored = {tp.partition: Restored() for tp in wanted}
    if not wanted:
        return restored
    # states written after the last checkpoint seen so far, per partition, with their checkpoint
    pending: dict[int, dict[str, tuple[bytes | None, int | None]]] = {
        tp.partition: {} for tp in wanted
    }
    committed: dict[int, dict[str, bytes | None]] = {tp.partition: {} for tp in wanted}
    reader = consumer(
        kafka,
        client_id,
        max_poll_records=5000,
    )
    await reader.start()
    try:
        reader.assign(wanted)
        async with asyncio.timeout(timeout):
            ends = await reader.end_offsets(wanted)
            await reader.seek_to_beginning(*wanted)
            remaining = {tp for tp in wanted if ends[tp] > 0}
            while remaining:
                batches = await reader.getmany(*remaining, timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        if record.key == CHECKPOINT_KEY:
                            if record.value is None:
                                raise UnusableTopics(f"{topic}[{tp.partition}]: a null checkpoint")
                            checkpoint = _CHECKPOINT.decode(record.value)
                            committed[tp.partition].update(
                                (key, value)
                                for key, (value, of) in pending[tp.partition].items()
                                if of is None or of == checkpoint.offset
                            )
                            pending[tp.partition] = {}
                            restored[tp.partition].offset = checkpoint.offset
                            restored[tp.partition].state = bytes(checkpoint.state)
                        elif record.key is not None:
                            pending[tp.partition][record.key.decode()] = (
                                record.value,
                                _checkpoint_of(record.headers),
                            )
                for tp in list(remaining):
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    except TimeoutError:
        raise KafkaTimeoutError(f"{topic} was not read to its end within {timeout:g} s") from None
    except msgspec.DecodeError as exc:
        raise UnusableTopics(f"{topic}: an unreadable checkpoint: {exc}") from exc
    finally:
        await reader.stop()
    for number, states in committed.items():
        restored[number].stations = {k: v for k, v in states.items() if v is not None}
    return restored
