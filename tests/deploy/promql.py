"""PromQL against csms's metric definitions: which series exist, with which labels, and
which series and labels an expression uses.

promql-parser (a port of Prometheus's own parser) reads the expressions; the series come
from the metric classes themselves (gateway/metrics.py, contracts/service/metrics.py and
every ``workers.*.metrics`` module), named as prometheus-client exports them (``_total``
for counters, ``_bucket``/``_sum``/``_count`` for histograms). The alerts test and the
dashboards test check their queries with it, so renaming a metric or a label breaks a
test rather than an alert or a panel.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

try:
    import promql_parser
except ImportError as exc:  # fail loudly: the queries would go unchecked
    raise ImportError(
        "promql-parser is not installed: it is one of csms's dev dependencies "
        "(pyproject.toml [dev]); run `make unit` to reinstall .venv"
    ) from exc
from prometheus_client import CollectorRegistry

from contracts.service.metrics import ProcessMetrics
from gateway.metrics import GatewayMetrics

__all__ = [
    "EXTERNAL_METRICS",
    "TARGET_LABELS",
    "csms_metrics",
    "metrics_classes",
    "result_labels",
    "selectors",
]

TARGET_LABELS = frozenset(
    {"namespace", "service", "pod", "job", "instance", "container", "endpoint"}
)
"""Labels the Prometheus Operator attaches to every scraped series."""

EXTERNAL_METRICS = {
    # kube-state-metrics: pod readiness, which csms cannot report about itself
    "kube_pod_status_ready": {"namespace", "pod", "uid", "condition"},
    # Strimzi's Kafka Exporter / kafka_exporter: consumer-group lag, seen from the brokers
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
}
"""Metrics the alerts use that other exporters provide, with their labels."""


def metrics_classes() -> Iterator[type[Any]]:
    """Every metrics class of csms: the gateway's, the process's, and each worker's (a class
    taking a registry in a ``workers.*.metrics`` module)."""
    import workers

    yield GatewayMetrics
    yield ProcessMetrics
    for info in pkgutil.walk_packages(workers.__path__, "workers."):
        if info.name.rsplit(".", 1)[-1] != "metrics":
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and "registry" in inspect.signature(obj).parameters
            ):
                yield obj


def csms_metrics() -> dict[str, set[str]]:
    """Every series name csms exports, with its labels, from the metric definitions."""
    # auto_describe: collectors without describe() (process_*) are asked for their series
    registry = CollectorRegistry(auto_describe=True)
    for metrics_class in metrics_classes():
        metrics_class(registry)
    series: dict[str, set[str]] = {}
    # prometheus-client keeps no public map from a collector to its series' names
    for collector, names in registry._collector_to_names.items():
        # prometheus-client's metrics keep them in _labelnames, csms's loop metrics in labelnames
        labels = set(getattr(collector, "_labelnames", getattr(collector, "labelnames", ())))
        for name in names:
            if any(f"{name}{suffix}" in names for suffix in _SUFFIXES):
                continue  # a counter's or histogram's family name, which no series carries
            series[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return series


_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_info")
"""What prometheus-client appends to a family's name in its series' names."""


def known_labels(name: str, exported: dict[str, set[str]]) -> set[str] | None:
    """The labels a series has once scraped, or None when nobody exports it."""
    if name in EXTERNAL_METRICS:
        return EXTERNAL_METRICS[name]
    if name in exported:
        return exported[name] | TARGET_LABELS
    return None


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, {label: matcher text}) of every vector selector in a PromQL expression."""
    found: list[tuple[str, dict[str, str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name: str(m) for m in node.matchers.matchers}
            found.append((node.name or labels.pop("__name__", ""), labels))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def result_labels(expr: str, exported: dict[str, set[str]]) -> set[str]:
    """The labels the series of an expression's result can carry.

    Raises AssertionError when an aggregation groups by a label its input cannot have
    (``sum by (reason) (x)`` where x has no ``reason``: one series without the label).
    """
    return _labels(promql_parser.parse(expr), exported)


def _labels(node: Any, exported: dict[str, set[str]]) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        name = node.name or next(m.value for m in node.matchers.matchers if m.name == "__name__")
        return known_labels(name, exported) or set()
    if isinstance(node, promql_parser.MatrixSelector):
        return _labels(node.vector_selector, exported)
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return _labels(node.expr, exported)
    if isinstance(node, promql_parser.SubqueryExpr):
        return _labels(node.expr, exported)
    if isinstance(node, promql_parser.AggregateExpr):
        inner = _labels(node.expr, exported)
        if str(node.op) in ("topk", "bottomk"):
            return inner
        modifier = node.modifier
        if modifier is None:
            return set()
        grouped = set(modifier.labels)
        if modifier.type == promql_parser.AggModifierType.Without:
            return inner - grouped
        assert grouped <= inner, (
            f"{node.op!s} by ({', '.join(modifier.labels)}): "
            f"the input has no {sorted(grouped - inner)}"
        )
        return grouped
    if isinstance(node, promql_parser.Call):
        args = [_labels(a, exported) for a in node.args if not _is_literal(a)]
        labels = set().union(*args)
        return labels - {"le"} if node.func.name == "histogram_quantile" else labels
    if isinstance(node, promql_parser.BinaryExpr):
        left, right = _labels(node.lhs, exported), _labels(node.rhs, exported)
        if _is_literal(node.lhs):
            return right
        modifier = node.modifier
        if modifier is not None and modifier.matching is not None:
            matching = set(modifier.matching.labels)
            if modifier.matching.type == promql_parser.LabelModifierType.Include:
                assert matching <= left & right, f"on ({', '.join(matching)}): a side lacks one"
        return left
    return set()  # number and string literals


def _is_literal(node: Any) -> bool:
    return isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral)
