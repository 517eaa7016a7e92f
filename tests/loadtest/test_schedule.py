"""The fleet's one scheduler: order, scheduled times, lag, and its loop timer."""

from __future__ import annotations

import asyncio
import time

from loadtest.schedule import Scheduler


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_runs_due_entries_in_time_order_with_their_scheduled_time() -> None:
    scheduler = Scheduler(FakeClock())
    ran: list[tuple[str, float]] = []
    record = lambda name, scheduled: ran.append((name, scheduled))  # noqa: E731
    scheduler.at(103.0, record, "c")
    scheduler.at(101.0, record, "a")
    scheduler.at(102.0, record, "b")
    assert scheduler.run_due(102.5) == 2
    assert ran == [("a", 101.0), ("b", 102.0)]
    assert scheduler.next_due() == 103.0
    assert len(scheduler) == 1


def test_entries_due_at_the_same_time_run_in_the_order_they_were_added() -> None:
    scheduler = Scheduler(FakeClock())
    ran: list[int] = []
    for i in range(5):
        scheduler.at(1.0, lambda n, _: ran.append(n), i)
    scheduler.run_due(1.0)
    assert ran == [0, 1, 2, 3, 4]


def test_an_entry_added_by_a_callback_and_already_due_runs_in_the_same_pass() -> None:
    scheduler = Scheduler(FakeClock())
    ran: list[str] = []

    def first(_: object, scheduled: float) -> None:
        ran.append("first")
        scheduler.at(scheduled + 1.0, lambda *_: ran.append("second"))

    scheduler.at(1.0, first)
    scheduler.run_due(5.0)
    assert ran == ["first", "second"]


def test_lag_is_how_late_an_entry_ran_after_its_scheduled_time() -> None:
    scheduler = Scheduler(FakeClock())
    scheduler.at(10.0, lambda *_: None)
    scheduler.at(11.0, lambda *_: None)
    scheduler.run_due(10.25)
    assert scheduler.max_lag == 0.25
    scheduler.run_due(11.5)
    assert scheduler.max_lag == 0.5
    assert scheduler.ran == 2


def test_nothing_runs_before_its_time() -> None:
    scheduler = Scheduler(FakeClock())
    scheduler.at(10.0, lambda *_: (_ for _ in ()).throw(AssertionError("ran early")))
    assert scheduler.run_due(9.999) == 0


async def test_attached_to_a_loop_it_wakes_for_the_earliest_entry() -> None:
    scheduler = Scheduler()
    fired: list[tuple[str, float, float]] = []
    done = asyncio.get_running_loop().create_future()

    def record(name: str, scheduled: float) -> None:
        fired.append((name, scheduled, time.monotonic()))
        if len(fired) == 3:
            done.set_result(None)

    now = time.monotonic()
    scheduler.at(now + 0.15, record, "late")
    scheduler.attach(asyncio.get_running_loop())
    scheduler.at(now + 0.05, record, "early")  # earlier than the armed timer: re-arms it
    scheduler.at(now + 0.10, record, "middle")
    await asyncio.wait_for(done, 2)
    scheduler.detach()
    assert [name for name, _, _ in fired] == ["early", "middle", "late"]
    for _, scheduled, ran in fired:
        assert ran >= scheduled
        assert ran - scheduled < 0.1
