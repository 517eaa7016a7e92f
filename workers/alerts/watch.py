"""What the alert rules remember about one station, folded from its facts.

:func:`observe` takes one fact (:mod:`workers.status.facts`) and the position
of the event it came from, and returns the station's new :class:`Watch`, or
the very same object when the fact changes nothing the rules look at. Every
remembered instant carries the event position it came from (:class:`Since`):
an alert's id is made of it, so that handling the event again makes the same
alert again.

Windows (boots, critical security events, rejected logins) are pruned by the
time of the newest fact, with the lengths in :class:`~workers.alerts.rules.Thresholds`.

1.6 StopTransaction names a transaction id the request of StartTransaction
never had (the id is csms's answer): a stop ends the station's oldest open 1.6
transaction on a connector that no longer charges, else its oldest one. One
connector per station, by far the common case in 1.6, is always exact.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from workers.status.facts import (
    Authorized,
    Boot,
    Connection,
    ConnectorStatus,
    Fact,
    Firmware,
    Heard,
    LoginRejected,
    Meter,
    Problem,
    SecurityEvent,
    Transaction,
)

__all__ = [
    "ConnectorWatch",
    "FirmwareWatch",
    "ProblemWatch",
    "SecurityWatch",
    "Since",
    "TransactionWatch",
    "Watch",
    "Windows",
    "observe",
]

_CHARGING = frozenset({"Charging"})


class Since(msgspec.Struct, frozen=True, array_like=True):
    """An instant, and the ``partition:offset`` of the event that told it."""

    at: datetime
    position: str


class ConnectorWatch(msgspec.Struct, frozen=True, kw_only=True):
    """A connector's last status (1.6: ``connector_id`` None, ``evse_id`` its number)."""

    evse_id: int
    connector_id: int | None
    status: str
    since: Since  # when it took this status
    fault: Since | None = None  # when it began to report a fault, while it does
    error_code: str | None = None
    vendor_error_code: str | None = None
    info: str | None = None


class ProblemWatch(msgspec.Struct, frozen=True, kw_only=True):
    """A NotifyEvent problem not cleared yet."""

    evse_id: int | None
    connector_id: int | None
    component: str
    variable: str
    since: Since
    tech_code: str | None = None
    tech_info: str | None = None


class TransactionWatch(msgspec.Struct, frozen=True, kw_only=True):
    """An open transaction and the last time its energy moved."""

    transaction_id: str
    evse_id: int | None
    started: Since
    charging_state: str | None = None  # 2.x TransactionEvent's; 1.6 reads the connector
    energy_wh: float | None = None
    energy_moved_at: datetime | None = None  # the last reading that differed, or the first


