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

A session's energy comes from meter readings kept as two values: the earliest
reading and the latest (by timestamp, then 2.x seqNo), with the few readings
just before the latest. A reading that arrives late or twice therefore changes
nothing unless it really is earlier or later than everything seen, and energy
is ``last - first`` (or the explicit 1.6 meterStart / meterStop and 2.x
``Transaction.End`` reading, which win over readings).

The end of a transaction is final: :func:`end_at` drops what came after it,
and a change to what a completed session shows is a correction, which
:meth:`Update.put` writes with a ``corrections`` list (ADR 0019).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelopes import OcppVersion, SessionCorrection, SessionEvent, SessionRecord
from workers.sessions.meter import Reading

__all__ = [
    "KEEP_COMPLETED",
    "KEEP_EARLIER",
    "MAX_SESSIONS",
    "NO_SESSIONS",
    "Session",
    "StationSessions",
    "TransactionIds",
    "Update",
    "add_seq_no",
    "after_end",
    "end_at",
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

KEEP_EARLIER = 3
"""Readings kept just before a session's latest: those of 2.x events after the end that
arrived before the Ended are taken back, and the latest reading before them counts."""


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
    meter_stop_wh: float | None = None  # explicit: 1.6 meterStop, 2.x Transaction.End of Ended
    first: Reading | None = None  # the earliest register reading (by timestamp, then seqNo)
    last: Reading | None = None  # ... and the latest
    earlier: tuple[Reading, ...] = ()  # the KEEP_EARLIER readings before the latest, oldest first
    stop_reason: str | None = None
    completed: bool = False
    offline: bool = False
    anomalies: tuple[str, ...] = ()
    started_seen: bool = False  # 2.x: the Started event arrived (1.6: always)
    seq_nos: tuple[tuple[int, int], ...] = ()  # 2.x: seqNo ranges received, inclusive
    end_seq_no: int | None = None  # 2.x: the seqNo of the Ended event

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
    """``session`` with ``readings`` counted; of two readings in the same order, the first stays."""
    first = session.first
    latest = {r.order: r for r in _latest(session)}
    for reading in readings:
        if first is None or reading.order < first.order:
            first = reading
        latest.setdefault(reading.order, reading)
    kept = sorted(latest.values(), key=lambda r: r.order)[-(KEEP_EARLIER + 1) :]
    last, earlier = (kept[-1], tuple(kept[:-1])) if kept else (None, ())
    if first is session.first and last is session.last and earlier == session.earlier:
        return session
    return msgspec.structs.replace(session, first=first, last=last, earlier=earlier)


def _latest(session: Session) -> tuple[Reading, ...]:
    return session.earlier if session.last is None else (*session.earlier, session.last)


# --- the end of a 2.x transaction ---------------------------------------------------------------


def after_end(session: Session, seq_no: int, at: datetime) -> bool:
    """2.x: whether an event (or its reading) of ``seq_no`` stamped ``at`` came after the end.

    After the Ended event means a higher seqNo, or another event stamped later
    than the Ended; the Ended's own readings belong to it, whatever their stamp.
    """
    end = session.end_seq_no
    if end is None or session.stopped_at is None:
        return False
    return seq_no > end or (seq_no != end and at > session.stopped_at)


def end_at(session: Session, seq_no: int) -> Session:
    """2.x: ``session`` ended by its event ``seq_no``, without what came after that.

    Call it once ``completed`` and ``stopped_at`` are set. Readings of events
    after the end that arrived before the Ended are dropped (the latest one
    before them is the last, if it was among the :data:`KEEP_EARLIER` kept;
    else the last is unknown), and any such event flags ``event_after_end``.
    """
    ended = msgspec.structs.replace(session, end_seq_no=seq_no)
    latest = _latest(ended)
    kept = [r for r in latest if not after_end(ended, r.seq_no, r.at)]
    first = ended.first
    if first is not None and after_end(ended, first.seq_no, first.at):
        first = kept[0] if kept else None
    later_events = bool(ended.seq_nos) and ended.seq_nos[-1][1] > seq_no
    if len(kept) == len(latest) and first is ended.first and not later_events:
        return ended
    return msgspec.structs.replace(
        ended,
        first=first,
        last=kept[-1] if kept else None,
        earlier=tuple(kept[:-1]),
    ).with_anomaly("event_after_end")


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


def _shown(session: Session) -> dict[str, Any]:
    """What a session record shows of a session, by record field: a change here is a new record."""
    return {
        "id_token": session.id_token,
        "evse_id": session.evse_id,
        "connector_id": session.connector_id,
        "state": "completed" if session.completed else "active",
        "started_at": session.started_at,
        "stopped_at": session.stopped_at,
        "meter_start_wh": meter_start_wh(session),
        "meter_stop_wh": meter_stop_wh(session),
        "energy_wh": energy_wh(session),
        "stop_reason": session.stop_reason,
        "offline": session.offline,
    }


def _corrections(before: Session, after: Session, reason: str) -> tuple[SessionCorrection, ...]:
    """Each field a record of ``after`` shows differently from one of ``before``, and why."""
    was, now = _shown(before), _shown(after)
    return tuple(
        SessionCorrection(
            field=field,
            was=msgspec.to_builtins(was[field]),
            now=msgspec.to_builtins(now[field]),
            reason=reason,
        )
        for field in was
        if was[field] != now[field]
    )


def session_record(
    station_id: str,
    session: Session,
    event: SessionEvent,
    at: datetime,
    corrections: tuple[SessionCorrection, ...] = (),
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
        corrections=corrections,
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

    def put(self, before: Session | None, after: Session, *, reason: str | None = None) -> None:
        """Replace ``before`` (or add, when None) by ``after``, and record what changed.

        A completed session is final: a change to what its records show is a
        correction, written as an ``updated`` record (state ``completed``) that
        lists each changed field, from what, to what, and ``reason``. Raises
        ValueError when that would happen without a ``reason``.
        """
        if after is before:
            return
        raw = raw_energy_wh(after)
        if raw is not None and raw < 0:
            after = after.with_anomaly("meter_decreased")
        fixed: tuple[SessionCorrection, ...] = ()
        if before is not None and before.completed and _shown(before) != _shown(after):
            if reason is None:
                raise ValueError(f"completed session {before.session_id} changed without a reason")
            fixed = _corrections(before, after, reason)
        sessions = list(self.station.sessions)
        if before is None:
            sessions.append(after)
        else:
            sessions = [after if s is before else s for s in sessions]
        self.station = StationSessions(_bounded(sessions))
        self.anomalies.extend(
            a for a in after.anomalies if before is None or a not in before.anomalies
        )
        if before is not None and _shown(before) == _shown(after):
            return
        if before is None:
            event: SessionEvent = "completed" if after.completed else "started"
        elif after.completed and not before.completed:
            event = "completed"
        else:
            event = "updated"
        self.records.append(session_record(self.station_id, after, event, self.at, fixed))


def _bounded(sessions: list[Session]) -> tuple[Session, ...]:
    """At most KEEP_COMPLETED completed sessions and MAX_SESSIONS in all, the oldest dropped."""
    completed = [s for s in sessions if s.completed]
    drop = {id(s) for s in completed[: max(0, len(completed) - KEEP_COMPLETED)]}
    kept = [s for s in sessions if id(s) not in drop]
    return tuple(kept[-MAX_SESSIONS:])
