"""The station registry: csms.stations.v1 followed into memory, against the session's broker.

The topic is shared by the whole test session, so every test uses station ids
of its own and asserts only about them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError

from contracts.bus.clients import producer
from contracts.envelopes import StationRecord, encode_station, record_key
from contracts.headers import station_headers, tombstone_headers
from contracts.settings import KafkaSettings
from contracts.topics import STATIONS
from gateway.credentials import hash_password
from gateway.registry import StationRegistry, apply_station_records
from tests.support.kafka import KafkaUnderTest

SOURCE = "/csms/tests/registry"


def new_id() -> str:
    return f"CP-{uuid.uuid4().hex[:10]}"


def record(station_id: str, **changes: object) -> StationRecord:
    fields: dict[str, object] = {
        "station_id": station_id,
        "security_profile": 2,
        "password_hash": hash_password("Zq8-fT2mWx4Lp9Rs1Kd"),
        "site_id": "depot-1",
        "enabled": True,
        "updated_at": datetime.now(UTC),
    }
    fields.update(changes)
    return StationRecord(**fields)  # type: ignore[arg-type]


async def produce(
    kafka: KafkaUnderTest, *records: tuple[str, StationRecord | bytes | None]
) -> None:
    """Write (key, record) pairs: a StationRecord, raw bytes, or None for a tombstone."""
    client = producer(kafka.settings, "test-registry")
    await client.start()
    try:
        for key, value in records:
            if isinstance(value, StationRecord):
                raw, headers = encode_station(value), station_headers(value, source=SOURCE)
            elif value is None:
                raw = None
                headers = tombstone_headers(STATIONS, key, source=SOURCE, at=datetime.now(UTC))
            else:
                raw, headers = value, []
            await client.send_and_wait(STATIONS.name, raw, key=record_key(key), headers=headers)
    finally:
        await client.stop()


async def eventually(predicate: Callable[[], bool], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest.fixture
async def registry(kafka: KafkaUnderTest):  # type: ignore[no-untyped-def]
    registries: list[StationRegistry] = []

    async def start(**kwargs: object) -> StationRegistry:
        stations = StationRegistry(kafka.settings, client_id="test-registry", **kwargs)  # type: ignore[arg-type]
        registries.append(stations)
        await stations.start()
        assert await stations.wait_caught_up(30)
        return stations

    yield start
    for stations in registries:
        await stations.stop()


async def test_registry_reads_what_is_on_the_topic_and_then_is_caught_up(
    kafka: KafkaUnderTest, registry
) -> None:  # type: ignore[no-untyped-def]
    first, second = new_id(), new_id()
    await produce(kafka, (first, record(first)), (second, record(second, security_profile=3)))
    stations = StationRegistry(kafka.settings, client_id="test-registry")
    assert not stations.caught_up
    assert stations.get(first) is None
    stations = await registry()
    assert stations.caught_up
    found = stations.get(first)
    assert found is not None
    assert found.security_profile == 2
    assert found.site_id == "depot-1"
    assert stations.get(second) is not None
    assert stations.get(new_id()) is None


async def test_registry_follows_an_update_a_disable_and_a_tombstone(
    kafka: KafkaUnderTest, registry
) -> None:  # type: ignore[no-untyped-def]
    station_id = new_id()
    await produce(kafka, (station_id, record(station_id)))
    stations = await registry()
    assert stations.get(station_id) is not None

    await produce(kafka, (station_id, record(station_id, site_id="depot-2")))
    await eventually(lambda: getattr(stations.get(station_id), "site_id", None) == "depot-2")

    await produce(kafka, (station_id, record(station_id, site_id="depot-2", enabled=False)))
    await eventually(lambda: getattr(stations.get(station_id), "enabled", True) is False)

    await produce(kafka, (station_id, None))
    await eventually(lambda: stations.get(station_id) is None)
    assert station_id not in stations


async def test_registry_rebuilds_the_same_state_after_a_restart(
    kafka: KafkaUnderTest, registry
) -> None:  # type: ignore[no-untyped-def]
    kept, changed, removed = new_id(), new_id(), new_id()
    await produce(
        kafka,
        (kept, record(kept)),
        (changed, record(changed)),
        (removed, record(removed)),
        (changed, record(changed, security_profile=1, enabled=False)),
        (removed, None),
    )
    first = await registry()
    await first.stop()
    second = await registry()
    mine = {sid: second.get(sid) for sid in (kept, changed, removed)}
    assert mine[kept] is not None
    assert mine[changed] is not None
    assert (mine[changed].security_profile, mine[changed].enabled) == (1, False)
    assert mine[removed] is None
    assert {sid: first.get(sid) for sid in mine} == mine


async def test_an_undecodable_record_is_skipped_logged_once_and_fails_closed(
    kafka: KafkaUnderTest, registry, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    station_id, later = new_id(), new_id()
    await produce(kafka, (station_id, record(station_id)))
    stations = await registry()
    assert stations.get(station_id) is not None
    caplog.set_level(logging.WARNING, logger="gateway.registry")
    await produce(
        kafka,
        (station_id, b'{"station_id": "not a complete record"'),
        (later, record(later)),
    )
    # the follower is not stopped by it: the next record arrives
    await eventually(lambda: stations.get(later) is not None)
    # the station whose latest record is unreadable is refused, not kept at its older record
    assert stations.get(station_id) is None
    skipped = [r for r in caplog.records if getattr(r, "station_id", None) == station_id]
    assert len(skipped) == 1
    assert skipped[0].getMessage() == "stations.record_skipped"


async def test_a_record_whose_value_names_another_station_is_skipped(
    kafka: KafkaUnderTest, registry
) -> None:  # type: ignore[no-untyped-def]
    key, other, later = new_id(), new_id(), new_id()
    await produce(kafka, (key, record(other)), (later, record(later)))
    stations = await registry()
    assert stations.get(later) is not None
    assert stations.get(key) is None
    assert stations.get(other) is None


async def test_changes_are_reported_to_on_change(kafka: KafkaUnderTest, registry) -> None:  # type: ignore[no-untyped-def]
    station_id = new_id()
    seen: list[tuple[str, bool | None]] = []

    def on_change(changed: str, station: StationRecord | None) -> None:
        if changed == station_id:
            seen.append((changed, None if station is None else station.enabled))

    await registry(on_change=on_change)
    await produce(
        kafka,
        (station_id, record(station_id)),
        (station_id, record(station_id, enabled=False)),
        (station_id, None),
    )
    await eventually(lambda: len(seen) == 3)
    assert seen == [(station_id, True), (station_id, False), (station_id, None)]


async def test_start_against_an_unreachable_kafka_raises() -> None:
    stations = StationRegistry(KafkaSettings(bootstrap="127.0.0.1:1"))
    with pytest.raises(KafkaConnectionError):
        await stations.start()
    assert not stations.caught_up
    assert not await stations.wait_caught_up(0.1)
    await stations.stop()


# --------------------------------------------------------------------------- without Kafka


@dataclasses.dataclass
class FakeRecord:
    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = 0


def test_apply_station_records_handles_every_kind_of_record() -> None:
    stations: dict[str, StationRecord] = {}
    changes: list[tuple[str, StationRecord | None]] = []
    good = record("CP-1")
    skipped = apply_station_records(
        stations,
        [
            FakeRecord(b"CP-1", encode_station(good)),
            FakeRecord(b"CP-2", encode_station(record("CP-2"))),
            FakeRecord(b"CP-2", None),  # tombstone
            FakeRecord(b"CP-3", None),  # tombstone of a station never seen: no change
            FakeRecord(None, encode_station(record("CP-4"))),  # no key
            FakeRecord(b"CP-5", b"\xff not json"),
        ],
        lambda station_id, station: changes.append((station_id, station)),
    )
    assert stations == {"CP-1": good}
    assert skipped == 2
    assert [c[0] for c in changes] == ["CP-1", "CP-2", "CP-2"]


def test_a_failing_on_change_does_not_lose_the_rest_of_the_batch() -> None:
    stations: dict[str, StationRecord] = {}

    def on_change(station_id: str, station: StationRecord | None) -> None:
        raise RuntimeError("listener bug")

    apply_station_records(
        stations,
        [
            FakeRecord(b"CP-1", encode_station(record("CP-1"))),
            FakeRecord(b"CP-2", encode_station(record("CP-2"))),
        ],
        on_change,
    )
    assert set(stations) == {"CP-1", "CP-2"}
