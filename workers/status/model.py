"""A station's status, folded from what its events say (pure: no clock, no I/O).

:func:`fold` takes the station's :class:`StationState`, one event and the
:mod:`~workers.status.facts` it holds, and returns the new state and the
``csms.station-status.v1`` record to write, if any. "Now" is the event's
``received_at``.

The state is the record last written (``published``) plus what changes too
often to be written every time: the exact time the station was last heard
from, and each EVSE's latest meter reading. A record is written when what it
shows changes, with two fields in coarse steps (:class:`Steps`): heartbeats
alone write one when ``last_heard_at`` would move by at least the heard step,
meter readings when one is at least the meter step newer than the written
one. A record written for any reason carries the exact values.

Duplicates: the same event handled twice writes nothing the second time. An
event right after itself changes nothing by construction (every fact is
applied as "set to"), and the state remembers digests of the last
:data:`RECENT` events so that a copy further on is recognised too. A copy of
an event more than :data:`RECENT` events later is handled as new (Kafka's
idempotent producer writes no such copies; a station's retry is a new call
with new ids, and what it says is already the status, so it changes nothing).
After a crash the runtime restores the state of the last checkpoint and the
events after it are handled again: their records are written again, the same
bytes and ``ce_id``.

Connections (docs/topics.md, "Connections overlap"): ``connected`` makes the
station online with that connection; ``disconnected`` of another (older)
connection changes nothing; a call on a connection the state does not know,
while the station is not online, makes it online with that connection (the
worker did not see it open).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import msgspec

from contracts.envelopes import (
    ActiveTransaction,
    BootInfo,
    ConnectorState,
    MeterReading,
    OpenProblem,
    OperationProgress,
    StationEvent,
    StationStatus,
)
from workers.status.facts import (
    Boot,
    Connection,
    ConnectorStatus,
    Diagnostics,
    Fact,
    Firmware,
    Heard,
    Meter,
    Problem,
    Transaction,
)

__all__ = ["RECENT", "NoPartitionState", "StationState", "Steps", "event_digest", "fold"]

RECENT = 8
"""Events remembered per station (as 63-bit digests) to recognise a copy of one."""

T = TypeVar("T")


class StationState(msgspec.Struct, frozen=True, gc=False):
    """What the status worker keeps per station (its changelog value)."""

    published: StationStatus
    heard_at: datetime | None = None  # exact; published.last_heard_at is in steps
    meters: tuple[MeterReading, ...] = ()  # exact; published.meters are in steps
    recent: tuple[int, ...] = ()  # digests of the last RECENT events, oldest first


class NoPartitionState(msgspec.Struct, frozen=True, gc=False):
    """The status worker keeps nothing per partition."""


@dataclasses.dataclass(frozen=True, slots=True)
class Steps:
    """How far ``last_heard_at`` and a meter reading's time move before a record shows it."""

    heard: timedelta
    meter: timedelta


def event_digest(event: StationEvent) -> int:
    """A 63-bit digest of the event's identity (connection id and message id)."""
    identity = f"{event.connection_id}\n{event.message_id}".encode()
    return int.from_bytes(hashlib.blake2b(identity, digest_size=8).digest(), "big") >> 1


def fold(
    state: StationState | None, event: StationEvent, facts: tuple[Fact, ...], steps: Steps
) -> tuple[StationState, StationStatus | None]:
    """The station's state after ``event`` and the record to write (``None``: nothing changed).

    Returns ``state`` itself when the event is one of the last :data:`RECENT`.
    """
    digest = event_digest(event)
    if state is not None and digest in state.recent:
        return state, None
    now = event.received_at
    if state is None:
        published = None
        view = StationStatus(station_id=event.station_id, updated_at=now)
        heard_at = None
        recent: tuple[int, ...] = ()
    else:
        published = state.published
        view = msgspec.structs.replace(published, last_heard_at=state.heard_at, meters=state.meters)
        heard_at, recent = state.heard_at, state.recent
    for fact in facts:
        if isinstance(fact, Heard) or (isinstance(fact, Connection) and fact.connected):
            heard_at = fact.at if heard_at is None else max(heard_at, fact.at)
        view = _apply(view, fact, event)
    view = msgspec.structs.replace(view, last_heard_at=heard_at)
    recent = (*recent, digest)[-RECENT:]
    record = None
    if published is None or _due(published, view, steps):
        record = msgspec.structs.replace(view, updated_at=now)
        published = record
    new = StationState(published, heard_at, view.meters, recent)
    return new, record


