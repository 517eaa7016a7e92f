"""The gateway's exception tree and the one function that turns an exception into a CALLERROR."""

from __future__ import annotations

import pytest

import gateway.errors
from contracts.ocpp import OcppVersion
from contracts.ocpp.errors import ERROR_CODES, Violation
from contracts.ocpp.validation import PayloadError, UnknownAction, decode_request
from contracts.ocppj import FrameError, MessageType
from gateway.errors import (
    INTERNAL_ERROR_DESCRIPTION,
    ActionNotSupported,
    CallInProgress,
    CallRefused,
    CommandRejected,
    GatewayError,
    StationNotAccepted,
    TooManyCalls,
    call_error,
)

VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "2.1")


def test_all_names_exist_and_are_public() -> None:
    for name in gateway.errors.__all__:
        assert hasattr(gateway.errors, name)
    public = {
        name
        for name, value in vars(gateway.errors).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == "gateway.errors"
    }
    assert public <= set(gateway.errors.__all__)


def test_tree() -> None:
    assert issubclass(CommandRejected, GatewayError)
    for refused in (ActionNotSupported, CallInProgress, TooManyCalls, StationNotAccepted):
        assert issubclass(refused, CallRefused)
    assert issubclass(CallRefused, GatewayError)


@pytest.mark.parametrize(
    "refused", [ActionNotSupported, CallInProgress, TooManyCalls, StationNotAccepted]
)
def test_refusals_have_a_default_description(refused: type[CallRefused]) -> None:
    assert refused().description
    assert refused("specific").description == "specific"


def test_command_rejected_says_why_and_whether_to_retry() -> None:
    invalid = CommandRejected("no such action")
    full = CommandRejected("queue full", retriable=True)
    assert (invalid.reason, invalid.retriable, str(invalid)) == (
        "no such action",
        False,
        "no such action",
    )
    assert full.retriable


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ActionNotSupported("Reset is not received"), "NotSupported"),
        (CallInProgress("message id 1 is in progress"), "GenericError"),
        (TooManyCalls("too many calls in progress"), "GenericError"),
        (StationNotAccepted("not accepted yet"), "SecurityError"),
    ],
)
def test_gateway_refusals_keep_their_code_and_description(
    version: OcppVersion, exc: CallRefused, code: str
) -> None:
    assert call_error(exc, version) == (code, exc.description)
    assert code in ERROR_CODES[version]


@pytest.mark.parametrize(
    ("violation", "codes"),
    [
        (Violation.FORMAT, ("FormationViolation", "FormatViolation", "FormatViolation")),
        (
            Violation.OCCURRENCE,
            (
                "OccurenceConstraintViolation",  # sic, 1.6 §4.2.3 and errata
                "OccurrenceConstraintViolation",
                "OccurrenceConstraintViolation",
            ),
        ),
        (Violation.TYPE, ("TypeConstraintViolation",) * 3),
        (Violation.PROPERTY, ("PropertyConstraintViolation",) * 3),
    ],
)
def test_case_17_payload_error_gets_the_version_spelling_with_path_and_reason(
    violation: Violation, codes: tuple[str, str, str]
) -> None:
    exc = PayloadError(violation, "$.meterValue[0]", "Expected `array`, got `str`")
    for version, code in zip(VERSIONS, codes, strict=True):
        assert call_error(exc, version) == (code, "$.meterValue[0]: Expected `array`, got `str`")
        assert code in ERROR_CODES[version]


def test_case_17_payload_error_from_the_decoder() -> None:
    with pytest.raises(PayloadError) as caught:
        decode_request("1.6", "StatusNotification", b'{"connectorId":"one"}')
    code, description = call_error(caught.value, "1.6")
    assert code == "TypeConstraintViolation"
    assert description.startswith("$.connectorId: ")


@pytest.mark.parametrize("version", VERSIONS)
def test_case_17_unknown_action_gets_not_implemented(version: OcppVersion) -> None:
    code, description = call_error(UnknownAction(version, "Fly", "request"), version)
    assert code == "NotImplemented"
    assert "Fly" in description


@pytest.mark.parametrize("version", VERSIONS)
def test_case_13_frame_error_keeps_its_code(version: OcppVersion) -> None:
    exc = FrameError(
        "-1",
        "RpcFrameworkError",
        "the frame is not valid JSON",
        message_type=None,
        reply=MessageType.CALL_ERROR,
    )
    assert call_error(exc, version) == ("RpcFrameworkError", "the frame is not valid JSON")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("kafka at 10.0.0.7:9092 did not answer"),
        KeyError("secret"),
        ValueError("password=hunter2"),
        GatewayError("internal state"),
        CommandRejected("queue full", retriable=True),
        TimeoutError(),
    ],
)
def test_unknown_exception_is_internal_error_with_no_details(
    version: OcppVersion, exc: Exception
) -> None:
    assert call_error(exc, version) == ("InternalError", INTERNAL_ERROR_DESCRIPTION)
    assert "InternalError" in ERROR_CODES[version]
