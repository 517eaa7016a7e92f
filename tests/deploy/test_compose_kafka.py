"""deploy/compose.yaml runs the Apache Kafka the tests run, set up for its one broker."""

from __future__ import annotations

from contracts.bus.kafka_dist import KAFKA_VERSION
from tests.deploy.test_image import compose


def test_compose_runs_the_apache_kafka_version_of_the_tests() -> None:
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_compose_gives_every_internal_topic_one_replica_on_its_one_broker() -> None:
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 1
    internal = {
        name: value
        for name, value in kafka.items()
        if name.endswith(("_REPLICATION_FACTOR", "_MIN_ISR"))
    }
    assert set(internal) == {
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    }
    assert set(internal.values()) == {1}
    topics = services["topics"]["command"]
    assert topics[topics.index("--replication-factor") + 1] == "1"
