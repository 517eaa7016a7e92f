"""What every sessions handler gets (:class:`Context`) and gives back (:class:`Outcome`).

A handler is a pure function ``(context, station, transaction_ids, request) ->
Outcome`` for one OCPP version and action (``ocpp16``, ``ocpp2``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from contracts.envelopes import SessionRecord
from workers.runtime.logic import Position
from workers.sessions.id_tokens import Authorization
from workers.sessions.model import StationSessions, TransactionIds, Update

__all__ = ["Context", "Handler", "Outcome"]


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """The facts of the event besides its request."""

    station_id: str
    received_at: datetime
    position: Position
    authorize: Callable[[str], Authorization]  # at received_at, with the worker's policy
    offline_after: timedelta  # 1.6: a message this much older than its receipt was queued

    def update(self, station: StationSessions) -> Update:
        return Update(self.station_id, self.received_at, station)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """A handler's result; ``name`` is the ``outcome`` label of the worker's metrics."""

    name: str
    station: StationSessions
    ids: TransactionIds
    reply: bytes | None = None
    records: tuple[SessionRecord, ...] = ()
    anomalies: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, update: Update, ids: TransactionIds, reply: bytes | None) -> Outcome:
        return cls(name, update.station, ids, reply, tuple(update.records), tuple(update.anomalies))


Handler = Callable[[Context, StationSessions, TransactionIds, Any], Outcome]
