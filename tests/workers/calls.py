"""Calls of the ``ocpp`` package's charge points, as the end-to-end tests make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v201 import call as call201

NOW = datetime.now(UTC).replace(microsecond=0)  # set again at each test's start (conftest)
TRIGGERS = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "EVDeparted"}


def at(minutes: float) -> str:
    """An OCPP timestamp ``minutes`` after NOW."""
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def transaction_event(
    event_type: str, seq_no: int, minutes: float, transaction: str, **fields: Any
) -> call201.TransactionEvent:
    """A 2.0.1 TransactionEvent; ``transaction_info`` gets the id, fields add to it."""
    return call201.TransactionEvent(
        event_type=event_type,
        timestamp=at(minutes),
        trigger_reason=TRIGGERS[event_type],
        seq_no=seq_no,
        transaction_info={"transaction_id": transaction, **fields.pop("info", {})},
        **fields,
    )


def register(minutes: float, value: Any, **unit: Any) -> list[dict[str, Any]]:
    """A meter value of the energy register (``unit`` as the version's fields say)."""
    sampled = {"value": value, "measurand": "Energy.Active.Import.Register", **unit}
    return [{"timestamp": at(minutes), "sampled_value": [sampled]}]