def _due(published: StationStatus, view: StationStatus, steps: Steps) -> bool:
    """Whether ``view`` (exact) shows something ``published`` does not, at the steps' grain."""
    coarse = msgspec.structs.replace(
        view,
        last_heard_at=published.last_heard_at,
        meters=published.meters,
        updated_at=published.updated_at,
    )
    if coarse != published:
        return True
    if view.last_heard_at is not None and (
        published.last_heard_at is None
        or view.last_heard_at - published.last_heard_at >= steps.heard
    ):
        return True
    shown = {meter.evse_id: meter for meter in published.meters}
    for meter in view.meters:
        before = shown.get(meter.evse_id)
        if before is None or meter.at - before.at >= steps.meter:
            return True
    return False


# --- facts --------------------------------------------------------------------------------------


def _apply(view: StationStatus, fact: Fact, event: StationEvent) -> StationStatus:
    if isinstance(fact, Heard):
        if view.online or fact.connection_id == view.connection_id:
            return view
        return msgspec.structs.replace(
            view,
            online=True,
            connection_id=fact.connection_id,
            gateway_id=event.gateway_id,
            ocpp_version=event.ocpp_version,
            connected_since=None,
            disconnected_at=None,
        )
    if isinstance(fact, Connection):
        if fact.connected:
            return msgspec.structs.replace(
                view,
                online=True,
                connection_id=fact.connection_id,
                gateway_id=fact.gateway_id,
                ocpp_version=event.ocpp_version,
                connected_since=fact.at,
                disconnected_at=None,
            )
        if not view.online or fact.connection_id != view.connection_id:
            return view
        return msgspec.structs.replace(view, online=False, disconnected_at=fact.at)
    if isinstance(fact, Boot):
        boot = BootInfo(
            vendor=fact.vendor,
            model=fact.model,
            serial_number=fact.serial_number,
            firmware_version=fact.firmware_version,
            reason=fact.reason,
            booted_at=fact.at,
        )
        return view if boot == view.boot else msgspec.structs.replace(view, boot=boot)
    if isinstance(fact, ConnectorStatus):
        return _connector(view, fact, event)
    if isinstance(fact, Transaction):
        return _transaction(view, fact)
    if isinstance(fact, Meter):
        return _meter(view, fact)
    if isinstance(fact, Firmware | Diagnostics):
        field = "firmware" if isinstance(fact, Firmware) else "diagnostics"
        before: OperationProgress | None = getattr(view, field)
        if before is not None and (before.status, before.request_id) == (
            fact.status,
            fact.request_id,
        ):
            return view
        progress = OperationProgress(status=fact.status, request_id=fact.request_id, at=fact.at)
        return msgspec.structs.replace(view, **{field: progress})
    if isinstance(fact, Problem):
        return _problem(view, fact)
    return view  # security events and rejected logins are the alerts worker's business


def _replace_where(
    items: tuple[T, ...],
    match: Callable[[T], bool],
    new: T | None,
    order: Callable[[T], tuple[int | str, ...]],
) -> tuple[T, ...]:
    """``items`` without those ``match`` accepts, plus ``new`` (if any), sorted by ``order``."""
    kept = [item for item in items if not match(item)]
    if new is not None:
        kept.append(new)
    return tuple(sorted(kept, key=order))


def _connector_order(item: ConnectorState) -> tuple[int | str, ...]:
    return (item.evse_id, -1 if item.connector_id is None else item.connector_id)


