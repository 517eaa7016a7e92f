"""The payloads a simulated station sends, and its answers to the CSMS's calls, per OCPP version.

Payloads are built as JSON bytes (msgspec's encoder) and are valid against the
OCA schemas of their version; ``tests/loadtest/test_messages.py`` decodes every
one with ``contracts.ocpp.validation``. 2.1 stations are not simulated: a mix
naming 2.1 is refused by the CLI until they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

__all__ = [
    "SIMULATED_VERSIONS",
    "Clock",
    "answer",
    "authorize",
    "boot_notification",
    "data_transfer",
    "heartbeat",
    "meter_values",
    "start_transaction",
    "status_notification",
    "stop_transaction",
    "transaction_event",
]

SIMULATED_VERSIONS: Final = ("1.6", "2.0.1")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

# The measurands of a sampled meter reading, in the order they are added.
_MEASURANDS: Final = (
    ("Energy.Active.Import.Register", "Wh", "L1"),
    ("Power.Active.Import", "W", "L1"),
    ("Current.Import", "A", "L1"),
    ("Voltage", "V", "L1-N"),
    ("Current.Offered", "A", None),
    ("SoC", "Percent", None),
    ("Power.Offered", "W", None),
    ("Frequency", None, None),
)


class Clock:
    """The RFC 3339 timestamp of now, formatted once per second (stations send many)."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._text


def boot_notification(version: str, station: str) -> bytes:
    if version == "1.6":
        return _encode(
            {
                "chargePointVendor": "csms-loadtest",
                "chargePointModel": "simulated",
                "chargePointSerialNumber": station[-25:],
                "firmwareVersion": "1.0",
            }
        )
    return _encode(
        {
            "reason": "PowerUp",
            "chargingStation": {
                "vendorName": "csms-loadtest",
                "model": "simulated",
                "serialNumber": station[-25:],
                "firmwareVersion": "1.0",
            },
        }
    )


_HEARTBEAT: Final = b"{}"


def heartbeat(version: str) -> bytes:
    return _HEARTBEAT


def status_notification(version: str, connector: int, status: str, timestamp: str) -> bytes:
    """``status`` in 1.6 words (Available, Preparing, Charging, ...); mapped for 2.0.1."""
    if version == "1.6":
        return _encode(
            {
                "connectorId": connector,
                "errorCode": "NoError",
                "status": status,
                "timestamp": timestamp,
            }
        )
    status_201 = "Available" if status == "Available" else "Occupied"
    return _encode(
        {
            "timestamp": timestamp,
            "connectorStatus": status_201,
            "evseId": connector,
            "connectorId": 1,
        }
    )


def _sampled(version: str, count: int, energy_wh: float, context: str) -> list[dict[str, Any]]:
    values = []
    for index in range(count):
        measurand, unit, phase = _MEASURANDS[index % len(_MEASURANDS)]
        reading = energy_wh if index == 0 else 11040.0 / (index + 1)
        item: dict[str, Any] = {"context": context, "measurand": measurand, "location": "Outlet"}
        if version == "1.6":
            item["value"] = f"{reading:.1f}"
            if unit is not None:
                item["unit"] = unit
        else:
            item["value"] = round(reading, 1)
            if unit is not None:
                item["unitOfMeasure"] = {"unit": unit}
        if phase is not None:
            item["phase"] = phase
        values.append(item)
    return values


def meter_values(
    version: str,
    connector: int,
    timestamp: str,
    sampled_values: int,
    *,
    energy_wh: float = 48211.3,
    transaction_id: int | None = None,
    context: str = "Sample.Periodic",
) -> bytes:
    reading = {
        "timestamp": timestamp,
        "sampledValue": _sampled(version, sampled_values, energy_wh, context),
    }
    if version == "1.6":
        payload: dict[str, Any] = {"connectorId": connector, "meterValue": [reading]}
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        return _encode(payload)
    return _encode({"evseId": connector, "meterValue": [reading]})


