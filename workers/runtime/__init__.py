"""The runtime every csms worker shares: consume, decide, publish, checkpoint, restore.

A worker is a member of a Kafka consumer group over ``ocpp.events.v1`` (key =
station id, so a station's events are in order on one partition). The runtime
does the I/O; the worker brings a pure :class:`~workers.runtime.logic.Logic`.

``logic``
    The seam: :class:`Logic`, :class:`Decision`, :class:`Reply`, :class:`Output`.
``worker``
    :class:`Worker`: the consume loop, rebalance listener, replies, dead letters.
``partition``
    One owned partition's states and its checkpoints (the ordering rules).
``changelog``
    The compacted per-group topic the states are kept in and restored from.
``service``
    :func:`serve` and :class:`WorkerDefinition`: ``csms worker NAME``'s process.
``settings``, ``metrics``
    :class:`WorkerSettings`; :class:`WorkerMetrics`.

Operators' and developers' view: docs/workers.md; the decisions:
docs/decisions/0008-worker-runtime.md.
"""

from __future__ import annotations

from workers.runtime.logic import Decision, Logic, Output, Position, RecordRejected, Reply
from workers.runtime.metrics import WorkerMetrics
from workers.runtime.service import WorkerDefinition, serve
from workers.runtime.settings import WorkerSettings
from workers.runtime.worker import Worker

__all__ = [
    "Decision",
    "Logic",
    "Output",
    "Position",
    "RecordRejected",
    "Reply",
    "Worker",
    "WorkerDefinition",
    "WorkerMetrics",
    "WorkerSettings",
    "serve",
]