def _connector(view: StationStatus, fact: ConnectorStatus, event: StationEvent) -> StationStatus:
    key = (fact.evse_id, fact.connector_id)
    before = next((c for c in view.connectors if (c.evse_id, c.connector_id) == key), None)
    state = ConnectorState(
        evse_id=fact.evse_id,
        connector_id=fact.connector_id,
        status=fact.status,
        error_code=fact.error_code,
        vendor_error_code=fact.vendor_error_code,
        info=fact.info,
        since=fact.at,
    )
    if before is not None and msgspec.structs.replace(state, since=before.since) == before:
        return view  # said again
    connectors = _replace_where(
        view.connectors, lambda c: (c.evse_id, c.connector_id) == key, state, _connector_order
    )
    transactions = view.transactions
    if event.ocpp_version == "1.6" and fact.status == "Available":
        # 1.6: an Available connector has no transaction; one whose id was never seen ends here
        transactions = tuple(
            t for t in transactions if t.evse_id != fact.evse_id or t.transaction_id is not None
        )
    return msgspec.structs.replace(view, connectors=connectors, transactions=transactions)


def _by_evse(item: ActiveTransaction | MeterReading) -> tuple[int | str, ...]:
    return (item.evse_id,)


def _transaction(view: StationStatus, fact: Transaction) -> StationStatus:
    transaction_id = fact.transaction_id or None
    active = view.transactions
    on_evse = next((t for t in active if t.evse_id == fact.evse_id), None)
    if fact.event == "Started" and fact.evse_id is not None:
        if on_evse is not None and (
            (transaction_id is not None and on_evse.transaction_id == transaction_id)
            or (transaction_id is None and on_evse.started_at == fact.at)
        ):
            return view  # the same start again
        started = ActiveTransaction(
            evse_id=fact.evse_id,
            connector_id=fact.connector_id,
            transaction_id=transaction_id,
            started_at=fact.at,
        )
        return _with_transactions(
            view, _replace_where(active, lambda t: t.evse_id == fact.evse_id, started, _by_evse)
        )
    if fact.event == "Updated":
        # names a 1.6 transaction whose id was not known; never starts one (a late message)
        if on_evse is None or on_evse.transaction_id is not None or transaction_id is None:
            return view
        named = msgspec.structs.replace(on_evse, transaction_id=transaction_id)
        return _with_transactions(
            view, _replace_where(active, lambda t: t is on_evse, named, _by_evse)
        )
    if fact.event == "Ended":
        ended = [t for t in active if t.transaction_id == transaction_id]
        if not ended:
            unnamed = [t for t in active if t.transaction_id is None]
            ended = unnamed if len(unnamed) == 1 and fact.evse_id is None else []
        if not ended:
            return view
        return _with_transactions(view, tuple(t for t in active if t not in ended))
    return view


def _with_transactions(view: StationStatus, active: tuple[ActiveTransaction, ...]) -> StationStatus:
    return (
        view if active == view.transactions else msgspec.structs.replace(view, transactions=active)
    )


def _meter(view: StationStatus, fact: Meter) -> StationStatus:
    before = next((m for m in view.meters if m.evse_id == fact.evse_id), None)
    if before is not None and fact.at <= before.at:
        return view  # late, or the same reading again
    reading = MeterReading(
        evse_id=fact.evse_id, energy_wh=fact.energy_wh, power_w=fact.power_w, at=fact.at
    )
    meters = _replace_where(view.meters, lambda m: m.evse_id == fact.evse_id, reading, _by_evse)
    return msgspec.structs.replace(view, meters=meters)


def _problem_key(item: OpenProblem | Problem) -> tuple[str, int, int, str]:
    return (
        item.component,
        -1 if item.evse_id is None else item.evse_id,
        -1 if item.connector_id is None else item.connector_id,
        item.variable,
    )


def _problem(view: StationStatus, fact: Problem) -> StationStatus:
    key = _problem_key(fact)
    before = next((p for p in view.problems if _problem_key(p) == key), None)
    if fact.cleared:
        if before is None:
            return view
        return msgspec.structs.replace(
            view, problems=tuple(p for p in view.problems if p is not before)
        )
    problem = OpenProblem(
        component=fact.component,
        variable=fact.variable,
        evse_id=fact.evse_id,
        connector_id=fact.connector_id,
        value=fact.value,
        tech_code=fact.tech_code,
        tech_info=fact.tech_info,
        since=fact.at if before is None else before.since,  # open since it was first said
    )
    if problem == before:
        return view
    problems = _replace_where(
        view.problems, lambda p: _problem_key(p) == key, problem, _problem_key
    )
    return msgspec.structs.replace(view, problems=problems)
