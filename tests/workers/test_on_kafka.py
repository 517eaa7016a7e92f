"""The worker on a cluster of its own: a fresh cluster, a partition leader killed under load.

Real processes (``csms worker sessions``) on a local Apache Kafka of the test's
own (one node or three). Events are written as the gateway writes them; each
call's reply is read from ocpp.commands.v1 by its message id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.bus.broker import KafkaNode, LocalKafka
from contracts.bus.clients import admin_client
from tests.support.kafka import KafkaUnderTest, local_kafka
from tests.workers.flow import (
    Charging,
    ask_call,
    assert_exact,
    charge,
    completed,
    flowing,
)
from tests.workers.inprocess import station_on
from tests.workers.processes import WorkerProcess
from workers.runtime.changelog import changelog_topic

pytestmark = pytest.mark.kafka


async def _describe(kafka: KafkaUnderTest, topic: str) -> tuple[list[dict[str, Any]], str]:
    """The partitions of ``topic`` and its min.insync.replicas."""
    admin = admin_client(kafka.settings, "test-admin")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
        )
    finally:
        await admin.close()
    (resource,) = response.resources
    (entry,) = [e for e in resource[4] if e[0] == "min.insync.replicas"]
    return described["partitions"], entry[1]


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[LocalKafka, KafkaUnderTest]]:
    """A local Kafka of ``request.param`` nodes (a sync fixture: it starts its own loop)."""
    with local_kafka(request.param) as started:
        yield started


def _worker(kafka: KafkaUnderTest) -> WorkerProcess:
    """A sessions worker of a new group (the cluster is the test's: no earlier events)."""
    group = f"test-sessions-{uuid.uuid4().hex[:8]}"
    return WorkerProcess(kafka, group=group, CSMS_ALLOW_UNKNOWN_ID_TOKENS="true")


@pytest.mark.parametrize("cluster", [1, 3], indirect=True, ids=["1-node", "3-nodes"])
async def test_a_worker_starts_on_a_fresh_cluster(
    cluster: tuple[LocalKafka, KafkaUnderTest],
) -> None:
    """The changelog is created on the first start and waited for, not taken for broken."""
    broker, kafka = cluster
    nodes = len(broker.brokers)
    worker = _worker(kafka)
    with worker:
        worker.wait_assigned(timeout=60)
        async with flowing(kafka) as (calls, _, sessions):
            authorized = await calls.ask(
                ask_call(station_on(1), "Authorize", {"idTag": "ANYONE"}), timeout=60
            )
            assert authorized.id_tag_info.status == "Accepted"
            station = station_on(2)
            number = await charge(calls, station, 0, 500)
            await sessions.wait_for(
                lambda rs: completed(sessions, [station]), what="the completed session"
            )
            assert completed(sessions, [station]) == {(station, number, 500.0)}
        assert worker.status("/readyz")[0] == 200
        assert worker.returncode() is None
    partitions, min_insync = await _describe(kafka, changelog_topic(worker.group))
    assert len(partitions) == 4
    assert {len(p["replicas"]) for p in partitions} == {nodes}
    assert min_insync == ("2" if nodes == 3 else "1")


def _node(broker: LocalKafka, node_id: int) -> KafkaNode:
    (node,) = [n for n in broker.brokers if n.node_id == node_id]
    return node


@pytest.mark.parametrize("cluster", [3], indirect=True, ids=["3-nodes"])
@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_a_lost_leader_is_ridden_out(
    cluster: tuple[LocalKafka, KafkaUnderTest], fault: str
) -> None:
    """The leader of the partitions the worker writes to is SIGKILLed (or SIGSTOPped) for 25 s
    while calls go on, then comes back."""
    broker, kafka = cluster
    worker = _worker(kafka)
    with worker:
        worker.wait_assigned(timeout=60)
        stations = [station_on(1, f"K{i}") for i in range(4)]  # one changelog partition
        partitions, _ = await _describe(kafka, changelog_topic(worker.group))
        (leader,) = [p["leader"] for p in partitions if p["partition"] == 1]
        async with flowing(kafka) as (calls, _, sessions):
            charging = Charging(calls, stations).start()
            await asyncio.sleep(5)
            node = _node(broker, leader)
            if fault == "killed":
                node.kill()
                await asyncio.sleep(25)
                node.restart()
            else:
                node.freeze()
                await asyncio.sleep(25)
                node.thaw()
            await asyncio.sleep(15)
            expected = await charging.finish()
            await assert_exact(sessions, stations, expected)
            replies = calls.replies()
        assert worker.returncode() is None, worker.output
    assert all(len(runs) >= 2 for runs in charging.done.values())  # before and after
    assert all(len(found) == 1 for found in replies.values()), "a call got two answers"


@pytest.mark.parametrize("cluster", [1], indirect=True, ids=["1-node"])
async def test_writes_given_up_are_done_again_from_the_last_checkpoint(
    cluster: tuple[LocalKafka, KafkaUnderTest],
) -> None:
    """The only node is away for 65 s, past the producer's delivery timeout (60 s).

    The writes of that time are given up: the worker rewinds the partition to its
    last checkpoint and handles its events again once Kafka is back, instead of
    exiting.
    """
    broker, kafka = cluster
    worker = _worker(kafka)
    with worker:
        worker.wait_assigned(timeout=60)
        stations = [station_on(p, "L") for p in range(2)]
        async with flowing(kafka) as (calls, _, sessions):
            charging = Charging(calls, stations).start()
            await asyncio.sleep(3)
            (node,) = broker.brokers
            node.kill()
            await asyncio.sleep(65)
            node.restart()
            await asyncio.sleep(10)
            expected = await charging.finish()
            await assert_exact(sessions, stations, expected)
            replies = calls.replies()
        assert worker.returncode() is None, worker.output
        assert worker.metric("csms_worker_rewinds_total") >= 1, worker.output
    assert all(len(runs) >= 2 for runs in charging.done.values())  # before and after
    assert all(len(found) == 1 for found in replies.values()), "a call got two answers"
