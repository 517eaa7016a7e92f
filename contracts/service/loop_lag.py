"""Event-loop lag: how late the loop runs a timer, the one number that says "the loop is stuck".

Everything a gateway does (reading frames, answering heartbeats, websocket
pings) waits its turn on one event loop. A task sleeps ``interval`` seconds,
again and again, and records how much later than asked it woke up: a full GC,
a CPU-heavy callback or a blocking call shows up here as lag, whatever caused
it. One timer every 0.25 s costs a few microseconds per second.

Lag is measured with ``time.monotonic()`` rather than ``loop.time()``: uvloop
caches its loop time for a whole iteration, which would hide a callback that
blocks after the timer fired. The floor is about a millisecond because uvloop
rounds timers to milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from contracts.service.metrics import ProcessMetrics

__all__ = ["LoopLagMonitor"]


class LoopLagMonitor:
    """Samples the event-loop lag into ``csms_event_loop_lag_seconds`` and its max gauge.

    The gauge ``csms_event_loop_lag_max_seconds`` holds the largest lag of the
    current and the previous window of ``window`` seconds, so a stall stays
    visible for at least one window whatever the scrape interval, and shows at
    once.
    """

    def __init__(
        self,
        metrics: ProcessMetrics,
        *,
        interval: float = 0.25,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or window <= 0:
            raise ValueError("interval and window must be positive")
        self.metrics = metrics
        self.interval = interval
        self.window = window
        self._clock = clock
        self._window_ends: float | None = None
        self._current_max = 0.0
        self._previous_max = 0.0

    @property
    def max_lag(self) -> float:
        """The value of the max gauge: the largest lag of this window and the one before."""
        return max(self._current_max, self._previous_max)

    def record(self, lag: float, now: float) -> None:
        """Account one sample taken at ``now`` (seconds on the monitor's clock)."""
        if self._window_ends is None:
            self._window_ends = now + self.window
        elif now >= self._window_ends:
            # A window with no sample at all (the loop stalled for longer than
            # a window) leaves nothing to carry over; the stall is this sample.
            adjacent = now < self._window_ends + self.window
            self._previous_max = self._current_max if adjacent else 0.0
            self._current_max = 0.0
            self._window_ends = now + self.window
        self._current_max = max(self._current_max, lag)
        self.metrics.event_loop_lag_seconds.observe(lag)
        self.metrics.event_loop_lag_max_seconds.set(self.max_lag)

    async def run(self) -> None:
        """Sample every ``interval`` seconds until cancelled."""
        while True:
            expected = self._clock() + self.interval
            await asyncio.sleep(self.interval)
            now = self._clock()
            self.record(max(0.0, now - expected), now)
