"""What a station's event says about its state, the same for OCPP 1.6, 2.0.1 and 2.1.

:func:`facts` turns one ``ocpp.events.v1`` record into a tuple of plain facts
(a connector's status, a boot, a problem, a firmware step...). The status
worker folds them into the station's status record and the alerts worker
judges them with its rules; neither reads an OCPP payload itself.

Versions differ in shape, not in meaning, and the differences are settled here:

- 1.6 StatusNotification names a connector (0: the station itself) and carries
  an ``errorCode``; 2.0.1/2.1 name an EVSE and a connector and say problems
  through NotifyEvent instead. A 1.6 connector is reported as EVSE ``n``,
  connector ``None`` (1.6 has one connector per "connector").
- 1.6 DiagnosticsStatusNotification and 2.x LogStatusNotification are both
  :class:`Diagnostics`.
- A problem (:class:`Problem`) is a 2.x NotifyEvent about the ``Problem``
  variable, or any event triggered as ``Alerting``; ``cleared`` closes it.

Pure: no clock, no I/O. :func:`facts` raises
:class:`~contracts.ocpp.validation.PayloadError` for a payload that is not what
its action says (the runtime dead-letters the record).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelopes import DisconnectedPayload, RejectedPayload, StationEvent
from contracts.ocpp.validation import decode_request
from workers.sessions.meter import readings2, readings16, utc

__all__ = [
    "ACTIONS",
    "CRITICAL_SECURITY_EVENTS",
    "Authorized",
    "Boot",
    "Connection",
    "ConnectorStatus",
    "Diagnostics",
    "Fact",
    "Firmware",
    "Heard",
    "LoginRejected",
    "Meter",
    "Problem",
    "SecurityEvent",
    "Transaction",
    "facts",
]

# The security events OCPP 2.0.1 (Appendix 1) marks critical: a station sends them at
# once, queued while offline. The 1.6 security whitepaper uses the same names.
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
        "MaintenanceLoginAccepted",
        "MaintenanceLoginFailed",
    }
)

_FIRMWARE_FAILED = frozenset(
    {
        "DownloadFailed",
        "InstallationFailed",
        "InstallVerificationFailed",
        "InvalidSignature",
        "InstallRebootFailed",  # not in 2.0.1's enum, seen from stations; harmless if never sent
    }
)
_FIRMWARE_FINAL = _FIRMWARE_FAILED | {"Installed", "Idle"}
_DIAGNOSTICS_FAILED = frozenset(
    {"UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation", "PermissionDenied"}
)
_DIAGNOSTICS_FINAL = _DIAGNOSTICS_FAILED | {"Uploaded", "Idle", "AcceptedCanceled"}


@dataclasses.dataclass(frozen=True, slots=True)
class Heard:
    """The station said something on a connection: it is alive at ``at``."""

    at: datetime
    connection_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """A connection opened (``connected``) or ended, on gateway ``gateway_id``."""

    connected: bool
    connection_id: str
    gateway_id: str
    ocpp_version: str
    at: datetime
    close_code: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LoginRejected:
    """The gateway refused a connection attempt of the station (a security event)."""

    reason: str
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Boot:
    """What a BootNotification said; ``reason`` is 2.x's (1.6 gives none)."""

    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    reason: str | None
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """A StatusNotification: EVSE ``evse_id`` (0: the station), connector (None in 1.6)."""

    evse_id: int
    connector_id: int | None
    status: str
    error_code: str | None  # 1.6 only; "NoError" when all is well
    vendor_error_code: str | None
    info: str | None
    at: datetime  # the station's timestamp, else the receipt

    @property
    def faulted(self) -> bool:
        return self.status == "Faulted" or self.error_code not in (None, "NoError")


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """A 2.x NotifyEvent about a problem of a component, open until ``cleared``."""

    event_id: int
    component: str
    variable: str
    evse_id: int | None
    connector_id: int | None
    cleared: bool
    trigger: str
    value: str
    tech_code: str | None
    tech_info: str | None
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Firmware:
    """A firmware update's progress."""

    status: str
    request_id: int | None
    at: datetime

    @property
    def failed(self) -> bool:
        return self.status in _FIRMWARE_FAILED

    @property
    def final(self) -> bool:
        return self.status in _FIRMWARE_FINAL


@dataclasses.dataclass(frozen=True, slots=True)
class Diagnostics:
    """A diagnostics (1.6) or log (2.x) upload's progress."""

    status: str
    request_id: int | None
    at: datetime

    @property
    def failed(self) -> bool:
        return self.status in _DIAGNOSTICS_FAILED

    @property
    def final(self) -> bool:
        return self.status in _DIAGNOSTICS_FINAL


