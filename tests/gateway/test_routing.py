"""The routing table: every station action has a route, every answer the gateway builds is valid."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from contracts.ocpp import VERSIONS, OcppVersion, actions
from contracts.ocpp.validation import decode_request, decode_response
from gateway.routing import Context, Handling, routes

CONTEXT = Context(
    now=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    heartbeat_interval=300,
    overloaded=False,
    boot_retry_interval=60,
)

DECISIONS = {  # the calls ARCHITECTURE.md says need a decision, where the version has them
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "DataTransfer",
    "SignCertificate",
    "Get15118EVCertificate",
    "GetCertificateStatus",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_station_action_has_a_route_and_no_csms_action_has_one(version: OcppVersion) -> None:
    table = routes()[version]
    station_actions = {n for n, a in actions(version).items() if a.initiator != "csms"}
    assert set(table) == station_actions


@pytest.mark.parametrize("version", VERSIONS)
def test_decision_calls_are_delegated(version: OcppVersion) -> None:
    table = routes()[version]
    for action in DECISIONS & set(table):
        assert table[action].handling is Handling.DELEGATE, action


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overloaded", [False, True])
def test_every_answer_the_gateway_builds_is_valid_for_its_version(
    version: OcppVersion, overloaded: bool
) -> None:
    context = Context(
        now=CONTEXT.now, heartbeat_interval=300, overloaded=overloaded, boot_retry_interval=60
    )
    answered = 0
    for name, route in routes()[version].items():
        if route.answer is None:
            continue
        payload = route.answer(None, context)
        decode_response(version, name, payload)  # raises if the schema refuses it
        answered += 1
    assert answered >= 5


def test_heartbeat_and_boot_answers_carry_the_time_and_interval() -> None:
    table = routes()["1.6"]
    heartbeat = msgspec.json.decode(table["Heartbeat"].answer(None, CONTEXT))  # type: ignore[misc]
    assert heartbeat == {"currentTime": "2026-03-01T12:00:00.123Z"}
    boot = table["BootNotification"].answer
    assert boot is not None
    assert msgspec.json.decode(boot(None, CONTEXT))["status"] == "Accepted"
    overloaded = Context(
        now=CONTEXT.now, heartbeat_interval=300, overloaded=True, boot_retry_interval=60
    )
    pending = msgspec.json.decode(boot(None, overloaded))
    assert (pending["status"], pending["interval"]) == ("Pending", 60)


def test_boot_goes_to_the_workers_under_the_workers_policy() -> None:
    assert routes("workers")["2.0.1"]["BootNotification"].handling is Handling.DELEGATE
    assert routes("accept")["2.0.1"]["BootNotification"].handling is Handling.ANSWER


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_transaction_event_is_delegated_only_with_an_id_token(version: OcppVersion) -> None:
    route = routes()[version]["TransactionEvent"]
    base = {
        "eventType": "Updated",
        "timestamp": "2026-03-01T12:00:00Z",
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "tx-1"},
    }
    without = decode_request(version, "TransactionEvent", msgspec.json.encode(base))
    with_token = decode_request(
        version,
        "TransactionEvent",
        msgspec.json.encode(base | {"idToken": {"idToken": "04A1B2", "type": "ISO14443"}}),
    )
    assert route.handling_for(without) is Handling.ANSWER
    assert route.handling_for(with_token) is Handling.DELEGATE
