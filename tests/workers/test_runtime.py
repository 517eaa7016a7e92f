"""The worker runtime against the session's broker: replies, records, poison, restored state.

Workers run in this process; events are written the way the gateway writes them.
Each test uses a consumer group (and so a changelog) of its own; a new group
starts at the earliest event, so it also reads what earlier tests wrote, and
every assertion looks at the test's own stations only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from msgspec.json import encode as encode_json
from prometheus_client import CollectorRegistry

from contracts.bus.clients import admin_client
from contracts.envelopes import (
    DisconnectedPayload,
    StationEvent,
    decode_command,
    decode_dead_letter,
    decode_session,
)
from contracts.headers import read_headers
from contracts.ocpp.validation import decode_response
from contracts.topics import COMMANDS, DEAD_LETTER, SESSIONS
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest
from tests.support.records import Collector
from tests.workers.inprocess import call, publish, running, sessions_settings, station_on
from workers.runtime.changelog import (
    CHECKPOINT_HEADER,
    CHECKPOINT_KEY,
    UnusableTopics,
    changelog_topic,
    read_changelog,
)
from workers.runtime.logic import Decision, EventsOnly, Position
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.partition import CheckpointValue
from workers.runtime.worker import Worker

pytestmark = pytest.mark.kafka

NOW = "2026-03-01T12:00:00Z"


def start(connector: int = 1, meter: int = 1000) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": "TAG-1", "meterStart": meter, "timestamp": NOW}


def meter(transaction: int, wh: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": transaction,
        "meterValue": [{"timestamp": "2026-03-01T12:10:00Z", "sampledValue": [{"value": str(wh)}]}],
    }


def stop(transaction: int, wh: int) -> dict[str, Any]:
    return {"transactionId": transaction, "meterStop": wh, "timestamp": "2026-03-01T12:30:00Z"}


async def reply_to(commands: Collector, event: StationEvent) -> Any:
    """The worker's reply to ``event``, as the command it published."""
    records = await commands.wait_for(
        lambda rs: any(event.message_id.encode() in r.value for r in rs),
        what=f"the reply to {event.action} {event.message_id}",
    )
    (command,) = [decode_command(r.value) for r in records if event.message_id.encode() in r.value]
    return command


def sessions_of(collector: Collector, station: str) -> list[Any]:
    return [decode_session(r.value) for r in collector.keyed(station)]


async def test_calls_are_answered_and_sessions_recorded(kafka: KafkaUnderTest) -> None:
    station = station_on(1)
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
        running(await sessions_settings(kafka), partitions=TEST_PARTITIONS) as worker,
    ):
        started = call(station, "StartTransaction", start())
        await publish(kafka, started)
        command = await reply_to(commands, started)
        assert (command.kind, command.station_id, command.action) == (
            "call_result",
            station,
            "StartTransaction",
        )
        assert (command.message_id, command.ocpp_version) == (started.message_id, "1.6")
        assert command.expires_at == started.reply_by
        assert command.source == worker.source
        assert read_headers(commands.keyed(station)[0].headers).ce_id == command.command_id
        answer = decode_response("1.6", "StartTransaction", command.payload)
        transaction = answer.transaction_id
        assert transaction % 64 == 1  # the partition's slot
        await publish(
            kafka,
            call(station, "MeterValues", meter(transaction, 4000), reply_expected=False),
            call(station, "StopTransaction", stop(transaction, 6000)),
        )
        await sessions.wait_for(
            lambda rs: any(
                decode_session(r.value).state == "completed"
                for r in rs
                if r.key == station.encode()
            ),
            what="the completed session",
        )
    assert [(s.event, s.energy_wh) for s in sessions_of(sessions, station)] == [
        ("started", 0.0),
        ("updated", 3000.0),
        ("completed", 5000.0),
    ]


async def test_poison_records_go_to_the_dead_letter_topic_and_the_partition_moves_on(
    kafka: KafkaUnderTest,
) -> None:
    station = station_on(2)
    broken = call(station, "StartTransaction", {"connectorId": 1, "timestamp": NOW})
    good = call(station, "Authorize", {"idTag": "TAG-1"})
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, DEAD_LETTER.name) as dead_letters,
        running(await sessions_settings(kafka), partitions=TEST_PARTITIONS),
    ):
        await publish(kafka, raw=[(station, b'{"station_id": "truncated', "StartTransaction")])
        await publish(kafka, broken, good)
        refused = await reply_to(commands, broken)
        answered = await reply_to(commands, good)
        letters = await dead_letters.wait_for(
            lambda rs: len([r for r in rs if r.key == station.encode()]) >= 2,
            what="two dead letters",
        )
    assert (refused.kind, refused.error_code) == ("call_error", "InternalError")
    assert answered.kind == "call_result"
    reasons = [decode_dead_letter(r.value) for r in letters if r.key == station.encode()]
    assert [r.reason.split(":")[0] for r in reasons] == ["undecodable", "rejected"]
    assert reasons[0].record.value == '{"station_id": "truncated'
    assert reasons[1].record.partition == 2
    assert all(r.worker == "sessions" and r.failures == 1 for r in reasons)


