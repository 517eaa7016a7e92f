"""The worker on a cluster of its own: a fresh cluster, a partition leader killed under load.

Real processes (``csms worker sessions``) on a local Apache Kafka of the test's
own (one node or three). Events are written as the gateway writes them; each
call's reply is read from ocpp.commands.v1 by its message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.bus.broker import KafkaNode, LocalKafka
from contracts.bus.clients import admin_client
from contracts.envelopes import StationEvent, decode_command, decode_session, encode_event
from contracts.envelopes import record_key as key_of
from contracts.headers import event_headers
from contracts.ocpp.validation import decode_response
from contracts.topics import COMMANDS, EVENTS, SESSIONS
from tests.support.kafka import KafkaUnderTest, local_kafka
from tests.support.records import Collector
from tests.workers.calls import at
from tests.workers.inprocess import call, station_on
from tests.workers.processes import WorkerProcess
from workers.runtime.changelog import changelog_topic

pytestmark = pytest.mark.kafka

REPLY_WITHIN = 600.0  # the gateway's fallback deadline, far: every reply is expected here


class Calls:
    """Writes calls to ocpp.events.v1 and waits for each one's reply on ocpp.commands.v1."""

    def __init__(self, kafka: KafkaUnderTest, commands: Collector) -> None:
        self.kafka = kafka
        self.commands = commands
        self.asked: list[StationEvent] = []
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=120_000,  # through a leader change: the events must get there
        )

    async def __aenter__(self) -> Calls:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, event: StationEvent) -> None:
        await self.producer.send_and_wait(
            EVENTS.name,
            encode_event(event),
            key=key_of(event.station_id),
            headers=event_headers(event),
        )

    async def ask(self, event: StationEvent, timeout: float = 120.0) -> Any:
        """Send a call and return its decoded reply."""
        self.asked.append(event)
        await self.send(event)
        wanted = event.message_id.encode()
        records = await self.commands.wait_for(
            lambda rs: any(wanted in r.value for r in rs),
            timeout=timeout,
            what=f"the reply to {event.action} {event.message_id}",
        )
        command = next(decode_command(r.value) for r in records if wanted in r.value)
        assert event.action is not None
        return decode_response("1.6", event.action, command.payload)

    def replies(self) -> dict[str, set[tuple[str, bytes]]]:
        """Per call asked: the distinct (command id, payload) pairs written for it."""
        found: dict[str, set[tuple[str, bytes]]] = {e.message_id: set() for e in self.asked}
        for record in self.commands.records:
            command = decode_command(record.value)
            if command.message_id in found:
                found[command.message_id].add((command.command_id, bytes(command.payload)))
        return found


def _call(station: str, action: str, payload: dict[str, Any], **fields: Any) -> StationEvent:
    return call(station, action, payload, reply_in=REPLY_WITHIN, **fields)


async def charge(calls: Calls, station: str, number: int, energy: int) -> str:
    """The station's ``number``-th 1.6 session, of ``energy`` Wh: start, a meter value, stop.

    Each session starts at another meter reading and minute: a start the same as
    the last one would be taken for its retry. Returns the transaction id.
    """
    meter = 100_000 * number
    started = await calls.ask(
        _call(
            station,
            "StartTransaction",
            {"connectorId": 1, "idTag": "ANYONE", "meterStart": meter, "timestamp": at(number)},
        )
    )
    transaction = started.transaction_id
    reading = {"timestamp": at(number + 0.5), "sampledValue": [{"value": str(meter + energy // 2)}]}
    await calls.send(
        _call(
            station,
            "MeterValues",
            {"connectorId": 1, "transactionId": transaction, "meterValue": [reading]},
            reply_expected=False,
        )
    )
    await calls.ask(
        _call(
            station,
            "StopTransaction",
            {
                "transactionId": transaction,
                "meterStop": meter + energy,
                "timestamp": at(number + 1),
            },
        )
    )
    return str(transaction)


def completed(sessions: Collector, stations: list[str]) -> set[tuple[str, str, float]]:
    """(station, transaction id, energy) of every completed session of ``stations``."""
    keys = {s.encode() for s in stations}
    return {
        (r.station_id, r.transaction_id or "", r.energy_wh)
        for r in (decode_session(x.value) for x in sessions.records if x.key in keys)
        if r.event == "completed"
    }


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


@contextlib.asynccontextmanager
async def flowing(kafka: KafkaUnderTest) -> AsyncIterator[tuple[Calls, Collector, Collector]]:
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
        Calls(kafka, commands) as calls,
    ):
        yield calls, commands, sessions


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
                _call(station_on(1), "Authorize", {"idTag": "ANYONE"}), timeout=60
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
async def test_a_killed_leader_is_ridden_out(cluster: tuple[LocalKafka, KafkaUnderTest]) -> None:
    """The leader of the partitions the worker writes to dies for 25 s while calls go on."""
    broker, kafka = cluster
    worker = _worker(kafka)
    with worker:
        worker.wait_assigned(timeout=60)
        stations = [station_on(1, f"K{i}") for i in range(4)]  # one changelog partition
        partitions, _ = await _describe(kafka, changelog_topic(worker.group))
        (leader,) = [p["leader"] for p in partitions if p["partition"] == 1]
        async with flowing(kafka) as (calls, _, sessions):
            stop = asyncio.Event()
            done: dict[str, list[tuple[str, float]]] = defaultdict(list)

            async def drive(station: str) -> None:
                while not stop.is_set():
                    energy = 100 * (len(done[station]) + 1)
                    number = await charge(calls, station, len(done[station]), energy)
                    done[station].append((number, float(energy)))

            drivers = asyncio.gather(*(drive(s) for s in stations))
            await asyncio.sleep(5)
            _node(broker, leader).kill()
            await asyncio.sleep(25)
            _node(broker, leader).restart()
            await asyncio.sleep(15)
            stop.set()
            async with asyncio.timeout(180):
                await drivers
            expected = {(s, n, e) for s, runs in done.items() for n, e in runs}
            await sessions.wait_for(
                lambda rs: completed(sessions, stations) >= expected,
                timeout=60,
                what="every completed session",
            )
            assert completed(sessions, stations) == expected
            replies = calls.replies()
        assert worker.returncode() is None, worker.output
    assert all(len(runs) >= 2 for runs in done.values()), done  # sessions before and after
    assert all(len(found) == 1 for found in replies.values()), "a call got two answers"
