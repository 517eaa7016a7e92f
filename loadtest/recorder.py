"""What one load-generator process counts while it runs, turned into a :class:`Report` at the end.

Every figure is recorded once, where it happens: a call's time came
(:meth:`Recorder.called`), its answer arrived (:meth:`answered`) or it failed
(:meth:`failed`); a connection attempt began, succeeded or failed. Latencies go
into one HDR histogram per action plus a coarser one per timeline interval.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Final

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from loadtest.report import (
    HIGHEST_US,
    TIMELINE_SIGNIFICANT_FIGURES,
    ActionReport,
    Bucket,
    ConnectReport,
    GeneratorReport,
    Report,
    StormReport,
    histogram,
)

__all__ = ["Progress", "Recorder"]

_TOP: Final = HIGHEST_US


class _Action:
    __slots__ = ("answered", "calls", "errors", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.answered = 0
        self.errors = 0
        self.latency = histogram()


class _Interval:
    __slots__ = ("answered", "connected", "errors", "latency")

    def __init__(self) -> None:
        self.answered = 0
        self.errors = 0
        self.connected = 0
        self.latency = histogram(TIMELINE_SIGNIFICANT_FIGURES)


class Progress:
    """The figures of the live progress line, since the previous one."""

    __slots__ = ("answered", "connected", "errors", "p99_ms", "stations")

    def __init__(
        self, answered: int, errors: int, connected: int, stations: int, p99_ms: float
    ) -> None:
        self.answered = answered
        self.errors = errors
        self.connected = connected
        self.stations = stations
        self.p99_ms = p99_ms


class Recorder:
    def __init__(
        self,
        *,
        timeline_interval: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeline_interval = timeline_interval
        self.wall_clock = wall_clock
        self.clock = clock
        # monotonic -> wall: latencies use the monotonic clock, the timeline wall time
        self._wall_offset = wall_clock() - clock()
        self.actions: dict[str, _Action] = {}
        self.errors: dict[str, int] = {}
        self.commands: dict[str, int] = {}
        self.connect_attempts = 0
        self.connected_total = 0
        self.connect_latency = histogram()
        self.connected = 0  # connected now
        self.timeline: dict[int, _Interval] = {}
        self.storms: list[StormReport] = []
        self._storm_started = 0.0
        self._storm_waiting = False
        self._progress = histogram(TIMELINE_SIGNIFICANT_FIGURES)
        self._progress_answered = 0
        self._progress_errors = 0

    # ------------------------------------------------------------------ recording

    def _interval(self, now: float) -> _Interval:
        key = int((now + self._wall_offset) // self.timeline_interval)
        interval = self.timeline.get(key)
        if interval is None:
            interval = self.timeline[key] = _Interval()
        return interval

    def _action(self, action: str) -> _Action:
        stats = self.actions.get(action)
        if stats is None:
            stats = self.actions[action] = _Action()
        return stats

    def called(self, action: str) -> None:
        """A call's scheduled time came (whether or not it could be sent)."""
        self._action(action).calls += 1

    def answered(self, action: str, scheduled: float, now: float) -> None:
        latency = min(max(1, int((now - scheduled) * 1_000_000)), _TOP)
        stats = self._action(action)
        stats.answered += 1
        stats.latency.record_value(latency)
        interval = self._interval(now)
        interval.answered += 1
        interval.latency.record_value(latency)
        self._progress.record_value(latency)
        self._progress_answered += 1

    def failed(self, action: str, kind: str, now: float) -> None:
        self._action(action).errors += 1
        self.error(kind, now)

    def error(self, kind: str, now: float) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self._interval(now).errors += 1
        self._progress_errors += 1

    def command(self, action: str) -> None:
        self.commands[action] = self.commands.get(action, 0) + 1

    def connect_started(self) -> None:
        self.connect_attempts += 1

    def connect_succeeded(self, scheduled: float, now: float) -> None:
        self.connected_total += 1
        self.connected += 1
        latency = min(max(1, int((now - scheduled) * 1_000_000)), _TOP)
        self.connect_latency.record_value(latency)
        if self._storm_waiting and self.connected >= self.storms[-1].stations:
            self._storm_waiting = False
            self.storms[-1].back_after = round(now - self._storm_started, 3)

    def disconnected(self) -> None:
        self.connected -= 1

    def storm(self, now: float) -> None:
        """Every station is about to drop its connection."""
        self.storms.append(
            StormReport(at=now + self._wall_offset, stations=self.connected, back_after=None)
        )
        self._storm_started = now
        self._storm_waiting = self.connected > 0

    # ------------------------------------------------------------------ reading

    def progress(self, stations: int) -> Progress:
        """The figures since the previous call, for the live line."""
        h = self._progress
        figures = Progress(
            answered=self._progress_answered,
            errors=self._progress_errors,
            connected=self.connected,
            stations=stations,
            p99_ms=h.get_value_at_percentile(99) / 1000.0 if h.get_total_count() else 0.0,
        )
        h.reset()
        self._progress_answered = self._progress_errors = 0
        return figures

    def mark_connected(self, now: float) -> None:
        """Note the number of connected stations in the current interval of the timeline."""
        self._interval(now).connected = self.connected

    def report(
        self,
        *,
        scenario: str,
        target: str,
        parts: list[str],
        stations: int,
        started_at: float,
        ended_at: float,
        max_schedule_lag: float,
    ) -> Report:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return Report(
            scenario=scenario,
            target=target,
            parts=parts,
            stations=stations,
            started_at=started_at,
            ended_at=ended_at,
            actions={
                name: ActionReport(
                    calls=a.calls,
                    answered=a.answered,
                    errors=a.errors,
                    latency=_encoded(a.latency),
                )
                for name, a in sorted(self.actions.items())
            },
            connects=ConnectReport(
                attempts=self.connect_attempts,
                connected=self.connected_total,
                latency=_encoded(self.connect_latency),
            ),
            errors=dict(sorted(self.errors.items())),
            commands=dict(sorted(self.commands.items())),
            timeline_interval=self.timeline_interval,
            timeline=[
                Bucket(
                    at=key * self.timeline_interval,
                    answered=i.answered,
                    errors=i.errors,
                    connected=i.connected,
                    latency=_encoded(i.latency),
                )
                for key, i in sorted(self.timeline.items())
            ],
            storms=list(self.storms),
            generator=GeneratorReport(
                processes=1,
                cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
                peak_rss_kib=usage.ru_maxrss,
                max_schedule_lag=round(max_schedule_lag, 4),
            ),
        )


def _encoded(h: HdrHistogram) -> str:
    return h.encode().decode() if h.get_total_count() else ""
