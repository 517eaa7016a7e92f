"""Session bookkeeping: seqNo ranges, how many sessions a station keeps, energy."""

from __future__ import annotations

import itertools
from datetime import timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tests.workers.harness import T0
from workers.sessions.meter import Reading
from workers.sessions.model import (
    KEEP_COMPLETED,
    MAX_SESSIONS,
    NO_SESSIONS,
    Session,
    Update,
    add_seq_no,
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
