"""An alert's life: pending, firing, resolved; at most one open per fingerprint.

:func:`reconcile` compares the conditions that hold now
(:func:`workers.alerts.rules.conditions`) with the alerts a station has open
(:class:`Tracked`) and returns the alerts after, the ``csms.alerts.v1``
records to write, and when it must be called again.

- A new condition is **pending** until it has held for its rule's ``hold``;
  gone before that, it leaves no trace.
- Then it **fires**: an ``Alert`` record with state ``raised``, whose
  ``alert_id`` is the fingerprint and the event that began the condition.
- Gone again, it is **resolved** (a ``cleared`` record, same ``alert_id``)
  once it has been firing for ``min_firing`` at least.
- **Flapping**: the ``flap_count``-th raise of a fingerprint within
  ``flap_window`` is marked ``flapping``, and clears only after its condition
  has been gone for ``flap_hold``; if it comes back before, the alert simply
  stays raised. A flapping station is one open alert, not a storm.

Instants in records come from the conditions, not from the clock that noticed
them: ``raised_at`` is when the condition began plus its hold, ``cleared_at``
when it was gone plus what the clearing waited for. Replaying the same events
gives the same records.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import msgspec

from contracts.envelopes import Alert
from workers.alerts.rules import SEVERITY, Condition

__all__ = ["Fired", "Lifecycle", "Reconciled", "Tracked", "reconcile"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """The durations of an alert's states (from the alerts worker's settings)."""

    min_firing: timedelta = timedelta(seconds=60)
    flap_count: int = 3
    flap_window: timedelta = timedelta(hours=1)
    flap_hold: timedelta = timedelta(minutes=30)


class Tracked(msgspec.Struct, frozen=True, kw_only=True):
    """An alert of a station that is pending or firing."""

    fingerprint: str
    alert_id: str
    rule: str
    evse_id: int | None = None
    connector_id: int | None = None
    fires_at: datetime  # when the condition will have held long enough
    firing: bool = False
    flapping: bool = False
    summary: str = ""
    details: dict[str, Any] = {}
    gone_since: datetime | None = None  # firing, with its condition gone since then

    def clears_at(self, life: Lifecycle) -> datetime | None:
        if not self.firing or self.gone_since is None:
            return None
        quiet = life.flap_hold if self.flapping else timedelta(0)
        return max(self.gone_since + quiet, self.fires_at + life.min_firing)


class Fired(msgspec.Struct, frozen=True, array_like=True):
    """A fingerprint fired at ``at``: what flapping is counted from."""

    fingerprint: str
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    tracked: tuple[Tracked, ...]
    fired: tuple[Fired, ...]
    records: tuple[Alert, ...]
    due: datetime | None  # when reconcile must run again, time passing alone


def reconcile(
    station_id: str,
    gateway_id: str | None,
    tracked: tuple[Tracked, ...],
    fired: tuple[Fired, ...],
    holding: list[Condition],
    now: datetime,
    life: Lifecycle,
) -> Reconciled:
    """The station's alerts after the conditions ``holding`` at ``now``."""
    fired = tuple(f for f in fired if f.at > now - life.flap_window)
    holds = {c.fingerprint(station_id): c for c in holding}
    kept: list[Tracked] = []
    records: list[Alert] = []
    for alert in tracked:
        condition = holds.get(alert.fingerprint)
        if not alert.firing:
            if condition is None:
                continue  # pending, and gone before it fired
            alert = _pending(alert, condition)  # it may have begun again meanwhile
        elif condition is not None and now >= condition.began.at + condition.hold:
            if alert.gone_since is not None:
                alert = msgspec.structs.replace(alert, gone_since=None)  # back before it cleared
        else:
            if alert.gone_since is None:
                alert = msgspec.structs.replace(alert, gone_since=now)
            clears_at = alert.clears_at(life)
            assert clears_at is not None
            if now >= clears_at:
                records.append(_record(station_id, gateway_id, alert, clears_at))
                continue
        kept.append(alert)
    known = {alert.fingerprint for alert in tracked}
    for fingerprint, condition in holds.items():
        if fingerprint not in known:
            kept.append(
                _pending(
                    Tracked(
                        fingerprint=fingerprint, alert_id="", rule=condition.rule, fires_at=now
                    ),
                    condition,
                )
            )
    result: list[Tracked] = []
    for alert in kept:
        current = holds.get(alert.fingerprint)
        if not alert.firing and current is not None and now >= alert.fires_at:
            times = sum(f.fingerprint == alert.fingerprint for f in fired) + 1
            alert = msgspec.structs.replace(
                alert,
                firing=True,
                flapping=times >= life.flap_count,
                summary=current.summary,
                details=current.details,
            )
            fired = (*fired, Fired(alert.fingerprint, alert.fires_at))
            records.append(_record(station_id, gateway_id, alert, None))
        result.append(alert)
    result.sort(key=lambda a: a.fingerprint)
    due = [a.fires_at for a in result if not a.firing]
    due.extend(at for a in result if (at := a.clears_at(life)) is not None)
    return Reconciled(tuple(result), fired, tuple(records), min(due) if due else None)


def _pending(alert: Tracked, condition: Condition) -> Tracked:
    """A pending alert as of its condition: named and timed by when the condition began."""
    return msgspec.structs.replace(
        alert,
        alert_id=f"{alert.fingerprint}@{condition.began.position}",
        evse_id=condition.evse_id,
        connector_id=condition.connector_id,
        fires_at=condition.began.at + condition.hold,
    )


def _record(
    station_id: str, gateway_id: str | None, alert: Tracked, cleared_at: datetime | None
) -> Alert:
    return Alert(
        alert_id=alert.alert_id,
        station_id=station_id,
        kind=alert.rule,
        severity=SEVERITY[alert.rule],  # type: ignore[arg-type]
        state="raised" if cleared_at is None else "cleared",
        evse_id=alert.evse_id,
        connector_id=alert.connector_id,
        raised_at=alert.fires_at,
        cleared_at=cleared_at,
        summary=alert.summary,
        details=alert.details,
        fingerprint=alert.fingerprint,
        gateway_id=gateway_id,
        flapping=alert.flapping,
    )
