"""Energy register readings out of meter values: units, multipliers, what does not count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from contracts.ocpp import v16, v21, v201
from workers.sessions.meter import Reading, readings2, readings16, utc

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _v16(*sampled: dict[str, Any], timestamp: str = "2026-03-01T12:00:00Z") -> list[Reading]:
    value = msgspec.convert(
        {"timestamp": timestamp, "sampledValue": list(sampled)}, v16.MeterValue, strict=False
    )
    return list(readings16([value]))


def _v2(types: Any, *sampled: dict[str, Any]) -> list[Reading]:
    value = msgspec.convert(
        {"timestamp": "2026-03-01T12:00:00Z", "sampledValue": list(sampled)},
        types.MeterValueType,
        strict=False,
    )
    return list(readings2([value]))


def test_a_value_without_measurand_or_unit_is_the_register_in_wh() -> None:
    assert _v16({"value": "1234.5"}) == [Reading(AT, 1234.5)]


def test_kwh_is_converted_exactly() -> None:
    reading = _v16({"value": "12.345", "unit": "kWh", "measurand": "Energy.Active.Import.Register"})
    assert reading == [Reading(AT, 12345.0)]


def test_other_measurands_phases_units_and_signed_values_do_not_count() -> None:
    assert _v16({"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"}) == []
    assert _v16({"value": "100", "phase": "L1"}) == []
    assert _v16({"value": "100", "unit": "varh"}) == []
    assert _v16({"value": "00AF", "format": "SignedData"}) == []
    assert _v16({"value": "not a number"}) == []
    assert _v16({"value": "nan"}) == []


def test_the_first_register_value_of_a_meter_value_is_the_reading() -> None:
    readings = _v16(
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "2.5", "unit": "kWh"},
        {"value": "9999"},
    )
    assert readings == [Reading(AT, 2500.0)]


def test_a_timestamp_without_offset_is_utc() -> None:
    assert _v16({"value": "1"}, timestamp="2026-03-01T12:00:00") == [Reading(AT, 1.0)]
    assert utc(datetime(2026, 3, 1, 13, 0, tzinfo=UTC).astimezone()) == AT.replace(hour=13)


@pytest.mark.parametrize("types", [v201, v21], ids=["2.0.1", "2.1"])
def test_units_and_multipliers_of_2x(types: Any) -> None:
    assert _v2(types, {"value": 1234.5}) == [Reading(AT, 1234.5)]
    assert _v2(types, {"value": 12.345, "unitOfMeasure": {"unit": "kWh"}}) == [Reading(AT, 12345.0)]
    assert _v2(types, {"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}) == [
        Reading(AT, 12500.0)
    ]
    assert _v2(types, {"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": -1}}) == [
        Reading(AT, 150.0)
    ]
    assert _v2(types, {"value": 5, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}}) == []
    assert _v2(types, {"value": 5, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}) == []
    assert _v2(types, {"value": 5, "phase": "L2"}) == []


@pytest.mark.parametrize("types", [v201, v21], ids=["2.0.1", "2.1"])
def test_2x_readings_carry_the_seq_no_and_can_be_picked_by_context(types: Any) -> None:
    value = msgspec.convert(
        {
            "timestamp": "2026-03-01T12:00:00Z",
            "sampledValue": [
                {"value": 100.0},  # Sample.Periodic when it names no context
                {"value": 114.39, "context": "Transaction.End"},
            ],
        },
        types.MeterValueType,
        strict=False,
    )
    assert list(readings2([value], seq_no=2)) == [Reading(AT, 100.0, 2)]
    assert list(readings2([value], seq_no=2, context="Transaction.End")) == [Reading(AT, 114.39, 2)]
    assert list(readings2([value], context="Sample.Periodic")) == [Reading(AT, 100.0)]
    assert list(readings2([value], context="Transaction.Begin")) == []
    # one timestamp: the later event's reading is the later one
    assert Reading(AT, 1.0, 3).order > Reading(AT, 2.0, 2).order
