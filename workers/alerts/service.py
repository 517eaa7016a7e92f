"""``csms worker alerts``: the alerts worker's process, wired from its parts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from contracts.headers import worker_source
from contracts.service.runtime import Stopping
from contracts.topics import ALERTS
from workers.alerts.logic import AlertsLogic
from workers.alerts.metrics import AlertsMetrics
from workers.alerts.rules import SEVERITY
from workers.alerts.settings import AlertsSettings
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.service import WorkerDefinition
from workers.runtime.service import serve as serve_worker
from workers.runtime.worker import Worker

__all__ = ["NAME", "build", "definition", "serve"]

NAME = "alerts"


def build(settings: AlertsSettings, registry: CollectorRegistry) -> Worker[Any, Any]:
    """The alerts worker: its rules and lifecycle in the shared runtime."""
    common = settings.worker
    metrics = AlertsMetrics(registry)
    logic = AlertsLogic(
        source=worker_source(NAME, common.service.instance_name()),
        thresholds=settings.thresholds(),
        lifecycle=settings.lifecycle(),
        on_transition=lambda rule, to: metrics.transitions.labels(rule, to).inc(),
    )
    worker: Worker[Any, Any] = Worker(
        NAME, common, logic, WorkerMetrics(registry), outputs=[ALERTS.name]
    )
    metrics.open.rules = dict(SEVERITY)
    metrics.open.source = lambda: (
        (alert.rule, SEVERITY[alert.rule], alert.firing, alert.flapping)
        for owned in list(worker.owned.values())
        for state in list(owned.stations.values())
        for alert in state.alerts
    )
    return worker


async def serve(settings: AlertsSettings, *, stopping: Stopping | None = None) -> int:
    """Run the alerts worker until stopped; the process's exit status."""
    registry = CollectorRegistry()
    worker = build(settings, registry)
    return await serve_worker(worker, settings.worker.service, registry, stopping=stopping)


definition = WorkerDefinition(
    name=NAME,
    help="alerts about stations: raised, held and cleared (csms.alerts.v1)",
    settings=AlertsSettings,
    serve=serve,
)