class FirmwareWatch(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    since: Since
    failed: bool
    final: bool


class SecurityWatch(msgspec.Struct, frozen=True, array_like=True):
    """A critical security event (or ``LoginRejected``) received at ``since``."""

    type: str
    since: Since


class Watch(msgspec.Struct, frozen=True, kw_only=True):
    """The station as the alert rules see it."""

    online: bool = False
    connection_id: str | None = None
    gateway_id: str | None = None
    ocpp_version: str | None = None
    heard: Since | None = None  # the last message, or the connection's opening
    offline: Since | None = None  # when the connection that counted ended, while offline
    probed_at: datetime | None = None  # the last TriggerMessage Heartbeat sent to a silent one
    boots: tuple[Since, ...] = ()  # within the boot-loop window
    watchdog: Since | None = None  # a boot whose reason was Watchdog, within the window
    connectors: tuple[ConnectorWatch, ...] = ()
    problems: tuple[ProblemWatch, ...] = ()
    transactions: tuple[TransactionWatch, ...] = ()
    authorized: Since | None = None  # an Authorize not followed by a transaction yet
    firmware: FirmwareWatch | None = None
    security: tuple[SecurityWatch, ...] = ()  # within the security hold; logins included


class Windows(msgspec.Struct, frozen=True, kw_only=True):
    """How long :func:`observe` keeps what it counts."""

    boots: timedelta
    security: timedelta
    logins: timedelta


def observe(watch: Watch, fact: Fact, position: str, windows: Windows) -> Watch:
    """``watch`` after ``fact``, told by the event at ``position``."""
    match fact:
        case Heard():
            return _heard(watch, fact, position)
        case Connection():
            return _connection(watch, fact, position)
        case ConnectorStatus():
            return _connector(watch, fact, position)
        case Problem():
            return _problem(watch, fact, position)
        case Boot():
            if any(boot.at == fact.at for boot in watch.boots):
                return watch  # the same boot told again
            boots = _recent((*watch.boots, Since(fact.at, position)), fact.at - windows.boots)
            watchdog = watch.watchdog
            if fact.reason == "Watchdog":
                watchdog = Since(fact.at, position)
            elif watchdog is not None and watchdog.at <= fact.at - windows.boots:
                watchdog = None
            return msgspec.structs.replace(watch, boots=boots, watchdog=watchdog)
        case Firmware():
            since = Since(fact.at, position)
            firmware = FirmwareWatch(
                status=fact.status, since=since, failed=fact.failed, final=fact.final
            )
            return msgspec.structs.replace(watch, firmware=firmware)
        case SecurityEvent() if fact.critical:
            return _security(watch, fact.type, Since(fact.at, position), windows.security)
        case LoginRejected():
            return _security(watch, "LoginRejected", Since(fact.at, position), windows.logins)
        case Authorized():
            return msgspec.structs.replace(watch, authorized=Since(fact.at, position))
        case Transaction():
            return _transaction(watch, fact, position)
        case Meter():
            return _meter(watch, fact)
    return watch


def _recent(items: tuple[Since, ...], after: datetime) -> tuple[Since, ...]:
    return tuple(item for item in items if item.at > after)


def _heard(watch: Watch, fact: Heard, position: str) -> Watch:
    if watch.online and fact.connection_id != watch.connection_id:
        return watch  # a late message of a connection that a newer one replaced
    return msgspec.structs.replace(
        watch,
        online=True,
        connection_id=fact.connection_id,
        heard=Since(fact.at, position),
        offline=None,
    )


def _connection(watch: Watch, fact: Connection, position: str) -> Watch:
    since = Since(fact.at, position)
    if fact.connected:
        return msgspec.structs.replace(
            watch,
            online=True,
            connection_id=fact.connection_id,
            gateway_id=fact.gateway_id,
            ocpp_version=fact.ocpp_version,
            heard=since,
            offline=None,
            probed_at=None,
        )
    if fact.connection_id != watch.connection_id or not watch.online:
        return watch  # the end of a connection that no longer counted
    return msgspec.structs.replace(watch, online=False, offline=since)


def _connector(watch: Watch, fact: ConnectorStatus, position: str) -> Watch:
    since = Since(fact.at, position)
    old = next(
        (
            c
            for c in watch.connectors
            if (c.evse_id, c.connector_id) == (fact.evse_id, fact.connector_id)
        ),
        None,
    )
    fault = None
    if fact.faulted:
        fault = old.fault if old is not None and old.fault is not None else since
    status_since = old.since if old is not None and old.status == fact.status else since
    new = ConnectorWatch(
        evse_id=fact.evse_id,
        connector_id=fact.connector_id,
        status=fact.status,
        since=status_since,
        fault=fault,
        error_code=fact.error_code,
        vendor_error_code=fact.vendor_error_code,
        info=fact.info,
    )
    if new == old:
        return watch
    others = tuple(c for c in watch.connectors if c is not old)
    connectors = tuple(sorted((*others, new), key=lambda c: (c.evse_id, c.connector_id or 0)))
    authorized = watch.authorized
    if fact.status == "Available" and all(
        c.status == "Available" for c in connectors
    ):  # the driver went away, nothing is pending on the station
        authorized = None
    return msgspec.structs.replace(watch, connectors=connectors, authorized=authorized)


def _problem(watch: Watch, fact: Problem, position: str) -> Watch:
    key = (fact.evse_id, fact.connector_id, fact.component, fact.variable)
    old = next(
        (p for p in watch.problems if (p.evse_id, p.connector_id, p.component, p.variable) == key),
        None,
    )
    if fact.cleared:
        if old is None:
            return watch
        return msgspec.structs.replace(
            watch, problems=tuple(p for p in watch.problems if p is not old)
        )
    if old is not None:
        return watch  # the same problem told again
    new = ProblemWatch(
        evse_id=fact.evse_id,
        connector_id=fact.connector_id,
        component=fact.component,
        variable=fact.variable,
        since=Since(fact.at, position),
        tech_code=fact.tech_code,
        tech_info=fact.tech_info,
    )
    return msgspec.structs.replace(watch, problems=(*watch.problems, new))


def _security(watch: Watch, kind: str, since: Since, window: timedelta) -> Watch:
    if any(s.type == kind and s.since.at == since.at for s in watch.security):
        return watch  # told again
    kept = tuple(s for s in watch.security if s.since.at > since.at - window)
    return msgspec.structs.replace(watch, security=(*kept, SecurityWatch(kind, since)))


def _transaction(watch: Watch, fact: Transaction, position: str) -> Watch:
    open_ = watch.transactions
    if fact.event == "Started" or (fact.event == "Updated" and fact.transaction_id):
        key = fact.transaction_id or f"1.6:{fact.evse_id}"
        old = next((t for t in open_ if t.transaction_id == key), None)
        unnamed = next((t for t in open_ if t.transaction_id == f"1.6:{fact.evse_id}"), None)
        if old is None and unnamed is not None and fact.transaction_id:
            # a 1.6 MeterValues names the transaction its StartTransaction could not
            named = msgspec.structs.replace(unnamed, transaction_id=fact.transaction_id)
            return msgspec.structs.replace(
                watch, transactions=tuple(named if t is unnamed else t for t in open_)
            )
        if old is None:
            new = TransactionWatch(
                transaction_id=key,
                evse_id=fact.evse_id,
                started=Since(fact.at, position),
                charging_state=fact.charging_state,
                energy_moved_at=fact.at,
            )
            return msgspec.structs.replace(watch, transactions=(*open_, new), authorized=None)
        if fact.charging_state is None or fact.charging_state == old.charging_state:
            return watch
        new = msgspec.structs.replace(old, charging_state=fact.charging_state)
        return msgspec.structs.replace(
            watch, transactions=tuple(new if t is old else t for t in open_)
        )
    ended = _ended(watch, fact)
    if ended is None:
        return watch
    return msgspec.structs.replace(watch, transactions=tuple(t for t in open_ if t is not ended))


def _ended(watch: Watch, fact: Transaction) -> TransactionWatch | None:
    named = next((t for t in watch.transactions if t.transaction_id == fact.transaction_id), None)
    if named is not None or fact.evse_id is not None:
        return named
    sixteen = [t for t in watch.transactions if t.transaction_id.startswith("1.6:")]
    charging = {c.evse_id for c in watch.connectors if c.status in _CHARGING}
    idle = [t for t in sixteen if t.evse_id not in charging]
    candidates = idle or sixteen
    return candidates[0] if candidates else None


def _meter(watch: Watch, fact: Meter) -> Watch:
    open_ = watch.transactions
    old = next((t for t in open_ if t.evse_id == fact.evse_id), None)
    if old is None or fact.energy_wh is None or fact.energy_wh == old.energy_wh:
        return watch
    new = msgspec.structs.replace(old, energy_wh=fact.energy_wh, energy_moved_at=fact.at)
    return msgspec.structs.replace(watch, transactions=tuple(new if t is old else t for t in open_))
