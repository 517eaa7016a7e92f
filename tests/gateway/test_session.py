"""The OCPP-J session, fed text and time: every rule of OCPP-J, no loop, no socket.

Test names carry the RELIABILITY.md case they check (13-21).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from contracts.ocpp import OcppVersion
from contracts.ocpp.errors import ERROR_CODES, FRAMING_ERROR, Violation, error_code
from contracts.ocpp.v16 import HeartbeatRequest, ResetResponse
from gateway.errors import CommandRejected
from gateway.session import (
    CloseRequested,
    CommandAborted,
    CommandAnswered,
    CommandExpired,
    CommandFailed,
    CommandTimedOut,
    Event,
    ProtocolIssue,
    Session,
    SessionLimits,
    StationCall,
    StationSend,
)

VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "2.1")

BOOT: dict[OcppVersion, bytes] = {
    "1.6": b'{"chargePointVendor":"V","chargePointModel":"M"}',
    "2.0.1": b'{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}',
    "2.1": b'{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}',
}
RESET: dict[OcppVersion, bytes] = {
    "1.6": b'{"type":"Hard"}',
    "2.0.1": b'{"type":"Immediate"}',
    "2.1": b'{"type":"Immediate"}',
}
ACCEPTED = b'{"status":"Accepted"}'
HEARTBEAT_RESPONSE = b'{"currentTime":"2024-01-01T00:00:00Z"}'
PERIODIC_STREAM = b'{"id":1,"pending":0,"basetime":"2024-08-27T12:30:40Z","data":[{"t":0,"v":"1"}]}'


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Ids:
    """Deterministic message ids: csms-1, csms-2, ..."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def __call__(self) -> str:
        self.issued.append(f"csms-{len(self.issued) + 1}")
        return self.issued[-1]


def make(
    version: OcppVersion = "1.6", clock: Clock | None = None, **limits: int
) -> tuple[Session, Clock]:
    clock = clock or Clock()
    session = Session(version, SessionLimits(**limits), clock=clock, new_message_id=Ids())
    return session, clock


def sent(session: Session) -> list[Any]:
    """The frames to send, decoded."""
    return [json.loads(frame) for frame in session.data_to_send()]


def events(session: Session) -> list[Event]:
    return session.events_received()


def issues(session: Session) -> list[str]:
    return [e.kind for e in session.events_received() if isinstance(e, ProtocolIssue)]


def call_frame(message_id: str, action: str, payload: bytes = b"{}") -> bytes:
    return b'[2,"%s","%s",%s]' % (message_id.encode(), action.encode(), payload)


def station_call(session: Session, message_id: str = "m1", action: str = "Heartbeat") -> None:
    """A valid station CALL, its event drained."""
    session.receive_text(call_frame(message_id, action))
    (event,) = session.events_received()
    assert isinstance(event, StationCall)


# --- limits ----------------------------------------------------------------------------


def test_limits_defaults() -> None:
    limits = SessionLimits()
    assert limits.max_bad_frames == 10
    assert limits.max_station_calls_in_flight == 4
    assert limits.replay_cache_size == 4
    assert limits.max_queued_commands == 64


@pytest.mark.parametrize(
    "bad",
    [
        {"max_bad_frames": 0},
        {"max_station_calls_in_flight": 0},
        {"replay_cache_size": -1},
        {"max_queued_commands": -1},
    ],
)
def test_limits_refuse_nonsense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SessionLimits(**bad)


# --- station calls ---------------------------------------------------------------------


def test_station_call_becomes_an_event_with_raw_payload_and_decoded_request() -> None:
    session, _ = make("1.6")
    session.receive_text(b'[2,"m1","Heartbeat",{}]')
    (event,) = events(session)
    assert isinstance(event, StationCall)
    assert (event.message_id, event.action, bytes(event.payload)) == ("m1", "Heartbeat", b"{}")
    assert event.request == HeartbeatRequest()
    assert session.station_calls_in_flight == 1
    assert session.data_to_send() == []


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_station_call_from_any_bytes_like_text(kind: type[bytearray | memoryview]) -> None:
    session, _ = make("1.6")
    session.receive_text(kind(b'[2,"m1","Heartbeat",{}]'))
    (event,) = events(session)
    assert isinstance(event, StationCall)
    session.receive_text(kind(b'[2,"m2","Heartbeat",[]]'))
    [[_, message_id, code, _, _]] = sent(session)
    assert (message_id, code) == ("m2", "FormationViolation")


