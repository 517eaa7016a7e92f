"""The test suite's Apache Kafka: an external cluster, a container, or a local node.

Chosen once per test session, in this order:

1. ``CSMS_TEST_KAFKA=HOST:PORT`` names an existing cluster;
2. a Kafka container through testcontainers, when a Docker engine answers;
3. a single KRaft node of the pinned Apache Kafka on free loopback ports
   (:class:`contracts.bus.broker.LocalKafka`), started and removed by the fixture.

Idempotent producers are on in every case, as in production. Tests that need a
broker of their own (to kill, freeze or restart it) start one with
:func:`local_kafka`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import warnings
from collections.abc import Iterator
from typing import Any, Literal

from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import LocalKafka
from contracts.settings import KafkaSettings, environment

TEST_PARTITIONS = 4


@dataclasses.dataclass(frozen=True)
class KafkaUnderTest:
    kind: str  # "external", "container" or "local"
    settings: KafkaSettings

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap

    def env(self) -> dict[str, str]:
        """Environment variables that point a csms process at this broker."""
        return environment(self.settings, complete=True)


def _docker_engine_answers() -> bool:
    import docker
    from docker.errors import DockerException

    answers = False
    with warnings.catch_warnings():
        # without an engine the Docker client leaves its socket to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env()
            answers = bool(client.ping())
            client.close()
        except DockerException:
            pass
        gc.collect()
    return answers


@contextlib.contextmanager
def _container() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@contextlib.contextmanager
def start_kafka() -> Iterator[KafkaUnderTest]:
    external = os.environ.get("CSMS_TEST_KAFKA")
    with contextlib.ExitStack() as stack:
        if external:
            kafka = KafkaUnderTest("external", KafkaSettings(bootstrap=external))
        else:
            if _docker_engine_answers():
                bootstrap = stack.enter_context(_container())
                kafka = KafkaUnderTest("container", KafkaSettings(bootstrap=bootstrap))
            else:
                broker = stack.enter_context(LocalKafka(0))
                kafka = KafkaUnderTest("local", broker.kafka_settings())
        asyncio.run(create_topics(TopicSettings(kafka=kafka.settings, partitions=TEST_PARTITIONS)))
        yield kafka


@contextlib.contextmanager
def local_kafka(
    nodes: Literal[1, 3] = 1, *, partitions: int = TEST_PARTITIONS, **options: Any
) -> Iterator[tuple[LocalKafka, KafkaUnderTest]]:
    """A local Apache Kafka of this test's own, with every csms topic; stopped and removed after."""
    with LocalKafka(0, nodes=nodes, **options) as broker:
        kafka = KafkaUnderTest("local", broker.kafka_settings())
        settings = TopicSettings(
            kafka=kafka.settings, partitions=partitions, replication_factor=nodes
        )
        asyncio.run(create_topics(settings))
        yield broker, kafka
