"""Taming CPython's cyclic garbage collector for a process that holds 20,000 connections.

A full collection visits every tracked container: at about 75 per websocket
connection, 20,000 connections are 1.5 million objects and a full collection
stops the event loop for 0.7-1.0 s (ENVIRONMENT.md), long enough for chargers'
calls to time out and for the loop-lag alert to fire. Connections live for
hours, so the collector re-scans the same objects again and again for nothing.

:class:`GcPolicy` uses three levers:

1. **Freeze.** ``gc.freeze()`` moves every tracked object into the permanent
   generation, which collections never scan. The policy freezes at start-up
   (after a full collection, so no garbage is frozen) and again whenever
   ``freeze_growth`` tracked objects have accumulated outside the permanent
   generation, checked every ``check_interval`` seconds
   (``len(gc.get_objects())``, whose cost is proportional to those unfrozen
   objects only). A full collection then scans at most about
   ``freeze_growth`` objects: a pause bounded by the setting instead of by the
   number of stations. The full collection before each freeze is itself such
   a bounded pause.
2. **Thresholds.** A larger gen-0 threshold lets the short-lived objects of a
   message die by reference counting before a young collection promotes them;
   a larger gen-2 threshold makes the full collections that still happen
   rarer.
3. **Observation.** Every collection is timed through ``gc.callbacks`` into
   ``csms_gc_collection_seconds{generation}``, so the effect is measured in
   production, not assumed.

The trade-off, honestly: **a frozen object that later becomes part of
unreachable reference cycles is never collected.** A connection whose objects
were frozen and that closes is freed by reference counting only if nothing in
it refers back to itself. Services must therefore break reference cycles when
a connection closes (drop the back-references between connection, protocol
and handler objects, clear the tasks and futures they keep, do not keep
exceptions whose tracebacks hold the connection's frames).
``csms_gc_frozen_objects`` should follow the number of connections up and
down; if it only ever grows, something leaks cycles. ``CSMS_GC_FREEZE=false``
turns freezing off (thresholds and observation remain) to tell the two apart.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Mapping
from typing import Any

from contracts.service.metrics import ProcessMetrics

__all__ = ["GcPolicy"]

logger = logging.getLogger(__name__)


class GcPolicy:
    """Thresholds, freezing and timing of the garbage collector for one process.

    ``install()`` applies it (and freezes once if freezing is on); ``maintain()``
    is the periodic task that freezes after growth; ``uninstall()`` restores the
    previous thresholds and stops timing (frozen objects stay frozen).
    """

    def __init__(
        self,
        metrics: ProcessMetrics,
        *,
        thresholds: tuple[int, int, int] = (10_000, 10, 100),
        freeze: bool = True,
        freeze_growth: int = 50_000,
        check_interval: float = 5.0,
    ) -> None:
        if min(thresholds) < 1:
            raise ValueError(f"GC thresholds must be at least 1, got {thresholds}")
        if freeze_growth <= 0 or check_interval <= 0:
            raise ValueError("freeze_growth and check_interval must be positive")
        self.metrics = metrics
        self.thresholds = thresholds
        self.freeze_enabled = freeze
        self.freeze_growth = freeze_growth
        self.check_interval = check_interval
        self._previous_thresholds: tuple[int, int, int] | None = None
        self._collection_started = 0.0

    # ------------------------------------------------------------------ lifecycle

    def install(self) -> None:
        """Apply the thresholds, start timing collections, and freeze what exists now."""
        if self._previous_thresholds is not None:
            raise RuntimeError("GcPolicy is already installed")
        self._previous_thresholds = gc.get_threshold()
        gc.set_threshold(*self.thresholds)
        gc.callbacks.append(self._on_collection)
        if self.freeze_enabled:
            self.freeze()

    def uninstall(self) -> None:
        """Restore the thresholds found by ``install()`` and stop timing collections."""
        if self._previous_thresholds is None:
            return
        gc.set_threshold(*self._previous_thresholds)
        self._previous_thresholds = None
        gc.callbacks.remove(self._on_collection)

    async def maintain(self) -> None:
        """Run :meth:`check` every ``check_interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.check_interval)
            self.check()

    # ------------------------------------------------------------------ freezing

    @staticmethod
    def unfrozen_objects() -> int:
        """How many tracked objects a full collection would scan now (all but the frozen)."""
        return len(gc.get_objects())

    def check(self) -> bool:
        """Freeze if ``freeze_growth`` objects are unfrozen; True if it froze."""
        if not self.freeze_enabled:
            return False
        unfrozen = self.unfrozen_objects()
        if unfrozen < self.freeze_growth:
            return False
        self.freeze(reason="growth", unfrozen_objects=unfrozen)
        return True

    def freeze(self, *, reason: str = "start-up", unfrozen_objects: int | None = None) -> int:
        """Collect fully, then move every surviving object to the permanent generation.

        The collection first frees today's garbage, which would otherwise be
        frozen forever. Because earlier freezes left the generations small, it
        scans only what arrived since the last freeze. Returns the number of
        frozen objects.
        """
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
        self.metrics.gc_freezes_total.inc()
        self.metrics.gc_frozen_objects.set(frozen)
        logger.info(
            "gc.frozen",
            extra={
                "reason": reason,
                "unfrozen_objects": unfrozen_objects,
                "frozen_objects": frozen,
                "duration_s": round(time.perf_counter() - started, 6),
            },
        )
        return frozen

    # ------------------------------------------------------------------ timing

    def _on_collection(self, phase: str, info: Mapping[str, Any]) -> None:
        # Runs inside the collector: no allocation-heavy work, no logging. The
        # metric children were resolved in advance; their locks guard a float
        # addition, which allocates no tracked object, so no collection can
        # start while this thread holds one of them.
        if phase == "start":
            self._collection_started = time.perf_counter()
            return
        generation = info["generation"]
        self.metrics.gc_collection_seconds[generation].observe(
            time.perf_counter() - self._collection_started
        )
        self.metrics.gc_collections_total[generation].inc()
        self.metrics.gc_objects_collected_total[generation].inc(info["collected"])
