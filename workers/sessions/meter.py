"""Energy register readings out of OCPP meter values, in Wh.

A session's energy is the difference between two readings of the meter's
active import register (``Energy.Active.Import.Register``, the measurand a
sampled value has when it names none: 1.6 §4.7, 2.0.1 SampledValueType). Only
readings of the whole connector count: a value with a ``phase`` is a part of
it, and a signed value (1.6 ``format=SignedData``) is not a number.

A 2.x sampled value says what it is a sample of (``context``, default
``Sample.Periodic``): the Ended event's ``Transaction.End`` value is the
reading a transaction ended on.

Units: 1.6 says ``Wh`` (the default) or ``kWh``; 2.0.1 and 2.1 say
``unitOfMeasure.unit`` (default ``Wh``) and a power-of-ten ``multiplier``
(default 0). Any other unit is not energy and is skipped. Readings are rounded
to the milliwatt-hour, so ``12.345 kWh`` is exactly ``12345.0`` Wh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import msgspec

from contracts.ocpp import v16, v21, v201

__all__ = ["REGISTER", "TRANSACTION_END", "Reading", "readings2", "readings16", "utc"]

REGISTER = "Energy.Active.Import.Register"
TRANSACTION_END = "Transaction.End"
_SAMPLE_PERIODIC = "Sample.Periodic"  # a 2.x sampled value's context when it names none
_UNITS = {"Wh": 1.0, "kWh": 1000.0}
_MULTIPLIERS = range(-9, 10)  # beyond a giga- or nano-prefix a multiplier is a mistake


class Reading(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The register's value ``wh`` at the instant ``at``.

    ``seq_no`` is the 2.x seqNo of the TransactionEvent that carried it (1.6:
    0): readings are ordered by ``(at, seq_no)``, so of two readings stamped
    the same instant the later event's counts as the later one.
    """

    at: datetime
    wh: float
    seq_no: int = 0

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.at, self.seq_no)


def utc(at: datetime) -> datetime:
    """An aware UTC datetime; a station's timestamp without an offset is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _wh(value: float, unit: str, multiplier: int = 0) -> float | None:
    factor = _UNITS.get(unit)
    if factor is None or multiplier not in _MULTIPLIERS or not math.isfinite(value):
        return None
    return round(value * factor * 10.0**multiplier, 3)


def readings16(meter_values: Iterable[v16.MeterValue]) -> Iterator[Reading]:
    """The register readings of 1.6 meter values: at most one per meter value."""
    for meter_value in meter_values:
        for sampled in meter_value.sampled_value:
            if sampled.measurand not in (msgspec.UNSET, REGISTER):
                continue
            if sampled.phase is not msgspec.UNSET or sampled.format == "SignedData":
                continue
            try:
                value = float(sampled.value)
            except ValueError:
                continue
            wh = _wh(value, "Wh" if sampled.unit is msgspec.UNSET else sampled.unit)
            if wh is not None:
                yield Reading(utc(meter_value.timestamp), wh)
                break


def readings2(
    meter_values: Iterable[v201.MeterValueType | v21.MeterValueType],
    *,
    seq_no: int = 0,
    context: str | None = None,
) -> Iterator[Reading]:
    """The register readings of 2.0.1 / 2.1 meter values: at most one per meter value.

    ``seq_no`` is the seqNo of the event that carried them; with ``context``,
    only sampled values of that context count (``Transaction.End``: the
    reading a transaction ended on).
    """
    for meter_value in meter_values:
        for sampled in meter_value.sampled_value:
            if sampled.measurand not in (msgspec.UNSET, REGISTER):
                continue
            if sampled.phase is not msgspec.UNSET:
                continue
            if context is not None and context != (
                _SAMPLE_PERIODIC if sampled.context is msgspec.UNSET else sampled.context
            ):
                continue
            unit, multiplier = "Wh", 0
            measure = sampled.unit_of_measure
            if measure is not msgspec.UNSET:
                if measure.unit is not msgspec.UNSET:
                    unit = measure.unit
                if measure.multiplier is not msgspec.UNSET:
                    multiplier = measure.multiplier
            wh = _wh(sampled.value, unit, multiplier)
            if wh is not None:
                yield Reading(utc(meter_value.timestamp), wh, seq_no)
                break
