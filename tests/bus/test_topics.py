"""``csms topics``: the catalogue is created idempotently, compacted topics compacted, and
``min.insync.replicas`` set on each topic for its replication factor."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, ConfigSource

from contracts.bus.admin import min_insync_replicas
from contracts.bus.broker import LocalKafka
from contracts.topics import CATALOGUE
from tests.support.processes import run_csms

FEW_REPLICAS = "is fine for development, not for production"


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _configs(bootstrap: str) -> dict[str, dict[str, ConfigEntry]]:
    """Every catalogue topic's configs as the cluster describes them."""
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t.name) for t in CATALOGUE]
    admin = _admin(bootstrap)  # kept until the futures are done: its end cancels them
    futures = admin.describe_configs(resources, request_timeout=30)
    return {resource.name: future.result(timeout=60) for resource, future in futures.items()}


def _replicas(bootstrap: str) -> dict[str, set[int]]:
    """Each catalogue topic's number of replicas per partition (one number when all agree)."""
    topics = _admin(bootstrap).list_topics(timeout=30).topics
    return {
        t.name: {len(p.replicas) for p in topics[t.name].partitions.values()} for t in CATALOGUE
    }


def test_min_insync_replicas_lets_writes_go_on_with_one_broker_down() -> None:
    assert [min_insync_replicas(rf) for rf in (1, 2, 3, 4, 5)] == [1, 1, 2, 3, 4]


def test_topics_create_is_idempotent_and_compacts_registry_topics() -> None:
    with LocalKafka(0) as broker:
        first = run_csms("topics", "create", "--bootstrap", broker.bootstrap, "--partitions", "3")
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [f"{t.name}\tcreated" for t in CATALOGUE]
        # the default replication factor is the development one, and says so
        assert "csms topics: replication factor 1 " + FEW_REPLICAS in first.stderr

        again = run_csms("topics", "create", "--bootstrap", broker.bootstrap)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [f"{t.name}\texists" for t in CATALOGUE]

        listed = run_csms("topics", "list", env={"CSMS_KAFKA_BOOTSTRAP": broker.bootstrap})
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert sorted(line for line in lines if "\t" not in line) == sorted(
            t.name for t in CATALOGUE
        )
        # anything else on the cluster (Kafka's own __consumer_offsets...) is marked as such
        others = [line.split("\t") for line in lines if "\t" in line]
        assert {name for name, _ in others} >= {"__consumer_offsets"}
        assert {mark for _, mark in others} == {"(not csms)"}
        assert FEW_REPLICAS not in listed.stderr

        configs = _configs(broker.bootstrap)
        replicas = _replicas(broker.bootstrap)
    policies = {name: config["cleanup.policy"].value for name, config in configs.items()}
    assert {name for name, policy in policies.items() if policy == "compact"} == {
        t.name for t in CATALOGUE if t.compacted
    }
    assert set(policies.values()) == {"compact", "delete"}
    for name, config in configs.items():
        isr = config["min.insync.replicas"]
        assert (isr.value, isr.source) == ("1", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), name
    assert replicas == {t.name: {1} for t in CATALOGUE}


def test_topics_on_three_nodes_keep_writes_on_two_brokers_whatever_the_cluster_default() -> None:
    # Kafka's own default is min.insync.replicas=1: an acks=all write on one broker only
    with LocalKafka(0, nodes=3, overrides={"min.insync.replicas": "1"}) as cluster:
        created = run_csms(
            "topics",
            "create",
            "--bootstrap",
            cluster.bootstrap,
            "--partitions",
            "2",
            "--replication-factor",
            "3",
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        assert created.stdout.splitlines() == [f"{t.name}\tcreated" for t in CATALOGUE]
        assert FEW_REPLICAS not in created.stderr
        configs = _configs(cluster.bootstrap)
        replicas = _replicas(cluster.bootstrap)
    assert {name: config["min.insync.replicas"].value for name, config in configs.items()} == {
        t.name: "2" for t in CATALOGUE
    }
    assert replicas == {t.name: {3} for t in CATALOGUE}


def test_topics_without_a_broker_is_a_clear_error() -> None:
    with LocalKafka(0) as broker:
        bootstrap = broker.bootstrap  # a port nothing listens on once the broker is gone
    result = run_csms("topics", "list", "--bootstrap", bootstrap, timeout=60)
    assert result.returncode == 1
    assert f"cannot reach Kafka at {bootstrap}" in result.stderr