def authorize(version: str, id_tag: str) -> bytes:
    if version == "1.6":
        return _encode({"idTag": id_tag})
    return _encode({"idToken": {"idToken": id_tag, "type": "ISO14443"}})


def data_transfer(version: str) -> bytes:
    return _encode({"vendorId": "csms-loadtest", "messageId": "ping", "data": "x"})


def start_transaction(version: str, connector: int, id_tag: str, timestamp: str) -> bytes:
    """1.6 StartTransaction (2.0.1 starts with a TransactionEvent: :func:`transaction_event`)."""
    return _encode(
        {"connectorId": connector, "idTag": id_tag, "meterStart": 0, "timestamp": timestamp}
    )


def stop_transaction(transaction_id: int, meter_stop: int, timestamp: str, id_tag: str) -> bytes:
    return _encode(
        {
            "transactionId": transaction_id,
            "meterStop": meter_stop,
            "timestamp": timestamp,
            "idTag": id_tag,
            "reason": "Local",
        }
    )


def transaction_event(
    event_type: str,
    transaction_id: str,
    seq_no: int,
    connector: int,
    timestamp: str,
    *,
    id_tag: str | None = None,
    sampled_values: int = 0,
    energy_wh: float = 0.0,
) -> bytes:
    """2.0.1 TransactionEvent: ``Started`` (with the id token), ``Updated``, ``Ended``."""
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "EVDeparted"}
    info: dict[str, Any] = {"transactionId": transaction_id}
    if event_type == "Ended":
        info["stoppedReason"] = "Local"
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": info,
        "evse": {"id": connector, "connectorId": 1},
    }
    if id_tag is not None:
        payload["idToken"] = {"idToken": id_tag, "type": "ISO14443"}
    if sampled_values:
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
            event_type, "Sample.Periodic"
        )
        payload["meterValue"] = [
            {
                "timestamp": timestamp,
                "sampledValue": _sampled("2.0.1", sampled_values, energy_wh, context),
            }
        ]
    return _encode(payload)


# --------------------------------------------------------------------------- answers

_ACCEPTED: Final = b'{"status":"Accepted"}'

_ANSWERS_16: Final[Mapping[str, bytes]] = {
    "CancelReservation": _ACCEPTED,
    "CertificateSigned": _ACCEPTED,
    "ChangeAvailability": _ACCEPTED,
    "ChangeConfiguration": _ACCEPTED,
    "ClearCache": _ACCEPTED,
    "ClearChargingProfile": _ACCEPTED,
    "DataTransfer": _ACCEPTED,
    "DeleteCertificate": _ACCEPTED,
    "ExtendedTriggerMessage": _ACCEPTED,
    "GetCompositeSchedule": b'{"status":"Rejected"}',
    "GetDiagnostics": b"{}",
    "GetInstalledCertificateIds": b'{"status":"NotFound"}',
    "GetLocalListVersion": b'{"listVersion":0}',
    "GetLog": b'{"status":"Rejected"}',
    "InstallCertificate": _ACCEPTED,
    "RemoteStartTransaction": _ACCEPTED,
    "RemoteStopTransaction": _ACCEPTED,
    "ReserveNow": _ACCEPTED,
    "Reset": _ACCEPTED,
    "SendLocalList": _ACCEPTED,
    "SetChargingProfile": _ACCEPTED,
    "SignedUpdateFirmware": _ACCEPTED,
    "TriggerMessage": _ACCEPTED,
    "UnlockConnector": b'{"status":"Unlocked"}',
    "UpdateFirmware": b"{}",
}

