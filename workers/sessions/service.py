"""``csms worker sessions``: the sessions worker's process, wired from its parts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from contracts.bus.follower import TopicFollower
from contracts.headers import worker_source
from contracts.service.runtime import Stopping
from contracts.topics import ID_TOKENS, SESSIONS
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.service import WorkerDefinition
from workers.runtime.service import serve as serve_worker
from workers.runtime.worker import Worker
from workers.sessions.id_tokens import IdTokenTable
from workers.sessions.logic import SessionsLogic
from workers.sessions.ocpp16 import PARTITION_SLOTS
from workers.sessions.settings import SessionsSettings

__all__ = ["NAME", "build", "definition", "serve"]

NAME = "sessions"


def build(settings: SessionsSettings, registry: CollectorRegistry) -> Worker[Any, Any]:
    """The sessions worker: its logic on the id-token table, in the shared runtime."""
    common = settings.worker
    instance = common.service.instance_name()
    id_tokens = IdTokenTable()
    logic = SessionsLogic(
        id_tokens,
        source=worker_source(NAME, instance),
        allow_unknown_id_tokens=settings.allow_unknown_id_tokens,
        offline_after=settings.offline_after,
    )
    return Worker(
        NAME,
        common,
        logic,
        WorkerMetrics(registry),
        tables=[
            TopicFollower(
                common.kafka,
                ID_TOKENS.name,
                id_tokens.apply,
                client_id=f"csms-{NAME}-{instance}-id-tokens",
            )
        ],
        outputs=[SESSIONS.name],
        max_partitions=PARTITION_SLOTS,
    )


async def serve(settings: SessionsSettings, *, stopping: Stopping | None = None) -> int:
    """Run the sessions worker until stopped; the process's exit status."""
    registry = CollectorRegistry()
    worker = build(settings, registry)
    return await serve_worker(worker, settings.worker.service, registry, stopping=stopping)


definition = WorkerDefinition(
    name=NAME,
    help="authorization, transactions and session records (csms.sessions.v1)",
    settings=SessionsSettings,
    serve=serve,
)
