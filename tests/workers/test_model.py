"""Session bookkeeping: seqNo ranges, how many sessions a station keeps, energy."""

from __future__ import annotations

import itertools
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.workers.harness import T0
from workers.sessions.meter import Reading
from workers.sessions.model import (
    KEEP_COMPLETED,
    KEEP_EARLIER,
    MAX_SESSIONS,
    NO_SESSIONS,
    Session,
    Update,
    add_seq_no,
    end_at,
    energy_wh,
    seq_no_seen,
    with_readings,
)


@given(st.lists(st.integers(0, 60), max_size=40))
def test_seq_no_ranges_hold_exactly_the_numbers_added(numbers: list[int]) -> None:
    ranges: tuple[tuple[int, int], ...] = ()
    for number in numbers:
        ranges = add_seq_no(ranges, number)
    assert all(seq_no_seen(ranges, n) == (n in numbers) for n in range(-1, 62))
    # merged: sorted, disjoint and not adjacent
    assert all(high + 1 < low for (_, high), (low, _) in itertools.pairwise(ranges))


def _session(number: int, *, completed: bool) -> Session:
    return Session(
        session_id=f"CP-1:{number}",
        transaction_id=str(number),
        ocpp_version="1.6",
        started_at=T0,
        completed=completed,
    )


def test_a_station_keeps_its_active_sessions_and_the_last_completed_ones() -> None:
    update = Update("CP-1", T0, NO_SESSIONS)
    for number in range(20):
        update.put(None, _session(number, completed=number % 2 == 0))
    kept = [int(s.transaction_id) for s in update.station.sessions]
    active = [n for n in range(20) if n % 2]
    assert [n for n in kept if n % 2] == active
    assert [n for n in kept if n % 2 == 0] == list(range(20 - 2 * KEEP_COMPLETED, 20, 2))
    for number in range(20, 20 + MAX_SESSIONS):
        update.put(None, _session(number, completed=False))
    assert len(update.station.sessions) == MAX_SESSIONS


def test_energy_is_the_latest_reading_minus_the_earliest_unless_explicit() -> None:
    session = with_readings(
        _session(1, completed=False),
        [Reading(T0 + timedelta(minutes=5), 1500.0), Reading(T0, 1000.0)],
    )
    assert energy_wh(session) == 500.0
    assert with_readings(session, [Reading(T0, 999.0)]) is session  # same instant: first kept
    stopped = msgspec.structs.replace(session, completed=True, meter_stop_wh=1800.0)
    assert energy_wh(stopped) == 800.0
    assert energy_wh(_session(2, completed=False)) is None


def test_readings_of_one_instant_are_ordered_by_seq_no_and_a_few_are_kept_before_the_last() -> None:
    readings = [Reading(T0, 300.0, 2), Reading(T0, 200.0, 1), Reading(T0, 100.0, 0)]
    session = with_readings(_session(1, completed=False), readings)
    assert (session.first, session.last) == (readings[2], readings[0])
    later = [Reading(T0 + timedelta(minutes=m), 300.0 + m, 3 + m) for m in range(1, 6)]
    session = with_readings(session, later)
    assert (session.last, session.earlier) == (later[-1], tuple(later[-1 - KEEP_EARLIER : -1]))
    assert with_readings(session, readings) is session  # older than everything kept


def test_the_end_takes_back_the_readings_of_events_after_it() -> None:
    at = T0 + timedelta(minutes=10)
    before = [Reading(T0, 0.0, 0), Reading(at, 50.0, 1)]
    after = [Reading(at, 70.0, 3), Reading(at + timedelta(minutes=1), 90.0, 4)]
    session = with_readings(_session(1, completed=False), [*before, *after])
    ended = end_at(msgspec.structs.replace(session, completed=True, stopped_at=at), 2)
    assert (ended.first, ended.last, ended.earlier) == (before[0], before[1], (before[0],))
    assert (ended.end_seq_no, ended.anomalies) == (2, ("event_after_end",))
    assert energy_wh(ended) == 50.0


def test_a_completed_session_never_changes_silently() -> None:
    update = Update("CP-1", T0, NO_SESSIONS)
    done = msgspec.structs.replace(_session(1, completed=True), meter_stop_wh=10.0)
    update.put(None, done)
    with pytest.raises(ValueError, match="without a reason"):
        update.put(done, msgspec.structs.replace(done, meter_stop_wh=20.0))
    update.put(done, done.with_anomaly("late_reading"))  # nothing shown changes: no record
    assert [r.event for r in update.records] == ["completed"]
