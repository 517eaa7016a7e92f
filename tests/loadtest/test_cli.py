"""The pieces of ``csms loadtest run`` that decide who is simulated: parts, ids, passwords."""

from __future__ import annotations

import base64
import gc
import weakref
from pathlib import Path

import pytest

from contracts.settings import SettingsError
from loadtest.builtin import STEADY
from loadtest.cli import read_passwords, station_range
from loadtest.fleet import Fleet, Plan, station_url
from loadtest.processes import split


@pytest.mark.parametrize(("stations", "parts"), [(10, 1), (10, 3), (100_000, 4), (7, 7)])
def test_parts_cover_every_station_once(stations: int, parts: int) -> None:
    numbers: list[int] = []
    for part in range(parts):
        first, count = station_range(stations, part, parts)
        numbers += range(first, first + count)
    assert numbers == list(range(stations))


def test_a_part_out_of_range_or_too_many_parts() -> None:
    with pytest.raises(SettingsError, match=r"--part 4 is not in 0 \.\. --parts 4 - 1"):
        station_range(100, 4, 4)
    with pytest.raises(SettingsError, match="3 stations cannot be split into 4 parts"):
        station_range(3, 0, 4)


def plan(**kwargs: object) -> Plan:
    fields: dict[str, object] = {"first": 10, "count": 5, "fleet_stations": 20} | kwargs
    return Plan(target="ws://csms:9000/ocpp", scenario=STEADY, scenario_source="steady", **fields)  # type: ignore[arg-type]


def test_processes_split_a_plan_into_consecutive_stations() -> None:
    plans = split(plan(passwords={"LT-000010": "a", "LT-000014": "b"}), 2)
    assert [(p.first, p.count) for p in plans] == [(10, 3), (13, 2)]
    assert [p.label for p in plans] == ["part 0/1 process 0/2", "part 0/1 process 1/2"]
    assert plans[0].passwords == {"LT-000010": "a"}
    assert plans[1].passwords == {"LT-000014": "b"}


def test_station_ids_urls_and_basic_auth() -> None:
    fleet = Fleet(plan(password="secret-{station}", passwords={"LT-000011": "from-file"}))
    first, second = fleet.stations[:2]
    assert first.station_id == "LT-000010"
    assert first.url == "ws://csms:9000/ocpp/LT-000010"
    assert (
        first.authorization == "Basic " + base64.b64encode(b"LT-000010:secret-LT-000010").decode()
    )
    assert second.authorization == "Basic " + base64.b64encode(b"LT-000011:from-file").decode()
    assert Fleet(plan()).stations[0].authorization is None  # no password: no header
    assert station_url("wss://x/{station}/ws", "CP 1") == "wss://x/CP 1/ws"


def test_the_version_mix_is_kept() -> None:
    fleet = Fleet(plan(first=0, count=4000, fleet_stations=4000))
    share = sum(s.version == "1.6" for s in fleet.stations) / 4000
    assert share == pytest.approx(0.75, abs=0.01)  # steady: 3 to 1


def test_password_files(tmp_path: Path) -> None:
    path = tmp_path / "passwords.txt"
    path.write_text("# station password\nCP-1 s3cret\nCP-2,other one\n\n")
    assert read_passwords(str(path)) == {"CP-1": "s3cret", "CP-2": "other one"}
    path.write_text("CP-1 ok\nCP-2\n")
    with pytest.raises(SettingsError, match=r"passwords\.txt:2: expected 'station-id password'"):
        read_passwords(str(path))


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


@pytest.mark.parametrize("gracefully", [True, False])
def test_a_connection_given_up_is_freed_without_the_garbage_collector(gracefully: bool) -> None:
    """websockets' protocol and its parser form a reference cycle; frozen (GcPolicy), a
    cycle would never be collected, so giving a connection up must break it."""
    station = Fleet(plan()).stations[0]
    station.state = 1  # connecting
    station.connection_made(FakeTransport())  # type: ignore[arg-type]
    protocol = weakref.ref(station.ws)  # type: ignore[arg-type]
    generation = station.generation
    gc.disable()
    try:
        station.give_up(gracefully=gracefully)
        assert protocol() is None
    finally:
        gc.enable()
    assert station.generation == generation + 1
    assert station.ws is None and station.transport is None