@pytest.mark.parametrize("version", VERSIONS)
def test_answer_sends_the_callresult_verbatim(version: OcppVersion) -> None:
    session, _ = make(version)
    session.receive_text(call_frame("m1", "BootNotification", BOOT[version]).decode())  # str too
    events(session)
    session.answer("m1", msgspec.Raw(HEARTBEAT_RESPONSE))
    assert session.data_to_send() == [b'[3,"m1",' + HEARTBEAT_RESPONSE + b"]"]
    assert session.station_calls_in_flight == 0
    assert session.data_to_send() == []  # drained


def test_answer_error_sends_a_callerror_with_details() -> None:
    session, _ = make("2.0.1")
    station_call(session)
    session.answer_error("m1", "InternalError", "try again", b'{"retry":true}')
    assert sent(session) == [[4, "m1", "InternalError", "try again", {"retry": True}]]
    assert session.station_calls_in_flight == 0


@pytest.mark.parametrize("details", [b"null", b"[]", b"1,2", b'{"a":'])
def test_answer_error_with_details_that_are_not_an_object_sends_empty_details(
    details: bytes,
) -> None:
    session, _ = make("2.0.1")
    station_call(session)
    session.answer_error("m1", "GenericError", "no", details)
    assert sent(session) == [[4, "m1", "GenericError", "no", {}]]
    assert issues(session) == ["invalid_reply"]


def test_answer_error_with_a_code_the_version_lacks_sends_internal_error() -> None:
    session, _ = make("1.6")
    station_call(session)
    session.answer_error("m1", "RpcFrameworkError", "not a 1.6 code")
    assert sent(session) == [[4, "m1", "InternalError", "internal error", {}]]
    assert issues(session) == ["invalid_reply"]


def test_answer_with_validate_sends_a_valid_reply() -> None:
    session, _ = make("1.6")
    station_call(session)
    session.answer("m1", HEARTBEAT_RESPONSE, validate=True)
    assert sent(session) == [[3, "m1", json.loads(HEARTBEAT_RESPONSE)]]


def test_answer_with_validate_replaces_an_invalid_reply_by_internal_error() -> None:
    session, _ = make("1.6")
    station_call(session)
    session.answer("m1", b'{"currentTime":12}', validate=True)
    assert sent(session) == [[4, "m1", "InternalError", "internal error", {}]]
    (issue,) = events(session)
    assert isinstance(issue, ProtocolIssue)
    assert (issue.kind, issue.message_id) == ("invalid_reply", "m1")
    assert "$.currentTime" in issue.detail
    assert session.station_calls_in_flight == 0


@pytest.mark.parametrize("answered_twice", [False, True])
def test_answer_for_an_id_not_in_flight_is_ignored(answered_twice: bool) -> None:
    session, _ = make("1.6")
    if answered_twice:
        station_call(session, "m1")
        session.answer("m1", HEARTBEAT_RESPONSE)
        session.data_to_send()
    session.answer("m1", HEARTBEAT_RESPONSE)
    session.answer_error("m1", "GenericError")
    assert session.data_to_send() == []
    assert issues(session) == ["answer_not_in_flight", "answer_not_in_flight"]


def test_station_calls_in_flight_are_bounded_with_generic_error() -> None:
    session, _ = make("1.6", max_station_calls_in_flight=2)
    station_call(session, "m1")
    station_call(session, "m2")
    session.receive_text(call_frame("m3", "Heartbeat"))
    assert sent(session) == [[4, "m3", "GenericError", "too many calls in progress", {}]]
    assert issues(session) == ["too_many_calls"]
    session.answer("m1", HEARTBEAT_RESPONSE)
    station_call(session, "m3")  # room again
    assert session.station_calls_in_flight == 2


def test_case_19_duplicate_id_in_flight_gets_callerror_and_no_second_event() -> None:
    session, _ = make("2.0.1")
    station_call(session, "m1")
    session.receive_text(call_frame("m1", "Heartbeat"))
    assert sent(session) == [[4, "m1", "GenericError", "message id m1 is in progress", {}]]
    assert issues(session) == ["duplicate_call"]  # no second StationCall
    session.answer("m1", HEARTBEAT_RESPONSE)  # the first call is still answerable
    assert sent(session) == [[3, "m1", json.loads(HEARTBEAT_RESPONSE)]]


