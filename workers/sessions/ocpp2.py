"""OCPP 2.0.1 and 2.1 authorization and transactions: Authorize, TransactionEvent.

The station names its transactions (2.0.1 E §1.2) and numbers the
TransactionEvents of each with ``seqNo`` (E §1.3.2), so a session is the
station's ``transactionId`` and an event is (transaction, seqNo):

- an event whose seqNo was already received is a duplicate (a retry after a
  CALLERROR or a timeout, E13): answered, nothing else;
- events may come in any order (offline queues, retries): the session starts at
  the earliest timestamp seen, its energy is the latest register reading minus
  the earliest one (readings of one timestamp ordered by seqNo), and an event
  older than one already received is flagged ``out_of_order``;
- ``offline=true`` on any event flags the session ``offline`` (E04, E11, E12);
- ``Ended`` completes it, with ``stoppedReason`` (omitted means ``Local``,
  E §1.5); if by then no Started came the session is flagged ``missing_start``,
  and if seqNos are missing between the first and the last, ``missing_events``
  (what GetTransactionStatus would be asked about, E14);
- the end is final: the meter stop is the Ended's ``Transaction.End`` reading,
  else the last reading up to it; an event after it (a higher seqNo, or
  stamped later: a periodic Updated sent just after the Ended) is answered,
  flagged ``event_after_end``, and changes nothing else; an event from before
  it that arrives after it is a correction (reason ``late_event``);
- an idToken is authorized on the way (C01, E03, E05): a TransactionEvent
  carrying one is answered with its idTokenInfo; the station acts on a status
  other than Accepted (E05: it may end the transaction, Deauthorized).

Tokens of type ``NoAuthorization`` are accepted without a lookup.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.ocpp import v21, v201
from contracts.ocpp.validation import encode
from workers.sessions.handling import Context, Handler, Outcome
from workers.sessions.id_tokens import Authorization
from workers.sessions.meter import TRANSACTION_END, readings2, utc
from workers.sessions.model import (
    Session,
    StationSessions,
    TransactionIds,
    add_seq_no,
    after_end,
    end_at,
    find,
    seq_no_seen,
    with_readings,
)

__all__ = ["HANDLERS_21", "HANDLERS_201"]

Version = Any  # the module of generated types: contracts.ocpp.v201 or v21
_ID_TOKEN_LENGTH = {v201: 36, v21: 255}  # IdTokenType.idToken, the group's id too


def _authorize(context: Context, id_token: Any) -> Authorization:
    if id_token.type == "NoAuthorization":
        return Authorization("Accepted")
    return context.authorize(id_token.id_token)


def _id_token_info(types: Version, authorization: Authorization) -> Any:
    group = authorization.group_id
    group_token: Any = msgspec.UNSET
    if group and len(group) <= _ID_TOKEN_LENGTH[types]:
        group_token = types.IdTokenType(id_token=group, type="Central")
    return types.IdTokenInfoType(
        status=authorization.status,
        cache_expiry_date_time=authorization.expires_at or msgspec.UNSET,
        group_id_token=group_token,
    )


def _authorize_handler(types: Version) -> Handler:
    def authorize(
        context: Context, station: StationSessions, ids: TransactionIds, request: Any
    ) -> Outcome:
        authorization = _authorize(context, request.id_token)
        reply = encode(types.AuthorizeResponse(id_token_info=_id_token_info(types, authorization)))
        return Outcome(authorization.status.lower(), station, ids, reply)

    return authorize


def _transaction_event_handler(types: Version, version: str) -> Handler:
    def transaction_event(
        context: Context, station: StationSessions, ids: TransactionIds, request: Any
    ) -> Outcome:
        reply = b"{}"
        if request.id_token is not msgspec.UNSET:
            authorization = _authorize(context, request.id_token)
            reply = encode(
                types.TransactionEventResponse(id_token_info=_id_token_info(types, authorization))
            )
        info = request.transaction_info
        number = info.transaction_id
        seq_no = request.seq_no
        before = find(station, lambda s: s.ocpp_version == version and s.transaction_id == number)
        if before is not None and seq_no_seen(before.seq_nos, seq_no):
            return Outcome("duplicate", station, ids, reply)
        at = utc(request.timestamp)
        update = context.update(station)
        if before is not None and after_end(before, seq_no, at):
            ignored = msgspec.structs.replace(before, seq_nos=add_seq_no(before.seq_nos, seq_no))
            update.put(before, ignored.with_anomaly("event_after_end"))
            return Outcome.of("event_after_end", update, ids, reply)
        session = before or Session(
            session_id=f"{context.station_id}:{number}",
            transaction_id=number,
            ocpp_version=version,  # type: ignore[arg-type]
            started_at=at,
        )
        if session.seq_nos and seq_no < session.seq_nos[-1][1]:
            session = session.with_anomaly("out_of_order")
        changes: dict[str, Any] = {"seq_nos": add_seq_no(session.seq_nos, seq_no)}
        if at < session.started_at:
            changes["started_at"] = at
        if request.offline is True:
            changes["offline"] = True
        if request.evse is not msgspec.UNSET:
            changes["evse_id"] = request.evse.id
            if request.evse.connector_id is not msgspec.UNSET:
                changes["connector_id"] = request.evse.connector_id
        if request.id_token is not msgspec.UNSET and session.id_token is None:
            changes["id_token"] = request.id_token.id_token
        if request.event_type == "Started":
            changes["started_seen"] = True
            changes["started_at"] = at
        ending = request.event_type == "Ended" and not session.completed
        meter_values = () if request.meter_value is msgspec.UNSET else request.meter_value
        if ending:
            changes["completed"] = True
            changes["stopped_at"] = at
            stopped_reason = info.stopped_reason
            changes["stop_reason"] = "Local" if stopped_reason is msgspec.UNSET else stopped_reason
            ends = readings2(meter_values, seq_no=seq_no, context=TRANSACTION_END)
            end = max(ends, key=lambda r: r.order, default=None)
            if end is not None:
                changes["meter_stop_wh"] = end.wh
        after = msgspec.structs.replace(session, **changes)
        after = with_readings(after, readings2(meter_values, seq_no=seq_no))
        if ending:
            after = end_at(after, seq_no)
            if not after.started_seen:
                after = after.with_anomaly("missing_start")
            if len(after.seq_nos) > 1:
                after = after.with_anomaly("missing_events")
        update.put(before, after, reason="late_event")
        if before is None:
            name = "completed" if after.completed else "started"
        else:
            name = "completed" if after.completed and not before.completed else "updated"
        return Outcome.of(name, update, ids, reply)

    return transaction_event


HANDLERS_201: dict[str, Handler] = {
    "Authorize": _authorize_handler(v201),
    "TransactionEvent": _transaction_event_handler(v201, "2.0.1"),
}
HANDLERS_21: dict[str, Handler] = {
    "Authorize": _authorize_handler(v21),
    "TransactionEvent": _transaction_event_handler(v21, "2.1"),
}
