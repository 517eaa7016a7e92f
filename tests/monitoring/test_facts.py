"""What events say about a station, the same way for OCPP 1.6, 2.0.1 and 2.1."""

from __future__ import annotations

import pytest

from contracts.envelopes import StationEvent
from contracts.ocpp.validation import PayloadError
from tests.workers.harness import T0, station_event
from workers.status.facts import (
    Boot,
    ConnectorStatus,
    Firmware,
    Heard,
    Meter,
    Problem,
    SecurityEvent,
    Transaction,
    facts,
)

AT = "2026-03-01T12:00:00Z"


def event(action: str, payload: dict[str, object], version: str = "1.6") -> StationEvent:
    return station_event("CP-1", action, payload, version=version, received_at=T0)


def test_a_16_status_with_an_error_code_is_a_fault_of_its_connector() -> None:
    heard, status = facts(
        event(
            "StatusNotification",
            {"connectorId": 2, "errorCode": "GroundFailure", "status": "Available"},
        )
    )
    assert heard == Heard(T0, "conn-test")
    assert isinstance(status, ConnectorStatus)
    assert (status.evse_id, status.connector_id, status.faulted) == (2, None, True)
    fine = facts(
        event(
            "StatusNotification", {"connectorId": 2, "errorCode": "NoError", "status": "Charging"}
        )
    )[1]
    assert isinstance(fine, ConnectorStatus) and not fine.faulted


def test_a_201_problem_opens_and_clears_by_its_component_and_evse() -> None:
    def notify(cleared: bool) -> Problem:
        data = {
            "eventId": 7,
            "timestamp": AT,
            "trigger": "Delta",
            "actualValue": "true",
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "Problem"},
            "cleared": cleared,
        }
        body = {"generatedAt": AT, "seqNo": 0, "eventData": [data]}
        (_, problem) = facts(event("NotifyEvent", body, "2.0.1"))
        assert isinstance(problem, Problem)
        return problem

    opened, closed = notify(False), notify(True)
    assert (opened.component, opened.evse_id, opened.connector_id) == ("Connector", 1, 1)
    assert (opened.cleared, closed.cleared) == (False, True)


def test_boots_firmware_and_security_events_of_both_versions() -> None:
    (_, boot16) = facts(
        event("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    )
    (_, boot2) = facts(
        event(
            "BootNotification",
            {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "Watchdog"},
            "2.0.1",
        )
    )
    assert boot16 == Boot("V", "M", None, None, None, T0)
    assert isinstance(boot2, Boot) and boot2.reason == "Watchdog"
    (_, failed) = facts(
        event("FirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 3}, "2.1")
    )
    assert isinstance(failed, Firmware) and failed.failed and failed.final
    assert failed.request_id == 3
    (_, tamper) = facts(
        event("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": AT})
    )
    assert isinstance(tamper, SecurityEvent) and tamper.critical


def test_a_transaction_event_gives_the_transaction_and_its_meter() -> None:
    body = {
        "eventType": "Updated",
        "timestamp": AT,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "T-1", "chargingState": "Charging"},
        "evse": {"id": 2, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": AT,
                "sampledValue": [
                    {"value": 12.5, "unitOfMeasure": {"unit": "kWh"}},
                    {
                        "value": 7.4,
                        "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "kW"},
                    },
                ],
            }
        ],
    }
    (_, transaction, meter) = facts(event("TransactionEvent", body, "2.0.1"))
    assert transaction == Transaction("T-1", 2, 1, "Updated", "Charging", T0)
    assert meter == Meter(2, 12500.0, 7400.0, T0)


def test_a_payload_that_is_not_its_action_is_refused() -> None:
    with pytest.raises(PayloadError):
        facts(event("StatusNotification", {"connectorId": "two"}))


def test_a_16_meter_value_names_its_running_transaction() -> None:
    sampled = {"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    body = {
        "connectorId": 2,
        "transactionId": 4217,
        "meterValue": [{"timestamp": AT, "sampledValue": [sampled]}],
    }
    (_, transaction, meter) = facts(event("MeterValues", body))
    assert transaction == Transaction("4217", 2, None, "Updated", None, T0)
    assert meter == Meter(2, 1500.0, None, T0)
    del body["transactionId"]
    assert [type(f) for f in facts(event("MeterValues", body))] == [Heard, Meter]
