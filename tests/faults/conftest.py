"""Broker-failure fixtures: a three-node Apache Kafka of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts.bus.broker import KafkaNode, LocalKafka
from tests.support.kafka import KafkaUnderTest, local_kafka


class Cluster:
    """A test's three-node Kafka (replication factor 3, min.insync.replicas 2)."""

    def __init__(self, broker: LocalKafka, kafka: KafkaUnderTest) -> None:
        self.broker = broker
        self.kafka = kafka

    def node(self, node_id: int) -> KafkaNode:
        (found,) = [n for n in self.broker.nodes if n.node_id == node_id]
        return found


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """Three combined broker-controller nodes with every csms topic; removed after the test."""
    with local_kafka(nodes=3) as (broker, kafka):
        yield Cluster(broker, kafka)