@pytest.mark.parametrize("version", VERSIONS)
def test_case_19_retry_after_answer_replays_same_answer(version: OcppVersion) -> None:
    session, _ = make(version)
    station_call(session, "m1")
    session.answer("m1", HEARTBEAT_RESPONSE)
    first = session.data_to_send()
    session.receive_text(call_frame("m1", "Heartbeat"))
    assert session.data_to_send() == first  # byte for byte
    assert issues(session) == ["replayed_answer"]  # exactly one StationCall in all
    assert session.station_calls_in_flight == 0


def test_case_19_retry_after_callerror_is_a_new_call() -> None:
    # A CALL refused (Kafka did not acknowledge in time) must succeed on retry (case 22).
    session, _ = make("1.6")
    station_call(session, "m1")
    session.answer_error("m1", "InternalError")
    session.data_to_send()
    station_call(session, "m1")


def test_case_19_retry_with_another_action_is_not_replayed() -> None:
    session, _ = make("1.6")
    station_call(session, "m1", "Heartbeat")
    session.answer("m1", HEARTBEAT_RESPONSE)
    session.data_to_send()
    session.receive_text(call_frame("m1", "BootNotification", BOOT["1.6"]))
    (event,) = events(session)
    assert isinstance(event, StationCall)
    assert event.action == "BootNotification"
    assert session.data_to_send() == []


def test_case_19_replay_cache_keeps_only_the_last_answers() -> None:
    session, _ = make("1.6", replay_cache_size=2)
    for message_id in ("m1", "m2", "m3"):
        station_call(session, message_id)
        session.answer(message_id, HEARTBEAT_RESPONSE)
    session.data_to_send()
    session.receive_text(call_frame("m1", "Heartbeat"))  # evicted: handled as a new call
    assert [type(e) for e in events(session)] == [StationCall]
    session.receive_text(call_frame("m3", "Heartbeat"))
    assert issues(session) == ["replayed_answer"]
    assert sent(session) == [[3, "m3", json.loads(HEARTBEAT_RESPONSE)]]


def test_case_19_replay_cache_can_be_disabled() -> None:
    session, _ = make("1.6", replay_cache_size=0)
    station_call(session, "m1")
    session.answer("m1", HEARTBEAT_RESPONSE)
    station_call(session, "m1")


# --- case 13-16: framing -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "data", [b"", b"[2,", b"not json", b'{"a":1}', b'"text"', b"42", b"null", b"[2,\xff]"]
)
def test_case_13_malformed_json_or_not_an_array_gets_callerror_minus_one(
    version: OcppVersion, data: bytes
) -> None:
    session, _ = make(version)
    session.receive_text(data)
    [[message_type, message_id, code, _description, details]] = sent(session)
    assert (message_type, message_id, code, details) == (4, "-1", FRAMING_ERROR[version], {})
    assert issues(session) == ["bad_frame"]


