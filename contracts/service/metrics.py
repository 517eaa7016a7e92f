"""Process-level metrics that every csms process exports: event-loop lag, GC, the OS view.

Service metrics (stations, frames, Kafka latencies) live in each service's own
metrics module; this one holds only what describes the Python process itself.
Everything is registered on the registry passed in, never on prometheus-client's
global one.

======================================  =========  ==========================================
name                                    type       meaning
======================================  =========  ==========================================
``csms_event_loop_lag_seconds``         histogram  how late the loop ran a timer (sampled)
``csms_event_loop_lag_max_seconds``     gauge      the largest lag of the last window
``csms_gc_collection_seconds``          histogram  each collection's pause, by ``generation``
``csms_gc_collections_total``           counter    collections, by ``generation``
``csms_gc_objects_collected_total``     counter    objects the collector freed, by ``generation``
``csms_gc_freezes_total``               counter    ``gc.freeze()`` calls by the GC policy
``csms_gc_frozen_objects``              gauge      objects in the permanent generation now
``process_*``                           various    RSS, CPU seconds, open and max fds, start time
``python_info``                         gauge      the interpreter's version and implementation
======================================  =========  ==========================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["GENERATIONS", "ProcessMetrics"]

GENERATIONS = ("0", "1", "2")
"""The ``generation`` label values: CPython's three collected generations."""

# From a 1 ms timer-resolution floor (uvloop rounds timers to milliseconds) to a
# stall that a charger's websocket ping would notice.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Young collections take tens of microseconds; a full one at 20,000 unfrozen
# connections takes most of a second.
GC_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class ProcessMetrics:
    """The process-level metrics, registered on ``registry``.

    The per-generation GC children are resolved here, once, so that the GC
    callback does no label lookup while the collector runs.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.event_loop_lag_seconds = Histogram(
            "csms_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer, sampled every interval.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.event_loop_lag_max_seconds = Gauge(
            "csms_event_loop_lag_max_seconds",
            "Largest event-loop lag seen in the last window (see CSMS_LOOP_LAG_WINDOW).",
            registry=registry,
        )
        gc_seconds = Histogram(
            "csms_gc_collection_seconds",
            "Duration of each garbage collection (the event loop is stopped meanwhile).",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=registry,
        )
        gc_collections = Counter(
            "csms_gc_collections",
            "Garbage collections, by the oldest generation collected.",
            ["generation"],
            registry=registry,
        )
        gc_collected = Counter(
            "csms_gc_objects_collected",
            "Objects freed by the garbage collector, by generation.",
            ["generation"],
            registry=registry,
        )
        self.gc_collection_seconds = tuple(gc_seconds.labels(g) for g in GENERATIONS)
        self.gc_collections_total = tuple(gc_collections.labels(g) for g in GENERATIONS)
        self.gc_objects_collected_total = tuple(gc_collected.labels(g) for g in GENERATIONS)
        self.gc_freezes_total = Counter(
            "csms_gc_freezes",
            "gc.freeze() calls by the GC policy (at start-up and after growth).",
            registry=registry,
        )
        # set by the GC policy when it freezes: gc.get_freeze_count() walks every frozen
        # object (hundreds of thousands in a busy gateway), too slow for each scrape
        self.gc_frozen_objects = Gauge(
            "csms_gc_frozen_objects",
            "Objects in the permanent generation, which the collector never scans.",
            registry=registry,
        )
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
