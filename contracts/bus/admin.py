"""``csms topics``: create the whole topic catalogue idempotently, and list topics.

Every topic is created with ``min.insync.replicas`` set for its replication factor
(:func:`min_insync_replicas`), so that a write acknowledged with ``acks=all`` is on
that many brokers whatever the cluster's default; ``csms topics create`` warns on
stderr when the replication factor is below 3.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from contracts.bus.clients import admin_client
from contracts.cli import Command
from contracts.settings import KafkaSettings, add_arguments, load, setting
from contracts.topics import CATALOGUE, Topic

__all__ = [
    "PRODUCTION_REPLICATION_FACTOR",
    "TopicSettings",
    "command",
    "create_topics",
    "list_topics",
    "min_insync_replicas",
    "topic_configs",
]

TOPIC_ALREADY_EXISTS = 36
PRODUCTION_REPLICATION_FACTOR = 3


@dataclasses.dataclass(frozen=True, kw_only=True)
class TopicSettings:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    partitions: int = setting(
        12,
        "Partitions per topic when csms creates it (a ceiling on consumer parallelism)",
        env="CSMS_TOPIC_PARTITIONS",
        flag="--partitions",
    )
    replication_factor: int = setting(
        1,
        "Replication factor when csms creates a topic (3 on a production cluster)",
        env="CSMS_TOPIC_REPLICATION_FACTOR",
        flag="--replication-factor",
    )


def min_insync_replicas(replication_factor: int) -> int:
    """The replicas an ``acks=all`` write must reach: one fewer than all, at least one.

    The most copies that still let writes go on while one broker is down (a rolling
    restart, a lost machine): 2 of 3 on a production cluster, 1 on a development one.
    """
    return max(1, replication_factor - 1)


def topic_configs(topic: Topic, replication_factor: int) -> dict[str, str]:
    """The configs ``csms topics create`` gives ``topic``; the broker's defaults for the rest."""
    configs = {"min.insync.replicas": str(min_insync_replicas(replication_factor))}
    if topic.compacted:
        configs["cleanup.policy"] = "compact"
    return configs


def _new_topic(topic: Topic, settings: TopicSettings) -> NewTopic:
    return NewTopic(
        topic.name,
        num_partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        topic_configs=topic_configs(topic, settings.replication_factor),
    )


async def create_topics(settings: TopicSettings) -> dict[str, str]:
    """Create every catalogue topic that is missing; return ``{name: "created" | "exists"}``."""
    admin = admin_client(settings.kafka, "csms-topics")
    await admin.start()
    try:
        response = await admin.create_topics([_new_topic(t, settings) for t in CATALOGUE])
    finally:
        await admin.close()
    outcome: dict[str, str] = {}
    for name, code, message in (e[:3] for e in response.topic_errors):
        if code == 0:
            outcome[name] = "created"
        elif code == TOPIC_ALREADY_EXISTS:
            outcome[name] = "exists"
        else:
            raise KafkaError(f"creating {name} failed: error {code} {message or ''}".strip())
    return outcome


async def list_topics(settings: TopicSettings) -> list[str]:
    admin = admin_client(settings.kafka, "csms-topics")
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create every csms topic that is missing")
    add_arguments(create, TopicSettings)
    listing = actions.add_parser("list", help="list the topics on the cluster")
    add_arguments(listing, KafkaSettings)


def _warn_on_few_replicas(replication_factor: int) -> None:
    if replication_factor < PRODUCTION_REPLICATION_FACTOR:
        print(
            f"csms topics: replication factor {replication_factor} is fine for development, "
            f"not for production: a lost broker loses records (use "
            f"--replication-factor {PRODUCTION_REPLICATION_FACTOR})",
            file=sys.stderr,
        )


def _run(args: argparse.Namespace) -> int:
    settings = load(TopicSettings, args)
    try:
        if args.action == "create":
            _warn_on_few_replicas(settings.replication_factor)
            for name, state in asyncio.run(create_topics(settings)).items():
                print(f"{name}\t{state}")
        else:
            known = {t.name for t in CATALOGUE}
            for name in asyncio.run(list_topics(settings)):
                print(name if name in known else f"{name}\t(not csms)")
    except (KafkaError, OSError) as exc:
        print(
            f"csms topics: cannot reach Kafka at {settings.kafka.bootstrap}: {exc}", file=sys.stderr
        )
        return 1
    return 0


command = Command(help="create or list the csms Kafka topics", configure=_configure, run=_run)