def test_case_13_codes_per_version() -> None:
    assert FRAMING_ERROR == {
        "1.6": "FormationViolation",
        "2.0.1": "RpcFrameworkError",
        "2.1": "RpcFrameworkError",
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_case_13_close_requested_once_after_max_bad_frames(version: OcppVersion) -> None:
    session, _ = make(version, max_bad_frames=3)
    for _ in range(2):
        session.receive_text(b"garbage")
    session.receive_text(call_frame("ok", "Heartbeat"))  # good frames do not reset the count
    session.receive_text(b"garbage")
    kinds = [type(e) for e in events(session)]
    assert kinds == [ProtocolIssue, ProtocolIssue, StationCall, ProtocolIssue, CloseRequested]
    assert len(sent(session)) == 3  # the third bad frame is still answered
    close = [e for e in kinds if e is CloseRequested]
    assert len(close) == 1
    session.receive_text(b"garbage")
    session.receive_text(call_frame("later", "Heartbeat"))
    session.receive_binary(b"\x00")
    assert events(session) == []  # once, and nothing after it
    assert session.data_to_send() == []


def test_case_13_close_requested_carries_1008() -> None:
    session, _ = make("1.6", max_bad_frames=1)
    session.receive_text(b"[")
    close = events(session)[-1]
    assert isinstance(close, CloseRequested)
    assert close.code == 1008
    assert close.reason


def test_case_13_payload_violations_do_not_count_as_bad_frames() -> None:
    session, _ = make("1.6", max_bad_frames=2)
    for n in range(5):
        session.receive_text(call_frame(f"m{n}", "Heartbeat", b'{"x":1}'))
        session.receive_text(call_frame(f"u{n}", "NoSuchAction"))
    assert not any(isinstance(e, CloseRequested) for e in events(session))
    assert len(sent(session)) == 10


def test_case_14_unknown_message_type_is_ignored_on_16() -> None:
    session, _ = make("1.6")
    for frame in (b'[5,"m1","x","y",{}]', b'[6,"m1","Heartbeat",{}]', b'[9,"m1",{}]'):
        session.receive_text(frame)
    assert session.data_to_send() == []
    assert issues(session) == ["bad_frame"] * 3


@pytest.mark.parametrize(("version", "message_type"), [("2.0.1", 5), ("2.0.1", 6), ("2.1", 7)])
def test_case_14_unknown_message_type_gets_message_type_not_supported_on_2x(
    version: OcppVersion, message_type: int
) -> None:
    session, _ = make(version)
    session.receive_text(b'[%d,"m1","Heartbeat",{}]' % message_type)
    [[_, message_id, code, _, _]] = sent(session)
    assert (message_id, code) == ("m1", "MessageTypeNotSupported")


@pytest.mark.parametrize("version", VERSIONS)
def test_case_15_binary_frame_gets_callerror_minus_one_and_counts(version: OcppVersion) -> None:
    session, _ = make(version, max_bad_frames=2)
    session.receive_binary(b'[2,"m1","Heartbeat",{}]')
    assert sent(session) == [
        [4, "-1", FRAMING_ERROR[version], "OCPP-J frames are text, not binary", {}]
    ]
    assert issues(session) == ["bad_frame"]
    session.receive_binary(b"\xff\x00")
    assert isinstance(events(session)[-1], CloseRequested)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("message_id", "answered_id"),
    [
        (json.dumps("x" * 37), "-1"),  # too long: not echoed
        ('""', "-1"),  # empty
        ("17", "-1"),  # not a string
        ("null", "-1"),
    ],
)
def test_case_16_unreadable_message_id_gets_callerror(
    version: OcppVersion, message_id: str, answered_id: str
) -> None:
    session, _ = make(version)
    session.receive_text(f'[2,{message_id},"Heartbeat",{{}}]')
    [[message_type, answer_id, code, _, _]] = sent(session)
    assert (message_type, answer_id, code) == (4, answered_id, FRAMING_ERROR[version])
    assert issues(session) == ["bad_frame"]


def test_case_16_message_id_of_36_characters_is_fine() -> None:
    session, _ = make("2.0.1")
    station_call(session, "x" * 36)


@pytest.mark.parametrize("version", VERSIONS)
def test_wrong_element_count_gets_callerror_with_the_frame_id(version: OcppVersion) -> None:
    session, _ = make(version)
    session.receive_text(b'[2,"m1","Heartbeat",{},{}]')
    [[_, message_id, code, _, _]] = sent(session)
    assert (message_id, code) == ("m1", FRAMING_ERROR[version])


@pytest.mark.parametrize("version", VERSIONS)
def test_payload_that_is_not_an_object_gets_format_violation(version: OcppVersion) -> None:
    session, _ = make(version)
    session.receive_text(b'[2,"m1","Heartbeat",[]]')
    [[_, message_id, code, _, _]] = sent(session)
    assert (message_id, code) == ("m1", error_code(Violation.FORMAT, version))


def test_broken_callerror_from_the_station_is_never_answered() -> None:
    session, _ = make("2.0.1")
    session.receive_text(b'[4,"m1","NoSuchCode","",{}]')
    assert session.data_to_send() == []
    assert issues(session) == ["bad_frame"]


# --- case 17: actions and payloads ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_case_17_unknown_action_gets_not_implemented(version: OcppVersion) -> None:
    session, _ = make(version)
    session.receive_text(call_frame("m1", "NoSuchAction"))
    [[_, message_id, code, description, _]] = sent(session)
    assert (message_id, code) == ("m1", "NotImplemented")
    assert "NoSuchAction" in description
    assert issues(session) == ["invalid_call"]
    assert session.station_calls_in_flight == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_case_17_action_the_csms_does_not_receive_gets_not_supported(version: OcppVersion) -> None:
    session, _ = make(version)
    session.receive_text(call_frame("m1", "Reset", RESET[version]))
    [[_, message_id, code, _, _]] = sent(session)
    assert (message_id, code) == ("m1", "NotSupported")
    assert issues(session) == ["invalid_call"]


def test_case_17_send_action_as_a_call_gets_not_supported() -> None:
    session, _ = make("2.1")
    session.receive_text(call_frame("m1", "NotifyPeriodicEventStream", PERIODIC_STREAM))
    [[_, _, code, _, _]] = sent(session)
    assert code == "NotSupported"


