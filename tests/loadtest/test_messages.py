"""Every payload a simulated station sends, and every answer it gives, is valid for its version."""

from __future__ import annotations

import msgspec
import pytest

from contracts.ocpp import actions
from contracts.ocpp.validation import decode_request, decode_response
from loadtest import messages

TIMESTAMP = "2026-03-01T12:15:00Z"


def _requests(version: str) -> list[tuple[str, bytes]]:
    found = [
        ("BootNotification", messages.boot_notification(version, "LT-000001")),
        ("Heartbeat", messages.heartbeat(version)),
        ("StatusNotification", messages.status_notification(version, 2, "Charging", TIMESTAMP)),
        ("StatusNotification", messages.status_notification(version, 1, "Available", TIMESTAMP)),
        ("MeterValues", messages.meter_values(version, 1, TIMESTAMP, 4)),
        ("MeterValues", messages.meter_values(version, 1, TIMESTAMP, 8, context="Sample.Clock")),
        ("Authorize", messages.authorize(version, "TAG-1")),
        ("DataTransfer", messages.data_transfer(version)),
    ]
    if version == "1.6":
        found += [
            ("StartTransaction", messages.start_transaction(version, 1, "TAG-1", TIMESTAMP)),
            ("StopTransaction", messages.stop_transaction(7, 1500, TIMESTAMP, "TAG-1")),
            ("MeterValues", messages.meter_values(version, 1, TIMESTAMP, 4, transaction_id=7)),
        ]
    else:
        found += [
            ("TransactionEvent", messages.transaction_event(
                "Started", "tx-1", 0, 1, TIMESTAMP, id_tag="TAG-1")),
            ("TransactionEvent", messages.transaction_event(
                "Updated", "tx-1", 1, 1, TIMESTAMP, sampled_values=4, energy_wh=12.5)),
            ("TransactionEvent", messages.transaction_event(
                "Ended", "tx-1", 2, 1, TIMESTAMP, sampled_values=1)),
        ]  # fmt: skip
    return found


@pytest.mark.parametrize("version", messages.SIMULATED_VERSIONS)
def test_every_request_is_valid(version: str) -> None:
    for action, payload in _requests(version):
        decode_request(version, action, payload)  # type: ignore[arg-type]


def test_meter_values_carry_the_asked_number_of_sampled_values() -> None:
    payload = msgspec.json.decode(messages.meter_values("1.6", 1, TIMESTAMP, 4))
    assert len(payload["meterValue"][0]["sampledValue"]) == 4


# what the CSMS sends that needs a real payload to be answered
REQUESTS = {
    ("1.6", "GetConfiguration"): b'{"key":["HeartbeatInterval","Nope"]}',
    ("2.0.1", "GetVariables"): b'{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},'
    b'"variable":{"name":"HeartbeatInterval"}}]}',
    ("2.0.1", "SetVariables"): b'{"setVariableData":[{"attributeValue":"60",'
    b'"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}',
    ("2.0.1", "ClearVariableMonitoring"): b'{"id":[3,4]}',
    ("2.0.1", "SetVariableMonitoring"): b'{"setMonitoringData":[{"value":1,"type":"Delta",'
    b'"severity":5,"component":{"name":"EVSE"},"variable":{"name":"Power"}}]}',
}


@pytest.mark.parametrize("version", messages.SIMULATED_VERSIONS)
def test_every_csms_call_gets_a_valid_answer(version: str) -> None:
    answered = 0
    for name, action in actions(version).items():  # type: ignore[arg-type]
        if action.initiator == "station" or action.response is None:
            continue
        payload = messages.answer(version, name, REQUESTS.get((version, name), b"{}"))
        assert payload is not None, f"{version} {name} has no answer"
        decode_response(version, name, payload)  # type: ignore[arg-type]
        answered += 1
    assert answered > 20


def test_get_configuration_answers_known_and_unknown_keys() -> None:
    payload = messages.answer("1.6", "GetConfiguration", REQUESTS[("1.6", "GetConfiguration")])
    assert payload is not None
    answer = msgspec.json.decode(payload)
    assert [k["key"] for k in answer["configurationKey"]] == ["HeartbeatInterval"]
    assert answer["unknownKey"] == ["Nope"]


def test_an_unknown_action_has_no_answer() -> None:
    assert messages.answer("1.6", "FlyToTheMoon", b"{}") is None
