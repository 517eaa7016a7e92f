"""OCPP 1.6: Authorize, StartTransaction, StopTransaction and MeterValues.

Transaction ids (§4.8: the Central System gives them): ``transaction_id``
interleaves the partition's counter with the partition number, so ids are
unique across the system with no coordination, and the same StartTransaction
gets the same id however often it is handled (the counter is partition state,
restored with it). Capacity and why not the event's offset:
docs/decisions/0008-worker-runtime.md.

Messages a station sends again, or late (§3.7 queued transaction messages,
§3.7.1 retries after an error), are always answered and never counted twice:

- a StartTransaction with the connector, idTag, meterStart and timestamp of a
  known session (a retry, whatever its message id) gets that session's id back
  (anomaly ``start_retried``);
- a StartTransaction on a connector whose session is still active closes that
  session first (anomaly ``superseded``: its StopTransaction was lost); if
  that StopTransaction turns up after all, its facts correct the session
  (a correction record, reason ``late_stop``);
- a StopTransaction of a completed session with the same stop is a duplicate;
  with a different one the first stop stands (anomaly ``stop_conflict``);
- a StopTransaction with an unknown transactionId (-1 when the start was never
  answered, or an id from another system) closes the station's only active
  session if it fits (anomaly ``stop_with_unknown_id``), else becomes a
  completed session of its own (anomaly ``stop_without_start``, energy from
  ``transactionData`` when it has a reading) — both flagged ``offline``;
- MeterValues are readings: a late or repeated one changes nothing it should
  not, and a completed session's none at all: one stamped after the stop is
  flagged ``event_after_end``, one from before it (queued, arriving after
  the stop) ``late_reading``.

A message whose timestamp is more than ``offline_after`` older than its
receipt was queued by an offline station: its session is flagged ``offline``.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from contracts.ocpp import v16
from contracts.ocpp.validation import encode
from workers.sessions.handling import Context, Handler, Outcome
from workers.sessions.id_tokens import Authorization
from workers.sessions.meter import Reading, readings16, utc
from workers.sessions.model import (
    Session,
    StationSessions,
    TransactionIds,
    Update,
    find,
    with_readings,
)

__all__ = ["HANDLERS", "PARTITION_SLOTS", "TransactionIdsExhausted", "transaction_id"]

PARTITION_SLOTS = 64
"""Transaction ids are ``counter * 64 + partition``: ocpp.events.v1 may have up to 64 partitions."""

INT32_MAX = 2**31 - 1
PARENT_ID_TAG_LENGTH = 20  # IdTagInfo.parentIdTag, CiString20Type


class TransactionIdsExhausted(RuntimeError):
    """The partition's share of positive int32 transaction ids is used up."""


def transaction_id(counter: int, partition: int) -> int:
    """The 1.6 transactionId for the partition's ``counter``-th transaction."""
    if not 0 <= partition < PARTITION_SLOTS:
        raise ValueError(f"partition {partition} is beyond the {PARTITION_SLOTS} id slots")
    value = counter * PARTITION_SLOTS + partition
    if value > INT32_MAX:
        raise TransactionIdsExhausted(f"partition {partition} has used its transaction ids")
    return value


def id_tag_info(authorization: Authorization) -> v16.IdTagInfo:
    group = authorization.group_id
    return v16.IdTagInfo(
        status=authorization.status,
        expiry_date=authorization.expires_at or msgspec.UNSET,
        parent_id_tag=group if group and len(group) <= PARENT_ID_TAG_LENGTH else msgspec.UNSET,
    )


def _queued(context: Context, session: Session, stamped_at: datetime) -> Session:
    """``session`` flagged offline when the message was stamped long before it arrived."""
    if context.received_at - stamped_at > context.offline_after and not session.offline:
        return msgspec.structs.replace(session, offline=True)
    return session


# --- Authorize ----------------------------------------------------------------------------------


def authorize(
    context: Context, station: StationSessions, ids: TransactionIds, request: v16.AuthorizeRequest
) -> Outcome:
    authorization = context.authorize(request.id_tag)
    reply = encode(v16.AuthorizeResponse(id_tag_info=id_tag_info(authorization)))
    return Outcome(authorization.status.lower(), station, ids, reply)


# --- StartTransaction ---------------------------------------------------------------------------


def start_transaction(
    context: Context,
    station: StationSessions,
    ids: TransactionIds,
    request: v16.StartTransactionRequest,
) -> Outcome:
    authorization = context.authorize(request.id_tag)
    started_at = utc(request.timestamp)
    update = context.update(station)

    def answer(number: str) -> bytes:
        return encode(
            v16.StartTransactionResponse(
                id_tag_info=id_tag_info(authorization), transaction_id=int(number)
            )
        )

    known = find(
        station,
        lambda s: (
            s.ocpp_version == "1.6"
            and s.connector_id == request.connector_id
            and s.id_token == request.id_tag
            and s.meter_start_wh == request.meter_start
            and s.started_at == started_at
        ),
    )
    if known is not None:
        update.put(known, known.with_anomaly("start_retried"))
        return Outcome.of("duplicate", update, ids, answer(known.transaction_id))

    number = str(transaction_id(ids.next, context.position.partition))
    for active in station.sessions:
        if (
            active.ocpp_version == "1.6"
            and not active.completed
            and active.connector_id == request.connector_id
        ):
            superseded = msgspec.structs.replace(active, completed=True, stopped_at=started_at)
            update.put(active, superseded.with_anomaly("superseded"))
    reading = Reading(started_at, float(request.meter_start))
    session = Session(
        session_id=f"{context.station_id}:{number}",
        transaction_id=number,
        ocpp_version="1.6",
        started_at=started_at,
        connector_id=request.connector_id,
        id_token=request.id_tag,
        meter_start_wh=float(request.meter_start),
        first=reading,
        last=reading,
        started_seen=True,
    )
    update.put(None, _queued(context, session, started_at))
    return Outcome.of("started", update, TransactionIds(next=ids.next + 1), answer(number))