STATION = b'"chargingStation":{"model":"M","vendorName":"V"}'
VIOLATIONS: list[tuple[OcppVersion, str, bytes, Violation, str]] = [
    ("1.6", "BootNotification", b'{"chargePointVendor":"V"}', Violation.OCCURRENCE, "$"),
    (
        "1.6",
        "BootNotification",
        b'{"chargePointVendor":1,"chargePointModel":"M"}',
        Violation.TYPE,
        "$.chargePointVendor",
    ),
    (
        "1.6",
        "BootNotification",
        b'{"chargePointVendor":"%s","chargePointModel":"M"}' % (b"v" * 21),  # maxLength 20
        Violation.PROPERTY,
        "$.chargePointVendor",
    ),
    ("1.6", "Heartbeat", b'{"x":1}', Violation.FORMAT, "$"),
    (
        "1.6",
        "StatusNotification",
        b'{"connectorId":1,"errorCode":"NoError","status":"Bogus"}',
        Violation.PROPERTY,
        "$.status",
    ),
]
for _version in ("2.0.1", "2.1"):
    VIOLATIONS += [
        (_version, "BootNotification", b'{"reason":"PowerUp"}', Violation.OCCURRENCE, "$"),
        (_version, "BootNotification", b'{"reason":1,%s}' % STATION, Violation.TYPE, "$.reason"),
        (
            _version,
            "BootNotification",
            b'{"reason":"Bogus",%s}' % STATION,
            Violation.PROPERTY,
            "$.reason",
        ),
        (_version, "Heartbeat", b'{"x":1}', Violation.FORMAT, "$"),
    ]


@pytest.mark.parametrize(("version", "action", "payload", "violation", "path"), VIOLATIONS)
def test_case_17_payload_violation_gets_the_precise_code_of_the_version(
    version: OcppVersion, action: str, payload: bytes, violation: Violation, path: str
) -> None:
    session, _ = make(version)
    session.receive_text(call_frame("m1", action, payload))
    [[message_type, message_id, code, description, details]] = sent(session)
    assert (message_type, message_id, details) == (4, "m1", {})
    assert code == error_code(violation, version)
    assert code in ERROR_CODES[version]
    assert description.startswith(f"{path}: ")
    assert "Traceback" not in description
    assert issues(session) == ["invalid_call"]
    assert session.station_calls_in_flight == 0


def test_case_17_spelling_of_16_occurrence_code() -> None:
    session, _ = make("1.6")
    session.receive_text(call_frame("m1", "BootNotification", b"{}"))
    [[_, _, code, _, _]] = sent(session)
    assert code == "OccurenceConstraintViolation"  # sic: OCPP-J 1.6 §4.2.3, errata 5.2


# --- 2.1 SEND and CALLRESULTERROR ---------------------------------------------------------


def test_send_becomes_an_event_and_gets_no_answer() -> None:
    session, _ = make("2.1")
    session.receive_text(b'[6,"s1","NotifyPeriodicEventStream",%s]' % PERIODIC_STREAM)
    (event,) = events(session)
    assert isinstance(event, StationSend)
    assert (event.message_id, event.action, bytes(event.payload)) == (
        "s1",
        "NotifyPeriodicEventStream",
        PERIODIC_STREAM,
    )
    assert session.data_to_send() == []
    assert session.station_calls_in_flight == 0


@pytest.mark.parametrize(
    "frame",
    [
        b'[6,"s1","NoSuchAction",{}]',
        b'[6,"s1","Heartbeat",{}]',  # not a SEND message
        b'[6,"s1","NotifyPeriodicEventStream",{"id":1}]',
    ],
)
def test_invalid_send_is_dropped_without_answer(frame: bytes) -> None:
    session, _ = make("2.1")
    session.receive_text(frame)
    assert session.data_to_send() == []
    assert issues(session) == ["invalid_send"]


def test_case_19_retry_after_callresulterror_is_a_new_call() -> None:
    # The station could not process our answer: replaying it would not help.
    session, _ = make("2.1")
    station_call(session, "m1")
    session.answer("m1", HEARTBEAT_RESPONSE)
    session.data_to_send()
    session.receive_text(b'[5,"m1","FormatViolation","cannot read it",{}]')
    assert issues(session) == ["answer_rejected"]
    station_call(session, "m1")


def test_callresulterror_about_our_answer_is_reported() -> None:
    session, _ = make("2.1")
    session.receive_text(b'[5,"m1","FormatViolation","cannot read it",{}]')
    (issue,) = events(session)
    assert isinstance(issue, ProtocolIssue)
    assert (issue.kind, issue.message_id) == ("answer_rejected", "m1")
    assert session.data_to_send() == []


