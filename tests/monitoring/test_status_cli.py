"""``csms stations status``'s text: counts, a line per station, one station in detail."""

from __future__ import annotations

import json

import msgspec
import pytest

from contracts.asyncapi import EXAMPLES
from contracts.envelopes import StationStatus
from gateway.station_status import UnknownStation, status_lines

EXAMPLE = next(e.value for e in EXAMPLES["csms.station-status.v1"])
assert isinstance(EXAMPLE, StationStatus)
OFFLINE = msgspec.structs.replace(
    EXAMPLE,
    station_id="CP-0002",
    online=False,
    connectors=(),
    transactions=(),
    boot=None,
    ocpp_version=None,
)
FLEET = {"CP-0001": EXAMPLE, "CP-0002": OFFLINE}


def test_the_fleet_counts_then_one_line_per_station() -> None:
    lines = status_lines(FLEET, None, as_json=False)
    assert lines[0] == "2 stations: 1 online, 1 offline, 1 charging, 1 faulted"
    assert lines[1].split() == [
        "station",
        "state",
        "ocpp",
        "vendor/model",
        "connectors",
        "last",
        "heard",
    ]
    assert lines[2].split() == [
        "CP-0001",
        "online",
        "1.6",
        "Alfen",
        "BV/NG920-61001",
        "0:Available",
        "1:Charging",
        "2:Faulted(GroundFailure)",
        "2026-03-01T12:14:00Z",
    ]
    assert lines[3].split()[:5] == ["CP-0002", "offline", "-", "-", "-"]


def test_one_station_in_detail_and_as_json() -> None:
    rows = {
        key: value
        for key, _, value in (
            line.partition("  ") for line in status_lines(FLEET, "CP-0001", as_json=False)
        )
    }
    rows = {key: value.strip() for key, value in rows.items()}
    assert rows["state"].startswith("online since 2026-03-01T10:15:00Z (connection ")
    assert (
        rows["connector 2"]
        == "Faulted(GroundFailure) [E42, RCD tripped] since 2026-03-01T12:10:00Z"
    )
    assert rows["transaction 1"] == "4217 started 2026-03-01T11:30:00Z"
    assert rows["meter 1"] == "12873.4 Wh, 11040 W at 2026-03-01T12:15:00Z"
    (line,) = status_lines(FLEET, "CP-0002", as_json=True)
    assert json.loads(line)["online"] is False


def test_an_unknown_station_is_named() -> None:
    with pytest.raises(UnknownStation, match="no status record for station 'CP-9'"):
        status_lines(FLEET, "CP-9", as_json=False)
