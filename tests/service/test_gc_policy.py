"""The GC policy: frozen objects leave the scanned generations; collections are measured.

These tests change the whole test process's collector, so each puts it back
(thresholds, callbacks, and ``gc.unfreeze()``) whatever happens.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from contracts.service.gc_policy import GcPolicy
from contracts.service.metrics import ProcessMetrics
from tests.benchmarks.gc_pause import measure


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    callbacks = list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


class Station:
    """A connection-like object graph: 76 tracked containers, full of back-references."""

    def __init__(self, number: int) -> None:
        self.id = f"CP-{number}"
        self.parts = [{"owner": self, "buffer": [], "index": i} for i in range(34)]
        self.pending: dict[str, Any] = {"station": self, "calls": [[self]]}
        self.on_close = lambda: self.parts  # a closure over self: function, cell, tuple


def build(count: int) -> list[Station]:
    return [Station(n) for n in range(count)]


def make_policy(**kwargs: Any) -> tuple[GcPolicy, CollectorRegistry]:
    registry = CollectorRegistry()
    return GcPolicy(ProcessMetrics(registry), **kwargs), registry


def scanned_ids() -> set[int]:
    """The ids of every object a full collection examines (the three generations)."""
    return {id(obj) for obj in gc.get_objects()}


def test_the_policy_moves_connection_objects_out_of_the_scanned_generations() -> None:
    gc.collect()
    tracked_before = len(gc.get_objects())
    stations = build(2_700)
    gc.collect()
    scanned_before = len(gc.get_objects())
    tracked_by_stations = scanned_before - tracked_before - 1  # less the list holding them
    assert tracked_by_stations >= 200_000
    assert 74 <= tracked_by_stations / len(stations) <= 78  # the graph the test claims
    ours = {
        id(obj)
        for s in stations
        for obj in (s, s.parts, s.pending, s.pending["calls"], s.on_close, *s.parts)
    }
    assert ours <= scanned_ids()  # before: every full collection visits them

    policy, registry = make_policy()
    policy.install()
    try:
        scanned_after = len(gc.get_objects())
        frozen = gc.get_freeze_count()
        assert not ours & scanned_ids()  # after: none of them
    finally:
        policy.uninstall()

    assert scanned_before - scanned_after >= tracked_by_stations
    assert frozen >= tracked_by_stations
    assert registry.get_sample_value("csms_gc_freezes_total") == 1
    # The gauge reads gc.get_freeze_count() at scrape time (frozen objects that
    # reference counting frees leave the permanent generation meanwhile).
    assert registry.get_sample_value("csms_gc_frozen_objects") == pytest.approx(frozen, abs=100)


def test_growth_of_the_old_generation_triggers_a_freeze() -> None:
    policy, registry = make_policy(freeze_growth=20_000)
    policy.install()
    try:
        assert policy.check() is False  # nothing has grown since the start-up freeze
        stations = build(400)  # 30,400 tracked objects
        assert policy.unfrozen_objects() >= 20_000
        frozen_before = gc.get_freeze_count()
        assert policy.check() is True
        assert policy.unfrozen_objects() < 20_000
        assert gc.get_freeze_count() >= frozen_before + 400 * 70
        assert registry.get_sample_value("csms_gc_freezes_total") == 2
        assert stations  # they were alive through the freeze
    finally:
        policy.uninstall()


async def test_maintain_checks_periodically() -> None:
    policy, registry = make_policy(freeze_growth=20_000, check_interval=0.01)
    policy.install()
    task = asyncio.create_task(policy.maintain())
    try:
        stations = build(400)
        gc.collect()
        async with asyncio.timeout(5):
            while registry.get_sample_value("csms_gc_freezes_total") != 2:
                await asyncio.sleep(0.01)  # polling a metric: there is no event to wait for
        assert stations
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        policy.uninstall()


def test_without_freezing_nothing_is_frozen_but_thresholds_apply() -> None:
    policy, registry = make_policy(freeze=False, thresholds=(5_000, 12, 60))
    policy.install()
    try:
        assert gc.get_threshold() == (5_000, 12, 60)
        stations = build(400)
        gc.collect()
        assert policy.check() is False
        assert gc.get_freeze_count() == 0
        assert registry.get_sample_value("csms_gc_freezes_total") == 0
        assert stations
    finally:
        policy.uninstall()


def test_every_collection_is_timed_and_counted_by_generation() -> None:
    policy, registry = make_policy(freeze=False)
    policy.install()
    try:

        def count(name: str, generation: str) -> float:
            return registry.get_sample_value(name, {"generation": generation}) or 0.0

        before = {g: count("csms_gc_collections_total", g) for g in "012"}
        for generation in (0, 1, 2, 2):
            gc.collect(generation)
        garbage = [Station(n) for n in range(10)]
        del garbage  # ten cycles only the collector can free
        gc.collect()
    finally:
        policy.uninstall()
    after = {g: count("csms_gc_collections_total", g) for g in "012"}
    assert after["0"] - before["0"] >= 1
    assert after["1"] - before["1"] >= 1
    assert after["2"] - before["2"] >= 3
    for g in "012":
        assert count("csms_gc_collection_seconds_count", g) == after[g]
        assert count("csms_gc_collection_seconds_sum", g) > 0
    assert count("csms_gc_objects_collected_total", "2") >= 10 * 75


def test_uninstall_restores_the_thresholds_and_stops_timing() -> None:
    thresholds = gc.get_threshold()
    policy, registry = make_policy(freeze=False)
    policy.install()
    with pytest.raises(RuntimeError, match="already installed"):
        policy.install()
    assert gc.get_threshold() == (10_000, 10, 100)
    policy.uninstall()
    policy.uninstall()  # a second time does nothing
    assert gc.get_threshold() == thresholds
    counted = registry.get_sample_value("csms_gc_collections_total", {"generation": "2"})
    gc.collect()
    assert registry.get_sample_value("csms_gc_collections_total", {"generation": "2"}) == counted


@pytest.mark.parametrize(
    "kwargs",
    [{"thresholds": (0, 10, 10)}, {"thresholds": (700, 0, 10)}, {"freeze_growth": 0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        make_policy(**kwargs)


def test_the_trade_off_frozen_cycles_are_never_collected() -> None:
    """What the module docstring warns about: services must break cycles on close."""
    policy, _ = make_policy()
    station = Station(1)
    alive = weakref.ref(station)
    policy.freeze()
    del station  # it is now cyclic garbage, but frozen
    gc.collect()
    assert alive() is not None  # leaked while frozen
    gc.unfreeze()
    gc.collect()
    assert alive() is None

    station = Station(2)
    alive = weakref.ref(station)
    policy.freeze()
    station.parts.clear()  # what a service does when a connection closes
    station.pending.clear()
    del station.on_close
    del station
    assert alive() is None  # freed by reference counting, frozen or not


def test_the_benchmark_measures_both_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_GC_FREEZE_GROWTH", "10000")  # the benchmark reads CSMS_GC_*
    baseline = measure("baseline", connections=1_000, messages=1_000)
    gc.unfreeze()
    tuned = measure("policy", connections=1_000, messages=1_000)
    assert baseline["frozen_objects"] == 0
    assert tuned["frozen_objects"] > 1_000 * 70
    assert tuned["scanned_objects"] < baseline["scanned_objects"] - 1_000 * 70
    assert 70 <= baseline["tracked_per_connection"] <= 80