_ANSWERS_201: Final[Mapping[str, bytes]] = {
    "CancelReservation": _ACCEPTED,
    "CertificateSigned": _ACCEPTED,
    "ChangeAvailability": _ACCEPTED,
    "ClearCache": _ACCEPTED,
    "ClearChargingProfile": _ACCEPTED,
    "ClearDisplayMessage": _ACCEPTED,
    "CostUpdated": b"{}",
    "CustomerInformation": _ACCEPTED,
    "DataTransfer": _ACCEPTED,
    "DeleteCertificate": _ACCEPTED,
    "GetBaseReport": _ACCEPTED,
    "GetChargingProfiles": b'{"status":"NoProfiles"}',
    "GetCompositeSchedule": b'{"status":"Rejected"}',
    "GetDisplayMessages": b'{"status":"Unknown"}',
    "GetInstalledCertificateIds": b'{"status":"NotFound"}',
    "GetLocalListVersion": b'{"versionNumber":0}',
    "GetLog": b'{"status":"Rejected"}',
    "GetMonitoringReport": b'{"status":"NotSupported"}',
    "GetReport": b'{"status":"EmptyResultSet"}',
    "GetTransactionStatus": b'{"messagesInQueue":false}',
    "InstallCertificate": _ACCEPTED,
    "PublishFirmware": _ACCEPTED,
    "RequestStartTransaction": _ACCEPTED,
    "RequestStopTransaction": _ACCEPTED,
    "ReserveNow": _ACCEPTED,
    "Reset": _ACCEPTED,
    "SendLocalList": _ACCEPTED,
    "SetChargingProfile": _ACCEPTED,
    "SetDisplayMessage": _ACCEPTED,
    "SetMonitoringBase": _ACCEPTED,
    "SetMonitoringLevel": _ACCEPTED,
    "SetNetworkProfile": _ACCEPTED,
    "TriggerMessage": _ACCEPTED,
    "UnlockConnector": b'{"status":"Unlocked"}',
    "UnpublishFirmware": b'{"status":"NoFirmware"}',
    "UpdateFirmware": _ACCEPTED,
}


def _get_configuration(payload: bytes) -> bytes:
    wanted = _decode(payload).get("key") or ["HeartbeatInterval", "MeterValueSampleInterval"]
    known = {"HeartbeatInterval": "60", "MeterValueSampleInterval": "60"}
    return _encode(
        {
            "configurationKey": [
                {"key": key, "readonly": False, "value": known[key]}
                for key in wanted
                if key in known
            ],
            "unknownKey": [key for key in wanted if key not in known],
        }
    )


def _get_variables(payload: bytes) -> bytes:
    return _encode(
        {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                    "attributeValue": "60",
                }
                for item in _decode(payload)["getVariableData"]
            ]
        }
    )


def _set_variables(payload: bytes) -> bytes:
    return _encode(
        {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in _decode(payload)["setVariableData"]
            ]
        }
    )


def _clear_variable_monitoring(payload: bytes) -> bytes:
    ids = _decode(payload)["id"]
    return _encode({"clearMonitoringResult": [{"status": "NotFound", "id": i} for i in ids]})


def _set_variable_monitoring(payload: bytes) -> bytes:
    return _encode(
        {
            "setMonitoringResult": [
                {
                    "status": "Rejected",
                    "type": item["type"],
                    "severity": item["severity"],
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in _decode(payload)["setMonitoringData"]
            ]
        }
    )


_COMPUTED: Final[Mapping[tuple[str, str], Callable[[bytes], bytes]]] = {
    ("1.6", "GetConfiguration"): _get_configuration,
    ("2.0.1", "GetVariables"): _get_variables,
    ("2.0.1", "SetVariables"): _set_variables,
    ("2.0.1", "ClearVariableMonitoring"): _clear_variable_monitoring,
    ("2.0.1", "SetVariableMonitoring"): _set_variable_monitoring,
}


def answer(version: str, action: str, payload: bytes) -> bytes | None:
    """A valid CALLRESULT payload for the CSMS's ``action``; None when the action is not known.

    Raises ``ValueError`` (msgspec's errors derive from it) or ``KeyError`` on a
    payload the answer needs to read and cannot.
    """
    computed = _COMPUTED.get((version, action))
    if computed is not None:
        return computed(payload)
    table = _ANSWERS_16 if version == "1.6" else _ANSWERS_201
    return table.get(action)