# --- commands to the station --------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_call_sends_a_call_with_a_fresh_id(version: OcppVersion) -> None:
    session, clock = make(version)
    session.call("cmd-1", "Reset", RESET[version], timeout=30)
    assert sent(session) == [[2, "csms-1", "Reset", json.loads(RESET[version])]]
    assert session.outstanding_command == "cmd-1"
    assert session.next_deadline() == clock.now + 30
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)
    (answered,) = events(session)
    assert isinstance(answered, CommandAnswered)
    assert (answered.command_id, answered.action, answered.message_id) == (
        "cmd-1",
        "Reset",
        "csms-1",
    )
    assert bytes(answered.payload) == ACCEPTED
    assert answered.response.status == "Accepted"  # type: ignore[attr-defined]
    assert session.outstanding_command is None
    assert session.next_deadline() is None


def test_command_answered_has_the_decoded_response_type() -> None:
    session, _ = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)
    (answered,) = events(session)
    assert isinstance(answered, CommandAnswered)
    assert answered.response == ResetResponse(status="Accepted")


@pytest.mark.parametrize(
    ("action", "payload", "reason"),
    [
        ("NoSuchAction", b"{}", "no action NoSuchAction"),
        ("Heartbeat", b"{}", "does not receive Heartbeat"),
        ("Reset", b'{"type":"Soft-ish"}', "invalid Reset payload: $.type"),
        ("Reset", b"{", "invalid Reset payload"),
    ],
)
def test_call_rejects_a_command_that_is_not_valid(action: str, payload: bytes, reason: str) -> None:
    session, _ = make("1.6")
    with pytest.raises(CommandRejected) as caught:
        session.call("cmd-1", action, payload, timeout=30)
    assert reason in caught.value.reason
    assert not caught.value.retriable
    assert session.data_to_send() == []
    assert session.queued_commands == 0


def test_call_accepts_an_action_both_sides_send() -> None:
    session, _ = make("1.6")
    session.call("cmd-1", "DataTransfer", b'{"vendorId":"V"}', timeout=30)
    assert sent(session) == [[2, "csms-1", "DataTransfer", {"vendorId": "V"}]]


def test_call_rejects_when_the_queue_is_full_as_retriable() -> None:
    session, _ = make("1.6", max_queued_commands=2)
    for n in range(3):  # one outstanding, two queued
        session.call(f"cmd-{n}", "Reset", RESET["1.6"], timeout=30)
    with pytest.raises(CommandRejected) as caught:
        session.call("cmd-3", "Reset", RESET["1.6"], timeout=30)
    assert caught.value.retriable
    assert session.queued_commands == 2


def test_case_20_never_two_outstanding_commands_are_sent_in_order() -> None:
    session, _ = make("1.6")
    for n in (1, 2, 3):
        session.call(f"cmd-{n}", "Reset", RESET["1.6"], timeout=30)
    assert [f[1] for f in sent(session)] == ["csms-1"]
    assert (session.outstanding_command, session.queued_commands) == ("cmd-1", 2)
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)
    assert [f[1] for f in sent(session)] == ["csms-2"]
    session.receive_text(b'[4,"csms-2","NotSupported","no",{"why":1}]')
    assert [f[1] for f in sent(session)] == ["csms-3"]
    answered, failed = events(session)
    assert isinstance(answered, CommandAnswered)
    assert answered.command_id == "cmd-1"
    assert failed == CommandFailed(
        command_id="cmd-2",
        action="Reset",
        message_id="csms-2",
        code="NotSupported",
        description="no",
        details=msgspec.Raw(b'{"why":1}'),
    )
    assert (session.outstanding_command, session.queued_commands) == ("cmd-3", 0)


def test_case_20_timeout_frees_the_queue() -> None:
    session, clock = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.call("cmd-2", "Reset", RESET["1.6"], timeout=10)
    sent(session)
    clock.advance(29.9)
    session.tick()
    assert events(session) == []
    assert session.data_to_send() == []
    clock.advance(0.1)
    session.tick()
    assert events(session) == [
        CommandTimedOut(command_id="cmd-1", action="Reset", message_id="csms-1")
    ]
    assert [f[1] for f in sent(session)] == ["csms-2"]
    assert session.next_deadline() == clock.now + 10


