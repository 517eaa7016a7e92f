"""One scheduler for a whole simulated fleet: a heap of due times under a single loop timer.

A task or a loop timer per station costs objects (and garbage-collector time)
for every idle station; 20,000 stations heartbeating every minute need about
330 wake-ups a second, which one heap serves for a few microseconds each. The
heap holds ``(due, sequence, callback, argument)``; entries are never removed
early: a callback whose reason went away (the connection it was for has
closed) finds that out and returns. The sequence number keeps entries with the
same due time in the order they were added and never compares callbacks.

Every callback is called with its argument and the time it was *scheduled*
for, not the time it ran: open-loop latency is measured from the schedule, so
a late loop shows up in the latencies instead of hiding them (coordinated
omission). How late the scheduler ran is recorded in :attr:`Scheduler.max_lag`.

Times are ``time.monotonic()`` seconds. :meth:`Scheduler.run_due` is pure (no
loop), so the tests drive it with their own clock; :meth:`Scheduler.attach`
binds it to an event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Callback", "Scheduler"]

Callback = Callable[[Any, float], None]  # (argument, scheduled time)


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callback, Any]] = []
        self._sequence = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = float("inf")
        self._firing = False  # while the timer's callback runs, it re-arms once at the end
        self.max_lag = 0.0  # the latest the scheduler ran an entry, seconds
        self.ran = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, due: float, callback: Callback, argument: Any = None) -> None:
        """Call ``callback(argument, due)`` at ``due`` (monotonic seconds)."""
        heapq.heappush(self._heap, (due, next(self._sequence), callback, argument))
        if due < self._timer_due and self._loop is not None and not self._firing:
            self._arm(due)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float) -> int:
        """Run every entry due at or before ``now``; how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            due, _, callback, argument = heapq.heappop(heap)
            lag = now - due
            if lag > self.max_lag:
                self.max_lag = lag
            callback(argument, due)
            ran += 1
        self.ran += ran
        return ran

    # ------------------------------------------------------------------ event loop

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the due entries on ``loop`` from now on."""
        self._loop = loop
        due = self.next_due()
        if due is not None:
            self._arm(due)

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_due = float("inf")
        self._loop = None

    def _arm(self, due: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        # loop.time() may differ from our clock (uvloop counts milliseconds): convert
        loop = self._loop
        self._timer = loop.call_at(loop.time() + max(0.0, due - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = float("inf")
        self._firing = True
        try:
            self.run_due(self.clock())
        finally:
            self._firing = False
        due = self.next_due()
        if due is not None and self._loop is not None:
            self._arm(due)