# --- StopTransaction ----------------------------------------------------------------------------


def stop_transaction(
    context: Context,
    station: StationSessions,
    ids: TransactionIds,
    request: v16.StopTransactionRequest,
) -> Outcome:
    if request.id_tag is msgspec.UNSET:
        reply = encode(v16.StopTransactionResponse())
    else:
        authorization = context.authorize(request.id_tag)
        reply = encode(v16.StopTransactionResponse(id_tag_info=id_tag_info(authorization)))
    stopped_at = utc(request.timestamp)
    meter_stop = float(request.meter_stop)
    readings = list(readings16(request.transaction_data or ()))
    number = str(request.transaction_id)
    update = context.update(station)

    session = find(station, lambda s: _started(s) and s.transaction_id == number)
    if session is None:
        active = _only_active_fitting(station, request, meter_stop)
        if active is None:
            return _stop_without_start(context, update, ids, request, readings, reply)
        flagged = msgspec.structs.replace(active.with_anomaly("stop_with_unknown_id"), offline=True)
        update.put(active, _stopped(flagged, request, readings))
        return Outcome.of("stop_with_unknown_id", update, ids, reply)
    if session.completed and session.meter_stop_wh is not None:
        if session.meter_stop_wh == meter_stop and session.stopped_at == stopped_at:
            return Outcome("duplicate", station, ids, reply)
        update.put(session, session.with_anomaly("stop_conflict"))
        return Outcome.of("stop_conflict", update, ids, reply)
    stopped = _stopped(session, request, readings)
    update.put(session, _queued(context, stopped, stopped_at), reason="late_stop")
    return Outcome.of("completed", update, ids, reply)


def _started(session: Session) -> bool:
    """A 1.6 session that began with a StartTransaction (not a stop without start)."""
    return session.ocpp_version == "1.6" and "stop_without_start" not in session.anomalies


def _stopped(
    session: Session, request: v16.StopTransactionRequest, readings: list[Reading]
) -> Session:
    stopped = msgspec.structs.replace(
        session,
        completed=True,
        stopped_at=utc(request.timestamp),
        meter_stop_wh=float(request.meter_stop),
        # §4.10: a transaction ended normally may omit the reason, "Local" is assumed
        stop_reason="Local" if request.reason is msgspec.UNSET else request.reason,
    )
    return with_readings(stopped, readings)


def _only_active_fitting(
    station: StationSessions, request: v16.StopTransactionRequest, meter_stop: float
) -> Session | None:
    """The station's only active 1.6 session, if the stop can be its end."""
    active = [s for s in station.sessions if s.ocpp_version == "1.6" and not s.completed]
    if len(active) != 1:
        return None
    (session,) = active
    token = request.id_tag
    fits = (
        (session.meter_start_wh is None or session.meter_start_wh <= meter_stop)
        and session.started_at <= utc(request.timestamp)
        and (token is msgspec.UNSET or session.id_token is None or token == session.id_token)
    )
    return session if fits else None


def _stop_without_start(
    context: Context,
    update: Update,
    ids: TransactionIds,
    request: v16.StopTransactionRequest,
    readings: list[Reading],
    reply: bytes,
) -> Outcome:
    number = str(request.transaction_id)
    stopped_at = utc(request.timestamp)
    meter_stop = float(request.meter_stop)
    orphan = find(
        update.station,
        lambda s: (
            s.ocpp_version == "1.6"
            and "stop_without_start" in s.anomalies
            and s.transaction_id == number
            and s.stopped_at == stopped_at
            and s.meter_stop_wh == meter_stop
        ),
    )
    if orphan is not None:
        return Outcome("duplicate", update.station, ids, reply)
    position = context.position
    session = Session(
        session_id=f"{context.station_id}:{number}:{position.partition}-{position.offset}",
        transaction_id=number,
        ocpp_version="1.6",
        started_at=min([stopped_at, *(r.at for r in readings)]),
        id_token=None if request.id_tag is msgspec.UNSET else request.id_tag,
        offline=True,
        anomalies=("stop_without_start",),
        started_seen=True,
    )
    update.put(None, _stopped(session, request, readings))
    return Outcome.of("stop_without_start", update, ids, reply)


# --- MeterValues --------------------------------------------------------------------------------


def meter_values(
    context: Context,
    station: StationSessions,
    ids: TransactionIds,
    request: v16.MeterValuesRequest,
) -> Outcome:
    readings = list(readings16(request.meter_value))
    if not readings:
        return Outcome("no_energy", station, ids)
    if request.transaction_id is not msgspec.UNSET:
        number = str(request.transaction_id)
        session = find(station, lambda s: _started(s) and s.transaction_id == number)
    else:
        session = find(
            station,
            lambda s: (
                s.ocpp_version == "1.6"
                and not s.completed
                and s.connector_id == request.connector_id
            ),
        )
    if session is None:
        return Outcome("no_session", station, ids)
    update = context.update(station)
    if session.completed:
        stopped_at = session.stopped_at
        after = stopped_at is not None and any(r.at > stopped_at for r in readings)
        anomaly = "event_after_end" if after else "late_reading"
        update.put(session, session.with_anomaly(anomaly))
        return Outcome.of(anomaly, update, ids, None)
    update.put(session, with_readings(session, readings))
    return Outcome.of("updated" if update.records else "unchanged", update, ids, None)


HANDLERS: dict[str, Handler] = {
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
}
