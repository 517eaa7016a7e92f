"""The loop-lag monitor: window accounting without a loop, and a real stall on the loop."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from contracts.service.loop_lag import LoopLagMonitor
from contracts.service.metrics import ProcessMetrics


def make() -> tuple[LoopLagMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    return LoopLagMonitor(ProcessMetrics(registry), interval=0.25, window=10.0), registry


def gauge(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("csms_event_loop_lag_max_seconds")


def test_every_sample_goes_into_the_histogram() -> None:
    monitor, registry = make()
    for now, lag in enumerate([0.0, 0.003, 0.2]):
        monitor.record(lag, float(now))
    assert registry.get_sample_value("csms_event_loop_lag_seconds_count") == 3
    assert registry.get_sample_value("csms_event_loop_lag_seconds_sum") == pytest.approx(0.203)
    bucket = {"le": "0.005"}
    assert registry.get_sample_value("csms_event_loop_lag_seconds_bucket", bucket) == 2


def test_the_max_gauge_covers_this_window_and_the_previous_one() -> None:
    monitor, registry = make()
    monitor.record(0.01, 0.0)  # the first window runs until 10.0
    monitor.record(0.5, 1.0)
    monitor.record(0.02, 9.9)
    assert gauge(registry) == 0.5
    monitor.record(0.02, 10.5)  # a new window; the stall of the last one still shows
    assert gauge(registry) == 0.5
    monitor.record(0.03, 21.0)  # another: the 0.5 s stall is two windows old
    assert gauge(registry) == 0.03
    monitor.record(0.0, 100.0)  # no sample for several windows: nothing carried over
    assert gauge(registry) == 0.0
    assert monitor.max_lag == 0.0


def test_bad_arguments_are_refused() -> None:
    metrics = ProcessMetrics(CollectorRegistry())
    with pytest.raises(ValueError, match="positive"):
        LoopLagMonitor(metrics, interval=0)
    with pytest.raises(ValueError, match="positive"):
        LoopLagMonitor(metrics, window=-1)


async def test_a_blocked_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(ProcessMetrics(registry), interval=0.01, window=10.0)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # the stall: nothing else runs meanwhile  # noqa: ASYNC251
        await asyncio.sleep(0.05)  # the monitor samples again: the late one and a few more
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The timer was due 10 ms after it was set, and the loop was blocked for 200 ms.
    assert monitor.max_lag >= 0.15
    assert gauge(registry) == monitor.max_lag
    up_to_100ms = registry.get_sample_value("csms_event_loop_lag_seconds_bucket", {"le": "0.1"})
    count = registry.get_sample_value("csms_event_loop_lag_seconds_count")
    assert up_to_100ms is not None
    assert count is not None
    assert count - up_to_100ms >= 1  # the stall landed above the 100 ms bucket
