"""A partition's checkpoints: what they capture, and the acknowledgements they wait for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from workers.runtime.logic import Decision
from workers.runtime.partition import Acks, CheckpointValue, OwnedPartition, PublishFailed


class State(msgspec.Struct, frozen=True):
    value: int


def _decision(station: State | None, partition: State) -> Decision[State, State]:
    return Decision("ok", station, partition)


def test_a_checkpoint_captures_changed_states_the_offset_and_the_partition_state() -> None:
    owned: OwnedPartition[State, State] = OwnedPartition(2, {"CP-1": State(1)}, State(0), None)
    assert owned.close() is None  # nothing handled yet
    unchanged = owned.stations["CP-1"]
    owned.apply("CP-1", _decision(unchanged, State(0)))
    owned.apply("CP-2", _decision(State(7), State(1)))
    owned.handled_up_to(41)
    checkpoint = owned.close()
    assert checkpoint is not None
    assert (checkpoint.partition, checkpoint.offset) == (2, 41)
    assert checkpoint.records == [("CP-2", b'{"value":7}')]
    value = msgspec.json.decode(checkpoint.value, type=CheckpointValue)
    assert (value.offset, bytes(value.state)) == (41, b'{"value":1}')
    # the next one holds what changed since, deletions as tombstones
    owned.apply("CP-1", _decision(None, State(1)))
    owned.handled_up_to(42)
    assert owned.close().records == [("CP-1", None)]  # type: ignore[union-attr]
    assert owned.close() is None


def test_a_checkpoint_is_due_after_the_interval_when_something_was_handled() -> None:
    owned: OwnedPartition[State, State] = OwnedPartition(0, {}, State(0), 10)
    assert not owned.due(owned.last_checkpoint + 5, 1.0)
    owned.handled_up_to(11)
    assert not owned.due(owned.last_checkpoint + 0.5, 1.0)
    assert owned.due(owned.last_checkpoint + 1.0, 1.0)


async def test_acks_wait_for_every_record_and_report_a_failure() -> None:
    acks = Acks()
    callbacks = [acks.expect() for _ in range(3)]
    waiting = asyncio.create_task(acks.wait())
    await asyncio.sleep(0)
    callbacks[0](None)
    callbacks[1](None)
    await asyncio.sleep(0)
    assert not waiting.done()
    callbacks[2](None)
    await waiting
    failed = Acks()
    done = failed.expect()
    done(RuntimeError("broker away"))
    with pytest.raises(PublishFailed, match="broker away"):
        await failed.wait()
    await Acks().wait()  # nothing expected: returns at once


def test_a_partition_fails_for_as_long_as_handled_events_wait_after_a_failed_write() -> None:
    owned: OwnedPartition[State, State] = OwnedPartition(0, {}, State(0), 10)
    assert owned.failing_for(1000.0) == 0.0  # nothing failed
    owned.failing_since = 900.0
    assert owned.failing_for(1000.0) == 0.0  # restored, nothing handled since: nothing at risk
    owned.handled_up_to(12)
    assert owned.failing_for(1000.0) == 100.0
    owned.close()  # captured; the worker then writes it (owned.writing) and clears failing_since
    assert owned.failing_for(1010.0) == 0.0


def test_deadlines_expire_earliest_first_once_and_a_moved_one_counts_where_it_moved() -> None:
    owned: OwnedPartition[State, State] = OwnedPartition(0, {}, State(0), 10)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    owned.set_deadline("late", t0 + timedelta(seconds=5))
    owned.set_deadline("early", t0 + timedelta(seconds=1))
    owned.set_deadline("moved", t0 + timedelta(seconds=2))
    owned.set_deadline("moved", t0 + timedelta(seconds=9))
    owned.set_deadline("dropped", t0 + timedelta(seconds=3))
    owned.set_deadline("dropped", None)
    assert owned.expired(t0) == []
    assert owned.expired(t0 + timedelta(seconds=5)) == ["early", "late"]
    assert owned.expired(t0 + timedelta(seconds=5)) == []
    assert owned.expired(t0 + timedelta(seconds=60)) == ["moved"]


def test_a_state_changed_without_a_new_event_is_checkpointed_at_the_same_offset() -> None:
    owned: OwnedPartition[State, State] = OwnedPartition(0, {"CP-1": State(1)}, State(0), 10)
    assert not owned.due(owned.last_checkpoint + 5, 1.0)
    owned.apply("CP-1", _decision(State(2), State(0)))  # an expiry: no offset handled
    assert owned.due(owned.last_checkpoint + 5, 1.0)
    checkpoint = owned.close()
    assert checkpoint is not None
    assert (checkpoint.offset, checkpoint.records) == (10, [("CP-1", b'{"value":2}')])
    assert owned.close() is None
