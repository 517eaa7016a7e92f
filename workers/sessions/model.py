"""What the sessions worker remembers, and the session records it makes of it.

Per station (the key of the changelog): its :class:`Session` objects, the
active ones and the last :data:`KEEP_COMPLETED` completed ones (to recognise a
retried StopTransaction, a replayed TransactionEvent, a late meter value).
Per partition: :class:`TransactionIds`, the counter the OCPP 1.6 transaction
ids come from.

All of it is immutable: an update builds new objects, and one that changes
nothing hands back the very objects it got (the runtime writes a state only
when its object changed). The objects hold no references to mutable ones, so
they can never be in a reference cycle: they are kept out of the garbage
collector's view (``gc=False``), which matters at tens of thousands of stations.

A session's energy comes from meter readings kept as two values: the reading
with the earliest timestamp and the one with the latest. A reading that
arrives late or twice therefore changes nothing unless it really is earlier
or later than everything seen, and energy is ``last - first`` (or the explicit
1.6 meterStart / meterStop, which win over readings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelopes import OcppVersion, SessionEvent, SessionRecord
from workers.sessions.meter import Reading

__all__ = [
    "KEEP_COMPLETED",
    "MAX_SESSIONS",
    "NO_SESSIONS",
    "Session",
    "StationSessions",
    "TransactionIds",
    "Update",
    "add_seq_no",
    "energy_wh",
    "find",
    "seq_no_seen",
    "session_record",
    "with_readings",
]

KEEP_COMPLETED = 8
"""Completed sessions remembered per station, to recognise late and repeated messages."""

MAX_SESSIONS = 32
"""Sessions remembered per station at most: the oldest go first (completed before active)."""


class Session(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One transaction of a station, as far as its messages told."""

    session_id: str
    transaction_id: str
    ocpp_version: OcppVersion
    started_at: datetime
    connector_id: int | None = None
    evse_id: int | None = None
    id_token: str | None = None
    stopped_at: datetime | None = None
    meter_start_wh: float | None = None  # explicit: 1.6 meterStart
    meter_stop_wh: float | None = None  # explicit: 1.6 meterStop
    first: Reading | None = None  # the register reading with the earliest timestamp
    last: Reading | None = None  # ... and with the latest
    stop_reason: str | None = None
    completed: bool = False
    offline: bool = False
    anomalies: tuple[str, ...] = ()
    started_seen: bool = False  # 2.x: the Started event arrived (1.6: always)
    seq_nos: tuple[tuple[int, int], ...] = ()  # 2.x: seqNo ranges received, inclusive

    def with_anomaly(self, anomaly: str) -> Session:
        if anomaly in self.anomalies:
            return self
        return msgspec.structs.replace(self, anomalies=(*self.anomalies, anomaly))


