"""How ``csms worker NAME`` runs a worker process: the status port, start-up, stop and exit status.

A worker package declares a :class:`WorkerDefinition` as an entry point of the
``csms.workers`` group; ``csms worker NAME`` runs it and ``csms up`` runs them
all. The process:

1. serves ``/healthz``, ``/readyz`` and ``/metrics`` at once (liveness never
   depends on Kafka);
2. starts the worker, retrying with back-off while Kafka cannot be reached;
   it is ready once its tables are read to their end and it joined its group;
3. runs until SIGTERM/SIGINT, then checkpoints its partitions, leaves the group
   (unless a static member) and exits 0; a fatal error (Kafka not storing a
   partition's writes, or not serving its changelog, for
   ``CSMS_WORKER_KAFKA_OUTAGE_LIMIT``; a changelog it cannot decode) exits 1
   without checkpointing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from contracts.service.runtime import ServiceRuntime, ServiceSettings, Stopping, start_retrying
from workers.runtime.changelog import UnusableTopics
from workers.runtime.worker import Worker

__all__ = ["WorkerDefinition", "serve"]

log = logging.getLogger("workers.runtime")


@dataclasses.dataclass(frozen=True)
class WorkerDefinition:
    """A worker as ``csms worker`` sees it: the value of a ``csms.workers`` entry point.

    ``settings`` is a settings class (it embeds
    :class:`~workers.runtime.settings.WorkerSettings` as ``worker``); ``serve``
    runs the worker with such settings until stopped and returns the exit status.
    """

    name: str
    help: str
    settings: type[Any]
    serve: Callable[[Any], Coroutine[Any, Any, int]]


async def serve(
    worker: Worker[Any, Any],
    settings: ServiceSettings,
    registry: CollectorRegistry,
    *,
    stopping: Stopping | None = None,
) -> int:
    """Run ``worker`` until SIGTERM/SIGINT (or ``stopping``), then stop it; the exit status."""
    async with ServiceRuntime(
        settings, registry=registry, readiness=worker.readiness, stopping=stopping
    ) as runtime:
        try:
            if not await start_retrying(
                worker.start,
                worker.close,
                runtime.stopping,
                retry_on=(KafkaError, OSError, TimeoutError),
                logger=log,
                event="worker.kafka_unavailable",
            ):
                return 0
        except UnusableTopics as exc:
            log.error("worker.topics_unusable", extra={"error": str(exc)})
            await worker.close()
            return 1
        runtime.gc.freeze(reason="started")
        print(
            f"csms worker {worker.name}: group {worker.group} on ocpp.events.v1; "
            f"status on port {runtime.status.port}",
            flush=True,
        )
        running = asyncio.create_task(worker.run(), name=f"worker {worker.name}")
        stop = asyncio.create_task(runtime.stopping.wait())
        await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
        worker.request_stop()
        stop.cancel()
        status = 0
        try:
            await running
        except Exception:
            log.exception("worker.failed", extra={"worker": worker.name})
            status = 1
        await worker.close()
        log.info("worker.stopped", extra={"worker": worker.name, "status": status})
    return status
