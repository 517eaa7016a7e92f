"""Lock-free loop metrics expose exactly what prometheus-client's own classes expose."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from contracts.service.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.005, 0.01, 0.1, 1.0, 10.0)
VALUES = (0.0005, 0.001, 0.003, 0.01, 0.5, 2.0, 30.0, 0.003)


def _exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "_created" not in line)


def test_counter_exposition_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = LoopCounter("csms_x_total", "things", ["kind"], registry=ours)
    reference = Counter("csms_x_total", "things", ["kind"], registry=theirs)
    for kind, amount in (("a", 1), ("b", 2), ("a", 3)):
        mine.labels(kind).inc(amount)
        reference.labels(kind).inc(amount)
    assert _exposition(ours) == _exposition(theirs)


def test_histogram_exposition_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = LoopHistogram("csms_y_seconds", "time", ["handling"], buckets=BUCKETS, registry=ours)
    reference = Histogram("csms_y_seconds", "time", ["handling"], buckets=BUCKETS, registry=theirs)
    for value in VALUES:
        mine.labels("answer").observe(value)
        reference.labels("answer").observe(value)
    plain, plain_reference = (
        LoopHistogram("csms_z_seconds", "t", registry=ours),
        Histogram("csms_z_seconds", "t", registry=theirs),
    )
    plain.observe(0.2)
    plain_reference.observe(0.2)
    assert _exposition(ours) == _exposition(theirs)


def test_wrong_label_count_and_counter_names_are_refused() -> None:
    counter = LoopCounter("csms_w_total", "w", ["a", "b"], registry=None)
    with pytest.raises(ValueError, match="has labels"):
        counter.labels("only-one")
    with pytest.raises(ValueError, match="_total"):
        LoopCounter("csms_w", "w", registry=None)