@dataclasses.dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A SecurityEventNotification, received ``at``; it happened at ``happened_at``.

    A station queues critical events while offline and sends them later: the
    two instants can be hours apart.
    """

    type: str
    tech_info: str | None
    at: datetime
    happened_at: datetime

    @property
    def critical(self) -> bool:
        return self.type in CRITICAL_SECURITY_EVENTS


@dataclasses.dataclass(frozen=True, slots=True)
class Authorized:
    """A driver presented an id token (Authorize): a transaction may follow."""

    id_token: str
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction started, went on (``Updated``) or ended on an EVSE.

    1.6 StopTransaction does not name its connector: ``evse_id`` is ``None``
    and ``transaction_id`` tells which one ended. 1.6 StartTransaction does not
    know its id yet (``""``: the worker answers it); a 1.6 MeterValues with a
    ``transactionId`` is an ``Updated`` that names it.
    """

    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    event: str  # Started, Updated, Ended
    charging_state: str | None
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Meter:
    """The latest register reading (Wh) and active power (W) an EVSE reported."""

    evse_id: int
    energy_wh: float | None
    power_w: float | None
    at: datetime


Fact = (
    Heard
    | Connection
    | LoginRejected
    | Authorized
    | Boot
    | ConnectorStatus
    | Problem
    | Firmware
    | Diagnostics
    | SecurityEvent
    | Transaction
    | Meter
)

_DISCONNECTED = msgspec.json.Decoder(DisconnectedPayload)
_REJECTED = msgspec.json.Decoder(RejectedPayload)


def facts(event: StationEvent) -> tuple[Fact, ...]:
    """What ``event`` says; raises ``PayloadError`` when its payload is not its action's."""
    at = event.received_at
    if event.kind == "connected":
        return (Connection(True, event.connection_id, event.gateway_id, event.ocpp_version, at),)
    if event.kind == "disconnected":
        code = _DISCONNECTED.decode(event.payload).close_code
        return (
            Connection(False, event.connection_id, event.gateway_id, event.ocpp_version, at, code),
        )
    if event.kind == "rejected":
        return (LoginRejected(_REJECTED.decode(event.payload).reason, at),)
    heard = Heard(at, event.connection_id)
    reader = _READERS.get((event.ocpp_version == "1.6", event.action or ""))
    if reader is None:
        return (heard,)
    request = decode_request(event.ocpp_version, event.action or "", event.payload)
    return (heard, *reader(request, at))


