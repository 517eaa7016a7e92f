"""``csms topics``: the catalogue is created idempotently, compacted topics compacted."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.bus.broker import LocalKafka
from contracts.topics import CATALOGUE
from tests.support.processes import run_csms


async def _cleanup_policies(bootstrap: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in CATALOGUE]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    policies = {}
    for response in responses:
        for _code, _msg, _type, name, entries in response.resources:
            config = {entry[0]: entry[1] for entry in entries}
            policies[name] = config.get("cleanup.policy", "delete")
    return policies


def test_topics_create_is_idempotent_and_compacts_registry_topics() -> None:
    with LocalKafka(0) as broker:
        first = run_csms("topics", "create", "--bootstrap", broker.bootstrap, "--partitions", "3")
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [f"{t.name}\tcreated" for t in CATALOGUE]

        again = run_csms("topics", "create", "--bootstrap", broker.bootstrap)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [f"{t.name}\texists" for t in CATALOGUE]

        listed = run_csms("topics", "list", env={"CSMS_KAFKA_BOOTSTRAP": broker.bootstrap})
        assert listed.returncode == 0, listed.stderr
        assert sorted(listed.stdout.split()) == sorted(t.name for t in CATALOGUE)

        policies = asyncio.run(_cleanup_policies(broker.bootstrap))
    assert {name for name, policy in policies.items() if policy == "compact"} == {
        t.name for t in CATALOGUE if t.compacted
    }


def test_topics_without_a_broker_is_a_clear_error() -> None:
    with LocalKafka(0) as broker:
        bootstrap = broker.bootstrap  # a port nothing listens on once the broker is gone
    result = run_csms("topics", "list", "--bootstrap", bootstrap, timeout=60)
    assert result.returncode == 1
    assert f"cannot reach Kafka at {bootstrap}" in result.stderr