@pytest.mark.parametrize("version", VERSIONS)
def test_case_20_crossing_calls_both_complete(version: OcppVersion) -> None:
    session, _ = make(version)
    session.call("cmd-1", "Reset", RESET[version], timeout=30)
    sent(session)
    # The station's CALL crosses ours: both are handled.
    session.receive_text(call_frame("m1", "Heartbeat"))
    (call,) = events(session)
    assert isinstance(call, StationCall)
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)
    (answered,) = events(session)
    assert isinstance(answered, CommandAnswered)
    session.answer("m1", HEARTBEAT_RESPONSE)
    assert sent(session) == [[3, "m1", json.loads(HEARTBEAT_RESPONSE)]]
    # And the reverse: our CALL goes out while the station's is in flight.
    station_call(session, "m2")
    session.call("cmd-2", "Reset", RESET[version], timeout=30)
    assert sent(session) == [[2, "csms-2", "Reset", json.loads(RESET[version])]]
    session.answer("m2", HEARTBEAT_RESPONSE)
    session.receive_text(b'[3,"csms-2",%s]' % ACCEPTED)
    assert sent(session) == [[3, "m2", json.loads(HEARTBEAT_RESPONSE)]]
    assert [type(e) for e in events(session)] == [CommandAnswered]


def test_case_21_late_callresult_is_dropped_and_never_matched_to_a_newer_call() -> None:
    session, clock = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.call("cmd-2", "Reset", RESET["1.6"], timeout=30)
    clock.advance(30)
    session.tick()
    events(session)
    assert [f[1] for f in sent(session)] == ["csms-1", "csms-2"]
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)  # cmd-1's late answer
    session.receive_text(b'[4,"csms-1","GenericError","",{}]')
    assert issues(session) == ["late_answer", "late_answer"]
    assert session.outstanding_command == "cmd-2"  # still waiting for its own answer
    session.receive_text(b'[3,"csms-2",%s]' % ACCEPTED)
    (answered,) = events(session)
    assert isinstance(answered, CommandAnswered)
    assert answered.command_id == "cmd-2"


@pytest.mark.parametrize("outstanding", [False, True])
def test_case_21_answer_with_an_unknown_id_is_dropped(outstanding: bool) -> None:
    session, _ = make("2.0.1")
    if outstanding:
        session.call("cmd-1", "Reset", RESET["2.0.1"], timeout=30)
        sent(session)
    session.receive_text(b'[3,"nobody",%s]' % ACCEPTED)
    session.receive_text(b'[4,"nobody","GenericError","",{}]')
    assert issues(session) == ["unknown_answer", "unknown_answer"]
    assert session.data_to_send() == []
    assert session.outstanding_command == ("cmd-1" if outstanding else None)


def test_case_21_message_ids_of_our_calls_never_repeat() -> None:
    session, clock = make("1.6")
    for n in range(5):
        session.call(f"cmd-{n}", "Reset", RESET["1.6"], timeout=1)
        clock.advance(1)
        session.tick()
    ids = [frame[1] for frame in sent(session)]
    assert ids == ["csms-1", "csms-2", "csms-3", "csms-4", "csms-5"]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_invalid_callresult_fails_the_command_with_the_violation_code(version: OcppVersion) -> None:
    session, _ = make(version)
    session.call("cmd-1", "Reset", RESET[version], timeout=30)
    session.call("cmd-2", "Reset", RESET[version], timeout=30)
    sent(session)
    session.receive_text(b'[3,"csms-1",{"status":"Maybe"}]')
    issue, failed = events(session)
    assert isinstance(issue, ProtocolIssue)
    assert issue.kind == "invalid_answer"
    assert isinstance(failed, CommandFailed)
    assert (failed.command_id, failed.code, failed.details) == (
        "cmd-1",
        error_code(Violation.PROPERTY, version),
        None,
    )
    assert failed.description.startswith("the station's answer is invalid: $.status")
    assert [f[1] for f in sent(session)] == ["csms-2"]  # no answer to a CALLRESULT before 2.1


def test_invalid_callresult_gets_a_callresulterror_on_21() -> None:
    session, _ = make("2.1")
    session.call("cmd-1", "Reset", RESET["2.1"], timeout=30)
    sent(session)
    session.receive_text(b'[3,"csms-1",{"status":"Maybe"}]')
    [[message_type, message_id, code, _, _]] = sent(session)
    assert (message_type, message_id, code) == (5, "csms-1", "PropertyConstraintViolation")
    assert isinstance(events(session)[-1], CommandFailed)


