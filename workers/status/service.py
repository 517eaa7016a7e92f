"""``csms worker status``: the status worker's process, wired from its parts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from contracts.headers import worker_source
from contracts.service.runtime import Stopping
from contracts.topics import STATION_STATUS
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.service import WorkerDefinition
from workers.runtime.service import serve as serve_worker
from workers.runtime.worker import Worker
from workers.status.logic import StatusLogic
from workers.status.settings import StatusSettings

__all__ = ["NAME", "build", "definition", "serve"]

NAME = "status"


def build(settings: StatusSettings, registry: CollectorRegistry) -> Worker[Any, Any]:
    """The status worker: its logic in the shared runtime."""
    common = settings.worker
    logic = StatusLogic(
        source=worker_source(NAME, common.service.instance_name()),
        heard_step=settings.heard_step,
        meter_step=settings.meter_step,
    )
    return Worker(NAME, common, logic, WorkerMetrics(registry), outputs=[STATION_STATUS.name])


async def serve(settings: StatusSettings, *, stopping: Stopping | None = None) -> int:
    """Run the status worker until stopped; the process's exit status."""
    registry = CollectorRegistry()
    return await serve_worker(
        build(settings, registry), settings.worker.service, registry, stopping=stopping
    )


definition = WorkerDefinition(
    name=NAME,
    help="one live status record per station (csms.station-status.v1)",
    settings=StatusSettings,
    serve=serve,
)
