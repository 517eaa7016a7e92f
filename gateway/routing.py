"""Who answers a station's call: the table (ARCHITECTURE.md, "Who answers a station's call").

Every station call is published to ``ocpp.events.v1``. Then one of two things
happens, decided here per version and action, in one table:

- ``ANSWER``: a routine call that needs no decision (Heartbeat,
  StatusNotification, MeterValues, the notifications). The gateway answers it
  itself, with the payload built by the route's answer function, but only once
  Kafka has acknowledged the event.
- ``DELEGATE``: a call that needs a decision (Authorize, transactions with an id
  token, DataTransfer, certificates, ...). A worker answers it on the station's
  command stream, correlated by message id; when no reply comes within
  ``reply_timeout`` the station gets the fallback: CALLERROR ``InternalError``
  (see docs/decisions/0006-delegated-calls.md for why not a CALLRESULT).

Station-initiated actions that the table does not answer locally are delegated,
so a new action reaches the workers by default instead of being acknowledged
without anyone looking at it. SEND messages (OCPP 2.1) are published and never
answered.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from contracts.ocpp import VERSIONS, OcppVersion, actions

__all__ = ["Answering", "Context", "Handling", "Route", "routes"]

_EMPTY = b"{}"


class Handling(enum.Enum):
    ANSWER = "answer"  # the gateway answers once Kafka acknowledged the event
    DELEGATE = "delegate"  # a worker answers on ocpp.commands.v1


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What an answer may depend on besides the request."""

    now: datetime
    heartbeat_interval: int
    overloaded: bool
    boot_retry_interval: int


Answering = Callable[[Any, Context], bytes]


def _empty(request: Any, context: Context) -> bytes:
    return _EMPTY


def _now(context: Context) -> str:
    return context.now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _heartbeat(request: Any, context: Context) -> bytes:
    return b'{"currentTime":"%s"}' % _now(context).encode()


def _boot(request: Any, context: Context) -> bytes:
    # Reconnect storms: while overloaded, stations are told to come back later (B02/B03).
    if context.overloaded:
        status, interval = "Pending", context.boot_retry_interval
    else:
        status, interval = "Accepted", context.heartbeat_interval
    return b'{"currentTime":"%s","interval":%d,"status":"%s"}' % (
        _now(context).encode(),
        interval,
        status.encode(),
    )


def _accepted(request: Any, context: Context) -> bytes:
    return b'{"status":"Accepted"}'


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    action: str
    handling: Handling
    answer: Answering | None = None  # ANSWER routes
    # a DELEGATE route that the gateway answers itself when this says the request needs no decision
    delegate_if: Callable[[Any], bool] | None = None

    def handling_for(self, request: Any) -> Handling:
        if self.delegate_if is not None:
            return Handling.DELEGATE if self.delegate_if(request) else Handling.ANSWER
        return self.handling


def _has_id_token(request: Any) -> bool:
    """TransactionEvent needs a decision when it carries an idToken (authorization on the way)."""
    return getattr(request, "id_token", msgspec.UNSET) is not msgspec.UNSET


# Answered by the gateway in every version that has the action.
_ANSWERS: dict[str, Answering] = {
    "Heartbeat": _heartbeat,
    "BootNotification": _boot,
    "StatusNotification": _empty,
    "MeterValues": _empty,
    "DiagnosticsStatusNotification": _empty,
    "FirmwareStatusNotification": _empty,
    "SignedFirmwareStatusNotification": _empty,
    "LogStatusNotification": _empty,
    "SecurityEventNotification": _empty,
    "NotifyEvent": _empty,
    "NotifyReport": _empty,
    "NotifyMonitoringReport": _empty,
    "NotifyChargingLimit": _empty,
    "ClearedChargingLimit": _empty,
    "NotifyCustomerInformation": _empty,
    "NotifyDisplayMessages": _empty,
    "NotifyEVChargingSchedule": _accepted,
    "ReportChargingProfiles": _empty,
    "ReservationStatusUpdate": _empty,
    "PublishFirmwareStatusNotification": _empty,
    # OCPP 2.1
    "NotifyDERAlarm": _empty,
    "NotifyDERStartStop": _empty,
    "ReportDERControl": _empty,
    "NotifyPriorityCharging": _empty,
    "NotifySettlement": _empty,
    "OpenPeriodicEventStream": _accepted,
    "ClosePeriodicEventStream": _empty,
    "NotifyWebPaymentStarted": _empty,
}


def _table(version: OcppVersion, boot_policy: str) -> dict[str, Route]:
    table: dict[str, Route] = {}
    for name, action in actions(version).items():
        if action.initiator == "csms":
            continue
        if name == "TransactionEvent":
            table[name] = Route(name, Handling.DELEGATE, _empty, delegate_if=_has_id_token)
        elif name == "BootNotification" and boot_policy == "workers":
            table[name] = Route(name, Handling.DELEGATE)
        elif name in _ANSWERS:
            table[name] = Route(name, Handling.ANSWER, _ANSWERS[name])
        else:
            table[name] = Route(name, Handling.DELEGATE)
    return table


def routes(boot_policy: str = "accept") -> Mapping[OcppVersion, Mapping[str, Route]]:
    """The routing table per version: every action a station may send, and who answers it."""
    return {version: _table(version, boot_policy) for version in VERSIONS}