class _Failing(EventsOnly[Any, Any]):
    """A logic that fails on every event of one station and counts its attempts."""

    actions = frozenset({"Heartbeat"})
    station_type = dict
    partition_type = dict

    def __init__(self, station: str) -> None:
        self.station = station
        self.attempts = 0
        self.handled: list[str] = []

    def initial_partition(self) -> dict[str, int]:
        return {}

    def decide(self, event: StationEvent, station: Any, partition: Any, position: Position) -> Any:
        if event.station_id == self.station:
            self.attempts += 1
            raise ZeroDivisionError("a bug")
        self.handled.append(event.station_id)
        return Decision("ok", station, partition)


async def test_a_record_that_keeps_failing_is_dead_lettered_after_its_attempts(
    kafka: KafkaUnderTest,
) -> None:
    bad, fine = station_on(3), station_on(3)
    settings = (await sessions_settings(kafka, max_attempts=3)).worker
    logic = _Failing(bad)
    worker: Worker[Any, Any] = Worker(
        "failing", settings, logic, WorkerMetrics(CollectorRegistry())
    )
    async with Collector(kafka, DEAD_LETTER.name) as dead_letters:
        await worker.start()
        task = asyncio.create_task(worker.run())
        try:
            await publish(
                kafka,
                call(bad, "Heartbeat", {}, reply_expected=False),
                call(fine, "Heartbeat", {}, reply_expected=False),
            )
            records = await dead_letters.wait_for(
                lambda rs: any(r.key == bad.encode() for r in rs), what="the dead letter"
            )
            async with asyncio.timeout(10):
                while fine not in logic.handled:
                    await asyncio.sleep(0.05)
        finally:
            worker.request_stop()
            await task
            await worker.close()
    (letter,) = [decode_dead_letter(r.value) for r in records if r.key == bad.encode()]
    assert (letter.worker, letter.failures) == ("failing", 3)
    assert letter.reason == "failed: ZeroDivisionError: a bug"
    assert logic.attempts == 3


async def test_the_next_owner_of_a_partition_continues_from_the_checkpoint(
    kafka: KafkaUnderTest,
) -> None:
    station = station_on(0)
    settings = await sessions_settings(kafka)
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
    ):
        async with running(settings, partitions=TEST_PARTITIONS):
            started = call(station, "StartTransaction", start())
            await publish(kafka, started)
            transaction = decode_response(
                "1.6", "StartTransaction", (await reply_to(commands, started)).payload
            ).transaction_id
        # stopped: every partition checkpointed; a new member of the group takes over
        restored = await read_changelog(
            kafka.settings,
            changelog_topic(settings.worker.group),
            [0],
            client_id="test-read",
            timeout=10,
        )
        assert station in restored[0].stations
        async with running(settings, partitions=TEST_PARTITIONS) as second:
            assert station in second.owned[0].stations
            retried = call(station, "StartTransaction", start())  # the station retries the start
            await publish(kafka, retried, call(station, "StopTransaction", stop(transaction, 3000)))
            again = await reply_to(commands, retried)
            await sessions.wait_for(
                lambda rs: len([r for r in rs if r.key == station.encode()]) >= 2,
                what="the completed session",
            )
    assert decode_response("1.6", "StartTransaction", again.payload).transaction_id == transaction
    assert [(s.event, s.energy_wh) for s in sessions_of(sessions, station)] == [
        ("started", 0.0),
        ("completed", 2000.0),
    ]