@pytest.mark.parametrize("version", VERSIONS)
def test_callresult_with_a_broken_frame_fails_the_outstanding_command(version: OcppVersion) -> None:
    session, _ = make(version)
    session.call("cmd-1", "Reset", RESET[version], timeout=30)
    sent(session)
    session.receive_text(b'[3,"csms-1","Accepted"]')  # payload not an object
    issue, failed = events(session)
    assert isinstance(issue, ProtocolIssue)
    assert issue.kind == "bad_frame"
    assert isinstance(failed, CommandFailed)
    assert (failed.command_id, failed.code) == ("cmd-1", error_code(Violation.FORMAT, version))
    assert session.outstanding_command is None
    answers = sent(session)
    assert [f[0] for f in answers] == ([5] if version == "2.1" else [])


def test_callresulterror_with_the_id_of_our_call_fails_it() -> None:
    session, _ = make("2.1")
    session.call("cmd-1", "Reset", RESET["2.1"], timeout=30)
    sent(session)
    session.receive_text(b'[5,"csms-1","GenericError","confused",{}]')
    (failed,) = events(session)
    assert isinstance(failed, CommandFailed)
    assert (failed.command_id, failed.code) == ("cmd-1", "GenericError")


def test_command_expired_before_its_turn_is_never_sent() -> None:
    session, clock = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.call("cmd-2", "Reset", RESET["1.6"], timeout=30, expires_at=clock.now + 5)
    session.call("cmd-3", "Reset", RESET["1.6"], timeout=30, expires_at=clock.now + 60)
    sent(session)
    assert session.next_deadline() == clock.now + 5  # the queued command's expiry
    clock.advance(5)
    session.tick()  # expires while queued
    assert events(session) == [CommandExpired(command_id="cmd-2", action="Reset")]
    assert session.data_to_send() == []
    assert (session.outstanding_command, session.queued_commands) == ("cmd-1", 1)
    assert session.next_deadline() == clock.now + 25
    clock.advance(25)
    session.tick()
    assert events(session) == [
        CommandTimedOut(command_id="cmd-1", action="Reset", message_id="csms-1")
    ]
    assert [f[1] for f in sent(session)] == ["csms-2"]  # cmd-3, with the next id


def test_command_expired_when_its_turn_comes() -> None:
    # No tick ran between expiry and the answer: the turn itself checks.
    session, clock = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.call("cmd-2", "Reset", RESET["1.6"], timeout=30, expires_at=clock.now + 5)
    sent(session)
    clock.advance(6)
    session.receive_text(b'[3,"csms-1",%s]' % ACCEPTED)
    assert [type(e) for e in events(session)] == [CommandAnswered, CommandExpired]
    assert session.data_to_send() == []
    assert session.outstanding_command is None


def test_command_already_expired_at_call_time() -> None:
    session, clock = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30, expires_at=clock.now)
    assert events(session) == [CommandExpired(command_id="cmd-1", action="Reset")]
    assert session.data_to_send() == []


def test_close_aborts_outstanding_and_queued_commands() -> None:
    session, _ = make("1.6")
    session.call("cmd-1", "Reset", RESET["1.6"], timeout=30)
    session.call("cmd-2", "Reset", RESET["1.6"], timeout=30)
    station_call(session, "m1")
    session.close()
    assert events(session) == [
        CommandAborted(command_id="cmd-1", action="Reset", sent=True, message_id="csms-1"),
        CommandAborted(command_id="cmd-2", action="Reset", sent=False),
    ]
    assert session.data_to_send() == []
    assert (session.outstanding_command, session.queued_commands) == (None, 0)
    assert session.next_deadline() is None
    # Whatever comes after is ignored quietly; a new command ends at once.
    session.receive_text(call_frame("m2", "Heartbeat"))
    session.answer("m1", HEARTBEAT_RESPONSE)
    session.tick()
    session.close()
    assert events(session) == []
    assert session.data_to_send() == []
    session.call("cmd-3", "Reset", RESET["1.6"], timeout=30)
    assert events(session) == [CommandAborted(command_id="cmd-3", action="Reset", sent=False)]
    assert session.data_to_send() == []


def test_tick_with_nothing_due_does_nothing() -> None:
    session, _ = make("1.6")
    session.tick()
    assert session.next_deadline() is None
    assert events(session) == []
    assert session.data_to_send() == []


def test_idle_session_holds_no_containers() -> None:
    session, _ = make("1.6")
    assert session.events_received() == []
    assert (session.queued_commands, session.outstanding_command) == (0, None)
    assert session.station_calls_in_flight == 0
    assert not hasattr(session, "__dict__")