class StationSessions(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """A station's sessions, oldest first."""

    sessions: tuple[Session, ...] = ()


NO_SESSIONS = StationSessions()


class TransactionIds(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """The partition's counter of OCPP 1.6 transaction ids (see ocpp16.transaction_id)."""

    next: int = 1


def find(station: StationSessions, match: Callable[[Session], bool]) -> Session | None:
    """The most recent session that ``match`` accepts."""
    for session in reversed(station.sessions):
        if match(session):
            return session
    return None


# --- readings and energy ------------------------------------------------------------------------


def with_readings(session: Session, readings: Iterable[Reading]) -> Session:
    first, last = session.first, session.last
    for reading in readings:
        if first is None or reading.at < first.at:
            first = reading
        if last is None or reading.at > last.at:
            last = reading
    if first is session.first and last is session.last:
        return session
    return msgspec.structs.replace(session, first=first, last=last)


def meter_start_wh(session: Session) -> float | None:
    if session.meter_start_wh is not None:
        return session.meter_start_wh
    return None if session.first is None else session.first.wh


def meter_stop_wh(session: Session) -> float | None:
    if not session.completed:
        return None
    if session.meter_stop_wh is not None:
        return session.meter_stop_wh
    return None if session.last is None else session.last.wh


def raw_energy_wh(session: Session) -> float | None:
    start = meter_start_wh(session)
    end = meter_stop_wh(session) if session.completed else None
    if end is None and session.last is not None:
        end = session.last.wh
    if start is None or end is None:
        return None
    return round(end - start, 3)


def energy_wh(session: Session) -> float | None:
    """Energy delivered so far (active) or in total (completed); ``None`` when unknown."""
    energy = raw_energy_wh(session)
    return None if energy is None or energy < 0 else energy


# --- 2.x sequence numbers -----------------------------------------------------------------------


def seq_no_seen(ranges: tuple[tuple[int, int], ...], seq_no: int) -> bool:
    return any(low <= seq_no <= high for low, high in ranges)


def add_seq_no(ranges: tuple[tuple[int, int], ...], seq_no: int) -> tuple[tuple[int, int], ...]:
    """The ranges with ``seq_no`` added, merged and sorted."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted([*ranges, (seq_no, seq_no)]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


# --- records ------------------------------------------------------------------------------------


def _facts(session: Session) -> tuple[Any, ...]:
    """What a session record shows of a session: a change here is a new record."""
    return (
        session.id_token,
        session.evse_id,
        session.connector_id,
        session.completed,
        session.started_at,
        session.stopped_at,
        meter_start_wh(session),
        meter_stop_wh(session),
        energy_wh(session),
        session.stop_reason,
        session.offline,
    )


def session_record(
    station_id: str, session: Session, event: SessionEvent, at: datetime
) -> SessionRecord:
    return SessionRecord(
        session_id=session.session_id,
        station_id=station_id,
        transaction_id=session.transaction_id,
        id_token=session.id_token,
        evse_id=session.evse_id,
        connector_id=session.connector_id,
        state="completed" if session.completed else "active",
        event=event,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        meter_start_wh=meter_start_wh(session),
        meter_stop_wh=meter_stop_wh(session),
        energy_wh=energy_wh(session),
        stop_reason=session.stop_reason,
        offline=session.offline,
        ocpp_version=session.ocpp_version,
        updated_at=at,
        anomalies=session.anomalies,
    )


@dataclasses.dataclass
class Update:
    """The changes one event makes to a station's sessions: new state, records, anomalies.

    ``at`` is the event's ``received_at``: the ``updated_at`` of the records,
    so that handling the same event again writes the very same records.
    """

    station_id: str
    at: datetime
    station: StationSessions
    records: list[SessionRecord] = dataclasses.field(default_factory=list)
    anomalies: list[str] = dataclasses.field(default_factory=list)

    def put(self, before: Session | None, after: Session) -> None:
        """Replace ``before`` (or add, when None) by ``after``, and record what changed."""
        if after is before:
            return
        raw = raw_energy_wh(after)
        if raw is not None and raw < 0:
            after = after.with_anomaly("meter_decreased")
        sessions = list(self.station.sessions)
        if before is None:
            sessions.append(after)
        else:
            sessions = [after if s is before else s for s in sessions]
        self.station = StationSessions(_bounded(sessions))
        self.anomalies.extend(
            a for a in after.anomalies if before is None or a not in before.anomalies
        )
        if before is not None and _facts(before) == _facts(after):
            return
        if before is None:
            event: SessionEvent = "completed" if after.completed else "started"
        elif after.completed and not before.completed:
            event = "completed"
        else:
            event = "updated"
        self.records.append(session_record(self.station_id, after, event, self.at))


def _bounded(sessions: list[Session]) -> tuple[Session, ...]:
    """At most KEEP_COMPLETED completed sessions and MAX_SESSIONS in all, the oldest dropped."""
    completed = [s for s in sessions if s.completed]
    drop = {id(s) for s in completed[: max(0, len(completed) - KEEP_COMPLETED)]}
    kept = [s for s in sessions if id(s) not in drop]
    return tuple(kept[-MAX_SESSIONS:])