async def test_a_worker_stopped_before_its_checkpoint_is_replayed_to_the_same_records(
    kafka: KafkaUnderTest,
) -> None:
    stations = [station_on(p) for p in range(TEST_PARTITIONS)]
    settings = await sessions_settings(kafka, checkpoint_interval=3600.0)
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
    ):
        async with running(settings, partitions=TEST_PARTITIONS) as first:
            starts = [call(s, "StartTransaction", start()) for s in stations]
            await publish(kafka, *starts)
            ids = [
                decode_response("1.6", "StartTransaction", (await reply_to(commands, e)).payload)
                for e in starts
            ]
            await publish(
                kafka,
                *(
                    call(s, "MeterValues", meter(i.transaction_id, 2500), reply_expected=False)
                    for s, i in zip(stations, ids, strict=True)
                ),
            )
            await sessions.wait_for(
                lambda rs: len([r for r in rs if r.key in {s.encode() for s in stations}]) >= 8,
                what="started and updated records",
            )
            first.failure = RuntimeError("killed")  # stops without checkpointing, like a crash
        async with running(settings, partitions=TEST_PARTITIONS) as second:
            assert all(p.checkpointed is None for p in second.owned.values())
            await publish(
                kafka,
                *(
                    call(s, "StopTransaction", stop(i.transaction_id, 4000))
                    for s, i in zip(stations, ids, strict=True)
                ),
            )
            await sessions.wait_for(
                lambda rs: (
                    len(
                        [
                            r
                            for r in rs
                            if r.key in {s.encode() for s in stations} and b'"completed"' in r.value
                        ]
                    )
                    >= 4
                ),
                what="four completed sessions",
            )
    by_id: dict[str, set[bytes]] = {}
    for record in sessions.records:
        if record.key in {s.encode() for s in stations}:
            by_id.setdefault(read_headers(record.headers).ce_id or "", set()).add(record.value)
    # every record written twice (before and after the crash) is the same record
    assert all(len(values) == 1 for values in by_id.values())
    finals = [
        decode_session(next(iter(v)))
        for v in by_id.values()
        if b'"event":"completed"' in next(iter(v))
    ]
    assert sorted((f.station_id, f.energy_wh) for f in finals) == sorted(
        (s, 3000.0) for s in stations
    )
    events = Counter(decode_session(next(iter(v))).event for v in by_id.values())
    assert events == {"started": 4, "updated": 4, "completed": 4}


async def test_a_rebalance_moves_state_with_the_partitions(kafka: KafkaUnderTest) -> None:
    stations = [station_on(p) for p in range(TEST_PARTITIONS)]
    settings = await sessions_settings(kafka)
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
        running(settings, partitions=TEST_PARTITIONS) as first,
    ):
        starts = [call(s, "StartTransaction", start()) for s in stations]
        await publish(kafka, *starts)
        ids = [
            decode_response("1.6", "StartTransaction", (await reply_to(commands, e)).payload)
            for e in starts
        ]
        async with running(settings, partitions=1) as second:
            async with asyncio.timeout(30):
                while len(first.owned) + len(second.owned) != TEST_PARTITIONS or not first.owned:
                    await asyncio.sleep(0.05)
            assert set(first.owned).isdisjoint(second.owned)
            stops = [
                call(s, "StopTransaction", stop(i.transaction_id, 1500))
                for s, i in zip(stations, ids, strict=True)
            ]
            await publish(kafka, *stops)
            for event in stops:
                await reply_to(commands, event)
    completed = [
        decode_session(r.value)
        for r in sessions.records
        if r.key in {s.encode() for s in stations} and b'"event":"completed"' in r.value
    ]
    assert sorted((c.station_id, c.energy_wh) for c in completed) == sorted(
        (s, 500.0) for s in stations
    )


