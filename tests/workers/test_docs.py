"""docs/workers.md names every metric of the workers (its settings table: tests/test_docs.py)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from workers.runtime.metrics import WorkerMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "workers.md"


def test_every_worker_metric_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    names = {metric.name for metric in registry.collect()}
    assert names
    missing = [n for n in sorted(names) if n not in text and f"{n}_total" not in text]
    assert not missing
