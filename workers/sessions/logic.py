"""The sessions worker's decisions: one event, the station's sessions, the partition's counter.

:class:`SessionsLogic` is the :class:`~workers.runtime.logic.Logic` the runtime
runs: it decodes the OCPP request of the event, hands it to the handler of its
version and action (:mod:`workers.sessions.ocpp16`, :mod:`workers.sessions.ocpp2`),
and turns the outcome into the runtime's :class:`~workers.runtime.logic.Decision`:
the reply, and one ``csms.sessions.v1`` record per change of a session.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from contracts.envelopes import StationEvent, encode_session, record_key
from contracts.headers import session_headers
from contracts.ocpp.validation import PayloadError, UnknownAction, decode_request
from contracts.topics import SESSIONS
from workers.runtime.logic import Decision, EventsOnly, Output, Position, RecordRejected, Reply
from workers.sessions import ocpp2, ocpp16
from workers.sessions.handling import Context, Handler
from workers.sessions.id_tokens import IdTokenTable, authorize
from workers.sessions.model import NO_SESSIONS, StationSessions, TransactionIds

__all__ = ["SessionsLogic"]

_HANDLERS: dict[str, dict[str, Handler]] = {
    "1.6": ocpp16.HANDLERS,
    "2.0.1": ocpp2.HANDLERS_201,
    "2.1": ocpp2.HANDLERS_21,
}


class SessionsLogic(EventsOnly[StationSessions, TransactionIds]):
    """Authorization, transactions and session records, without I/O."""

    actions = frozenset(action for table in _HANDLERS.values() for action in table)
    station_type = StationSessions
    partition_type = TransactionIds

    def __init__(
        self,
        id_tokens: IdTokenTable,
        *,
        source: str,
        allow_unknown_id_tokens: bool = False,
        offline_after: float = 300.0,
    ) -> None:
        self.id_tokens = id_tokens
        self.source = source
        self.allow_unknown_id_tokens = allow_unknown_id_tokens
        self.offline_after = timedelta(seconds=offline_after)

    def initial_partition(self) -> TransactionIds:
        return TransactionIds()

    def decide(
        self,
        event: StationEvent,
        station: StationSessions | None,
        partition: TransactionIds,
        position: Position,
    ) -> Decision[StationSessions, TransactionIds]:
        handler = _HANDLERS[event.ocpp_version].get(event.action or "")
        if handler is None:
            return Decision("ignored", station, partition)
        try:
            request = decode_request(event.ocpp_version, event.action or "", event.payload)
        except (PayloadError, UnknownAction) as exc:
            raise RecordRejected(str(exc)) from exc
        context = Context(
            station_id=event.station_id,
            received_at=event.received_at,
            position=position,
            authorize=functools.partial(
                authorize,
                self.id_tokens,
                at=event.received_at,
                allow_unknown=self.allow_unknown_id_tokens,
            ),
            offline_after=self.offline_after,
        )
        outcome = handler(context, station or NO_SESSIONS, partition, request)
        outputs = tuple(
            Output(
                SESSIONS.name,
                record_key(record.station_id),
                encode_session(record),
                session_headers(record, source=self.source),
            )
            for record in outcome.records
        )
        return Decision(
            outcome.name,
            station if outcome.station is NO_SESSIONS else outcome.station,
            outcome.ids,
            None if outcome.reply is None else Reply(outcome.reply),
            outputs,
            outcome.anomalies,
        )