async def test_a_changelog_with_too_few_partitions_is_refused(kafka: KafkaUnderTest) -> None:
    settings = await sessions_settings(kafka)
    admin = admin_client(kafka.settings, "test-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog_topic(settings.worker.group), 1, 1)])
    finally:
        await admin.close()
    with pytest.raises(UnusableTopics, match="partitions"):
        async with running(settings):
            pass


async def _new_changelog(kafka: KafkaUnderTest, partitions: int) -> str:
    """A new topic for a test to write changelog records to."""
    topic = f"test-changelog-{uuid.uuid4().hex[:8]}"
    admin = admin_client(kafka.settings, "test-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def test_states_written_after_the_last_checkpoint_are_not_restored(
    kafka: KafkaUnderTest,
) -> None:
    topic = await _new_changelog(kafka, 2)
    encoder = msgspec.json.Encoder()
    checkpoint = encoder.encode(CheckpointValue(offset=41, state=msgspec.Raw(b'{"next":7}')))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for key, value in (
            (b"CP-1", b'{"v":1}'),
            (b"CP-2", b'{"v":2}'),
            (b"CP-2", None),  # deleted before the checkpoint
            (CHECKPOINT_KEY, checkpoint),
            (b"CP-3", b'{"v":3}'),  # a checkpoint that never finished
            (b"CP-1", b'{"v":9}'),
        ):
            await producer.send_and_wait(topic, value, key=key, partition=1)
    finally:
        await producer.stop()
    restored = await read_changelog(
        kafka.settings, topic, [0, 1], client_id="test-read", timeout=10
    )
    assert (restored[0].offset, restored[0].stations, restored[0].state) == (None, {}, None)
    assert (restored[1].offset, restored[1].state) == (41, b'{"next":7}')
    assert restored[1].stations == {"CP-1": b'{"v":1}'}


async def test_states_of_a_checkpoint_that_never_finished_do_not_count_after_a_later_one(
    kafka: KafkaUnderTest,
) -> None:
    """A partition rewound (or an owner killed) after its state records, before their
    checkpoint record: the next checkpoint, at another offset, does not take them."""
    topic = await _new_changelog(kafka, 1)
    encoder = msgspec.json.Encoder()

    def checkpoint(offset: int) -> bytes:
        return encoder.encode(CheckpointValue(offset=offset, state=msgspec.Raw(b"{}")))

    def of(offset: int) -> list[tuple[str, bytes]]:
        return [(CHECKPOINT_HEADER, str(offset).encode())]

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for key, value, headers in (
            (b"CP-1", b'{"v":1}', of(10)),
            (CHECKPOINT_KEY, checkpoint(10), []),
            (b"CP-1", b'{"v":3}', of(30)),  # the checkpoint at 30 never finished
            (b"CP-2", b'{"v":3}', of(30)),
            (b"CP-2", b'{"v":2}', of(20)),  # handled again from 10: a checkpoint at 20
            (CHECKPOINT_KEY, checkpoint(20), []),
        ):
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()
    restored = await read_changelog(kafka.settings, topic, [0], client_id="test-read", timeout=10)
    assert restored[0].offset == 20
    assert restored[0].stations == {"CP-1": b'{"v":1}', "CP-2": b'{"v":2}'}


class _Seen(msgspec.Struct, frozen=True):
    disconnects: int = 0
    expiries: int = 0
    due: datetime | None = None


class _Lingering(EventsOnly[_Seen, dict[str, int]]):
    """Reads disconnections too; a station's state expires half a second after one."""

    kinds = frozenset({"call", "disconnected"})
    actions = frozenset({"Heartbeat"})
    station_type = _Seen
    partition_type = dict

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def initial_partition(self) -> dict[str, int]:
        return {}

    def decide(
        self, event: StationEvent, station: _Seen | None, partition: Any, position: Position
    ) -> Decision[_Seen, dict[str, int]]:
        self.seen.append((event.station_id, event.kind))
        state = station or _Seen()
        if event.kind == "disconnected":
            due = event.received_at + timedelta(seconds=0.5)
            state = _Seen(state.disconnects + 1, state.expiries, due)
        return Decision("ok", state, partition)

    def deadline(self, station: _Seen) -> datetime | None:
        return station.due

    def expire(
        self, station_id: str, station: _Seen, partition: Any, now: datetime
    ) -> Decision[_Seen, dict[str, int]]:
        self.seen.append((station_id, "expired"))
        return Decision("expired", _Seen(station.disconnects, station.expiries + 1), partition)


def _disconnected(station: str) -> StationEvent:
    return StationEvent(
        station_id=station,
        kind="disconnected",
        message_id=uuid.uuid4().hex,
        ocpp_version="1.6",
        gateway_id="gw-test",
        connection_id="conn-test",
        received_at=datetime.now(UTC),
        payload=msgspec.Raw(
            encode_json(DisconnectedPayload(close_code=1006, connected_seconds=1.0))
        ),
    )


async def test_lifecycle_events_reach_a_logic_that_reads_them_and_deadlines_expire(
    kafka: KafkaUnderTest,
) -> None:
    """A deadline fires once, after the events before it; its state is checkpointed alone."""
    station = station_on(1)
    settings = (await sessions_settings(kafka)).worker
    logic = _Lingering()
    worker: Worker[Any, Any] = Worker(
        "lingering", settings, logic, WorkerMetrics(CollectorRegistry())
    )
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        await publish(kafka, _disconnected(station), call(station, "Heartbeat", {}))
        async with asyncio.timeout(15):
            while (station, "expired") not in logic.seen:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second expiry would come now
    finally:
        worker.request_stop()
        await task
        await worker.close()
    mine = [kind for who, kind in logic.seen if who == station]
    assert mine == ["disconnected", "call", "expired"]
    restored = await read_changelog(
        kafka.settings, changelog_topic(settings.group), [1], client_id="test-read", timeout=10
    )
    state = msgspec.json.decode(restored[1].stations[station], type=_Seen)
    assert state == _Seen(disconnects=1, expiries=1, due=None)