def _unset(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


def _boot16(request: Any, at: datetime) -> Iterator[Fact]:
    yield Boot(
        request.charge_point_vendor,
        request.charge_point_model,
        _unset(request.charge_point_serial_number),
        _unset(request.firmware_version),
        None,
        at,
    )


def _boot2(request: Any, at: datetime) -> Iterator[Fact]:
    station = request.charging_station
    yield Boot(
        station.vendor_name,
        station.model,
        _unset(station.serial_number),
        _unset(station.firmware_version),
        request.reason,
        at,
    )


def _status16(request: Any, at: datetime) -> Iterator[Fact]:
    timestamp = _unset(request.timestamp)
    yield ConnectorStatus(
        request.connector_id,
        None,
        request.status,
        request.error_code,
        _unset(request.vendor_error_code),
        _unset(request.info),
        at if timestamp is None else utc(timestamp),
    )


def _status2(request: Any, at: datetime) -> Iterator[Fact]:
    yield ConnectorStatus(
        request.evse_id,
        request.connector_id,
        request.connector_status,
        None,
        None,
        None,
        utc(request.timestamp),
    )


def _notify_event(request: Any, at: datetime) -> Iterator[Fact]:
    for data in request.event_data:
        if data.variable.name != "Problem" and data.trigger != "Alerting":
            continue
        evse = _unset(data.component.evse)
        cleared = data.cleared is True or (
            data.variable.name == "Problem" and data.actual_value.lower() == "false"
        )
        yield Problem(
            data.event_id,
            data.component.name,
            data.variable.name,
            None if evse is None else evse.id,
            None if evse is None else _unset(evse.connector_id),
            cleared,
            data.trigger,
            data.actual_value,
            _unset(data.tech_code),
            _unset(data.tech_info),
            utc(data.timestamp),
        )


def _firmware(request: Any, at: datetime) -> Iterator[Fact]:
    yield Firmware(request.status, _unset(getattr(request, "request_id", None)), at)


def _diagnostics(request: Any, at: datetime) -> Iterator[Fact]:
    yield Diagnostics(request.status, _unset(getattr(request, "request_id", None)), at)


def _security(request: Any, at: datetime) -> Iterator[Fact]:
    yield SecurityEvent(request.type, _unset(request.tech_info), at, utc(request.timestamp))


def _authorize16(request: Any, at: datetime) -> Iterator[Fact]:
    yield Authorized(request.id_tag, at)


def _authorize2(request: Any, at: datetime) -> Iterator[Fact]:
    yield Authorized(request.id_token.id_token, at)


def _start16(request: Any, at: datetime) -> Iterator[Fact]:
    # the transaction id is the worker's answer, not in the request: the connector says which
    yield Transaction("", request.connector_id, None, "Started", None, utc(request.timestamp))


def _stop16(request: Any, at: datetime) -> Iterator[Fact]:
    yield Transaction(
        str(request.transaction_id), None, None, "Ended", None, utc(request.timestamp)
    )


def _meter16(request: Any, at: datetime) -> Iterator[Fact]:
    readings = list(readings16(request.meter_value))
    power = _power(request.meter_value, sixteen=True)
    transaction_id = _unset(request.transaction_id)
    if transaction_id is not None:
        # the one 1.6 message before StopTransaction that names a running transaction's id
        yield Transaction(str(transaction_id), request.connector_id, None, "Updated", None, at)
    if readings or power is not None:
        last = readings[-1] if readings else None
        yield Meter(
            request.connector_id,
            None if last is None else last.wh,
            power,
            at if last is None else last.at,
        )


def _transaction2(request: Any, at: datetime) -> Iterator[Fact]:
    info = request.transaction_info
    evse = _unset(request.evse)
    evse_id = None if evse is None else evse.id
    yield Transaction(
        info.transaction_id,
        evse_id,
        None if evse is None else _unset(evse.connector_id),
        request.event_type,
        _unset(info.charging_state),
        utc(request.timestamp),
    )
    values = _unset(request.meter_value)
    if values is not None and evse_id is not None:
        yield from _meter2(evse_id, values, at)


def _meter_values2(request: Any, at: datetime) -> Iterator[Fact]:
    yield from _meter2(request.evse_id, request.meter_value, at)


def _meter2(evse_id: int, values: Any, at: datetime) -> Iterator[Fact]:
    readings = list(readings2(values))
    power = _power(values, sixteen=False)
    if readings or power is not None:
        last = readings[-1] if readings else None
        yield Meter(
            evse_id, None if last is None else last.wh, power, at if last is None else last.at
        )


_POWER = "Power.Active.Import"
_POWER_UNITS = {"W": 1.0, "kW": 1000.0}


def _power(meter_values: Any, *, sixteen: bool) -> float | None:
    """The last whole-connector active import power in W, if any value says it."""
    found: float | None = None
    for meter_value in meter_values:
        for sampled in meter_value.sampled_value:
            if sampled.measurand != _POWER or sampled.phase is not msgspec.UNSET:
                continue
            unit, multiplier = "W", 0
            if sixteen:
                if sampled.unit is not msgspec.UNSET:
                    unit = sampled.unit
                try:
                    value = float(sampled.value)
                except ValueError:
                    continue
            else:
                measure = sampled.unit_of_measure
                if measure is not msgspec.UNSET:
                    unit = "W" if measure.unit is msgspec.UNSET else measure.unit
                    multiplier = 0 if measure.multiplier is msgspec.UNSET else measure.multiplier
                value = float(sampled.value)
            factor = _POWER_UNITS.get(unit)
            if factor is not None and -9 <= multiplier <= 9:
                found = round(value * factor * 10.0**multiplier, 3)
    return found


_Reader = Callable[[Any, datetime], Iterator[Fact]]

# (is 1.6, action) -> what its request says
_READERS: dict[tuple[bool, str], _Reader] = {
    (True, "Authorize"): _authorize16,
    (True, "BootNotification"): _boot16,
    (True, "StatusNotification"): _status16,
    (True, "FirmwareStatusNotification"): _firmware,
    (True, "DiagnosticsStatusNotification"): _diagnostics,
    (True, "SecurityEventNotification"): _security,
    (True, "SignedFirmwareStatusNotification"): _firmware,
    (True, "LogStatusNotification"): _diagnostics,
    (True, "StartTransaction"): _start16,
    (True, "StopTransaction"): _stop16,
    (True, "MeterValues"): _meter16,
    (False, "Authorize"): _authorize2,
    (False, "BootNotification"): _boot2,
    (False, "StatusNotification"): _status2,
    (False, "NotifyEvent"): _notify_event,
    (False, "FirmwareStatusNotification"): _firmware,
    (False, "LogStatusNotification"): _diagnostics,
    (False, "SecurityEventNotification"): _security,
    (False, "TransactionEvent"): _transaction2,
    (False, "MeterValues"): _meter_values2,
}

ACTIONS = frozenset(action for _, action in _READERS)
"""The actions whose requests say something beyond "the station is alive"."""
