"""The runtime every csms process shares: JSON logs, the status port, the event loop, GC.

The gateway and the workers may import ``contracts`` but never each other, so
the operational plumbing they have in common lives here, one idea per module:

``logs``
    :func:`configure_logging`: one JSON object per line, stable event names.
``status``
    :class:`StatusServer`: ``/healthz``, ``/readyz`` and ``/metrics`` on their own port.
``metrics``
    :class:`ProcessMetrics`: event-loop lag, GC pauses, RSS, CPU and file descriptors.
``loop_lag``
    :class:`LoopLagMonitor`: how late the event loop runs a timer.
``gc_policy``
    :class:`GcPolicy`: freezing and thresholds that keep full collections short.
``runtime``
    :class:`ServiceSettings`, :func:`run` (uvloop), :class:`Stopping` (signals),
    :class:`ServiceRuntime` (all of the above around a service's main).

Operators' view: docs/operations.md.
"""

from __future__ import annotations

from contracts.service.gc_policy import GcPolicy
from contracts.service.logs import JsonFormatter, configure_logging
from contracts.service.loop_lag import LoopLagMonitor
from contracts.service.metrics import ProcessMetrics
from contracts.service.runtime import (
    ServiceRuntime,
    ServiceSettings,
    Stopping,
    raise_open_file_limit,
    run,
)
from contracts.service.status import Readiness, StatusServer

__all__ = [
    "GcPolicy",
    "JsonFormatter",
    "LoopLagMonitor",
    "ProcessMetrics",
    "Readiness",
    "ServiceRuntime",
    "ServiceSettings",
    "StatusServer",
    "Stopping",
    "configure_logging",
    "raise_open_file_limit",
    "run",
]
