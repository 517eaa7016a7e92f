"""The OCPP-J frame codec: every framing rule per version, encoders, round trips, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts import ocppj
from contracts.ocpp import OcppVersion
from contracts.ocpp.errors import ERROR_CODES, FRAMING_ERROR
from contracts.ocppj import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    FrameError,
    MessageType,
    Send,
    encode_call,
    encode_call_error,
    encode_call_result,
    encode_call_result_error,
    encode_send,
    parse,
)

VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "2.1")
FORMAT_VIOLATION = {
    "1.6": "FormationViolation",
    "2.0.1": "FormatViolation",
    "2.1": "FormatViolation",
}
ID_36 = "0123456789abcdef0123456789abcdef0123"


def refused(data: bytes | str, version: OcppVersion) -> FrameError:
    with pytest.raises(FrameError) as info:
        parse(data, version)
    return info.value


def summary(error: FrameError) -> tuple[str, str, int | None, MessageType | None]:
    return (error.message_id, error.code, error.message_type, error.reply)


# --- valid frames ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_call_keeps_its_payload_as_the_exact_bytes_received(version: OcppVersion) -> None:
    data = b'[2, "19223201", "BootNotification", {"chargePointVendor" : "VendorX",  "n": 1.50}]'
    frame = parse(data, version)
    assert frame == Call(
        message_id="19223201",
        action="BootNotification",
        payload=msgspec.Raw(b'{"chargePointVendor" : "VendorX",  "n": 1.50}'),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_text_and_bytes_parse_alike(version: OcppVersion) -> None:
    text = '[2,"ü-1","DataTransfer",{"vendorId":"Señor €"}]'
    frame = parse(text, version)
    assert frame == parse(text.encode(), version)
    assert isinstance(frame, Call)
    assert bytes(frame.payload) == '{"vendorId":"Señor €"}'.encode()


@pytest.mark.parametrize("version", VERSIONS)
def test_call_result_and_call_error_parse_in_every_version(version: OcppVersion) -> None:
    assert parse(b'[3,"a",{"status":"Accepted"}]', version) == CallResult(
        message_id="a", payload=msgspec.Raw(b'{"status":"Accepted"}')
    )
    assert parse(b'[4,"a","NotSupported","not here",{"x":1}]', version) == CallError(
        message_id="a", code="NotSupported", description="not here", details=msgspec.Raw(b'{"x":1}')
    )


def test_send_and_call_result_error_parse_in_2_1() -> None:
    assert parse(b'[6,"s","NotifyPeriodicEventStream",{"id":1}]', "2.1") == Send(
        message_id="s", action="NotifyPeriodicEventStream", payload=msgspec.Raw(b'{"id":1}')
    )
    assert parse(b'[5,"r","FormatViolation","",{}]', "2.1") == CallResultError(
        message_id="r", code="FormatViolation", description="", details=msgspec.Raw(b"{}")
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "data",
    [
        b' [2,"a","Heartbeat",{}] \r\n',
        b'[2,"a","Heartbeat",{}\n]',
        b'[\n  2,\n  "a",\n  "Heartbeat",\n  {\n  }\n]\n',
        b'[2,"a","Heartbeat",{"s":"]"}\t]',
    ],
)
def test_whitespace_around_elements_is_allowed(data: bytes, version: OcppVersion) -> None:
    assert isinstance(parse(data, version), Call)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_message_id_of_36_characters_is_allowed(version: OcppVersion) -> None:
    assert parse(f'[3,"{ID_36}",{{}}]', version).message_id == ID_36
    assert parse(f'[3,"{"é" * 36}",{{}}]', version).message_id == "é" * 36  # characters, not bytes


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_may_use_minus_one_as_a_message_id(version: OcppVersion) -> None:
    assert parse(b'[2,"-1","Heartbeat",{}]', version).message_id == "-1"


def test_frames_are_frozen() -> None:
    frame = parse(b'[2,"a","Heartbeat",{}]', "1.6")
    with pytest.raises(AttributeError):
        frame.message_id = "b"  # type: ignore[misc]


# --- rule 1: a JSON array --------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"nope",
        b'[2,"a","Heartbeat",{}',  # truncated
        b'[2,"a","Heartbeat",{}]]',  # trailing characters
        b'[2,"a","Heartbeat",{"v":NaN}]',
        b"[2,'a','Heartbeat',{}]",
        b'[2,"a","Heartbeat",{"v":"\xff"}]',  # invalid UTF-8 inside the payload
        b'[2,"a\xc3","Heartbeat",{}]',  # invalid UTF-8 inside the id
        b'[2,"a","Heartbeat",{"v":"\\ud800"}]',  # an escaped lone surrogate
        '[2,"a","Heartbeat",{"v":"\ud800"}]',  # text that has no UTF-8 form
        b'[2,"a","Heartbeat",{"v":' + b"[" * 5000 + b"]" * 5000 + b"}]",  # nested too deep
    ],
)
def test_malformed_json_is_answered_with_minus_one(data: bytes | str, version: OcppVersion) -> None:
    assert summary(refused(data, version)) == (
        "-1",
        FRAMING_ERROR[version],
        None,
        MessageType.CALL_ERROR,
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("data", [b'{"2":"a"}', b'"[2]"', b"2", b"null", b"true"])
def test_json_that_is_not_an_array_is_answered_with_minus_one(
    data: bytes, version: OcppVersion
) -> None:
    error = refused(data, version)
    assert summary(error) == ("-1", FRAMING_ERROR[version], None, MessageType.CALL_ERROR)
    assert error.description == "a frame is a JSON array"


def test_the_framing_error_is_spelt_per_version() -> None:
    assert refused(b"nope", "1.6").code == "FormationViolation"
    assert refused(b"nope", "2.0.1").code == "RpcFrameworkError"
    assert refused(b"nope", "2.1").code == "RpcFrameworkError"


# --- rule 2: the message type number ---------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("data", "message_id"),
    [
        (b"[]", "-1"),
        (b'["2","a","Heartbeat",{}]', "a"),
        (b'[2.0,"a","Heartbeat",{}]', "a"),
        (b'[true,"a","Heartbeat",{}]', "a"),
        (b'[null,"a","Heartbeat",{}]', "a"),
        (b'[{},1,"Heartbeat",{}]', "-1"),
    ],
)
def test_a_message_type_that_is_not_an_integer_is_a_framing_error(
    data: bytes, message_id: str, version: OcppVersion
) -> None:
    assert summary(refused(data, version)) == (
        message_id,
        FRAMING_ERROR[version],
        None,
        MessageType.CALL_ERROR,
    )


@pytest.mark.parametrize("number", [0, 1, 5, 6, 7, -2, 1000, 10**30])
def test_1_6_ignores_an_unknown_message_type(number: int) -> None:
    error = refused(f'[{number},"a","Heartbeat",{{}}]', "1.6")
    assert error.reply is None
    assert (error.message_id, error.message_type) == ("a", number)


@pytest.mark.parametrize(
    ("version", "number"),
    [("2.0.1", 5), ("2.0.1", 6), ("2.0.1", 7), ("2.1", 0), ("2.1", 7), ("2.1", 10**30)],
)
def test_2_x_answers_message_type_not_supported(version: OcppVersion, number: int) -> None:
    error = refused(f'[{number},"a","Heartbeat",{{}}]', version)
    assert summary(error) == ("a", "MessageTypeNotSupported", number, MessageType.CALL_ERROR)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
@pytest.mark.parametrize("data", [b"[0]", b"[9, 12]", b'[9, ""]', f'[9,"{ID_36}x"]'.encode()])
def test_message_type_not_supported_without_a_readable_id_carries_minus_one(
    data: bytes, version: OcppVersion
) -> None:
    assert summary(refused(data, version))[:2] == ("-1", "MessageTypeNotSupported")


@pytest.mark.parametrize("number", [0, 1, 7])
def test_2_0_1_and_2_1_answer_the_other_unknown_types_alike(number: int) -> None:
    data = f'[{number},"a"]'
    assert summary(refused(data, "2.0.1")) == summary(refused(data, "2.1"))


# --- rule 3: the message id ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "data",
    [
        b"[2]",
        b'[2,19223201,"Heartbeat",{}]',
        b'[2,null,"Heartbeat",{}]',
        b'[2,["a"],"Heartbeat",{}]',
        b'[2,"","Heartbeat",{}]',
        f'[2,"{ID_36}7","Heartbeat",{{}}]'.encode(),
        f'[2,"{"é" * 37}","Heartbeat",{{}}]'.encode(),
    ],
)
def test_a_call_whose_id_cannot_be_read_is_answered_with_minus_one(
    data: bytes, version: OcppVersion
) -> None:
    assert summary(refused(data, version)) == (
        "-1",
        FRAMING_ERROR[version],
        MessageType.CALL,
        MessageType.CALL_ERROR,
    )


# --- rule 4: the number of elements ----------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "data",
    [
        b'[2,"a","Heartbeat"]',
        b'[2,"a","Heartbeat",{},{}]',  # msgspec would accept this one without forbid_unknown_fields
        b'[2,"a","Heartbeat",{},null]',
        b'[2,"a"]',
        b'[3,"a"]',
        b'[3,"a",{},{}]',
        b'[4,"a","GenericError",""]',
        b'[4,"a","GenericError","",{},{}]',
    ],
)
def test_each_message_type_has_exactly_its_number_of_elements(
    data: bytes, version: OcppVersion
) -> None:
    error = refused(data, version)
    assert (error.message_id, error.code) == ("a", FRAMING_ERROR[version])
    assert "elements" in error.description


def test_2_1_counts_the_elements_of_send_and_call_result_error() -> None:
    for data in (b'[6,"a","X",{},{}]', b'[6,"a","X"]', b'[5,"a","GenericError","",{},{}]'):
        error = refused(data, "2.1")
        assert (error.message_id, error.code) == ("a", "RpcFrameworkError")
        assert "elements" in error.description


# --- rule 5: the action ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("action", [b'""', b"12", b"null", b'["Heartbeat"]', b"{}"])
def test_the_action_is_a_non_empty_string(action: bytes, version: OcppVersion) -> None:
    error = refused(b'[2,"a",' + action + b",{}]", version)
    assert summary(error) == ("a", FRAMING_ERROR[version], MessageType.CALL, MessageType.CALL_ERROR)
    assert "action" in error.description


def test_the_action_of_a_send_is_a_non_empty_string() -> None:
    error = refused(b'[6,"a","",{}]', "2.1")
    assert summary(error) == ("a", "RpcFrameworkError", MessageType.SEND, None)


# --- rule 6: payloads and details are objects ------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("payload", [b"null", b"[]", b'"{}"', b"1", b"true", b"[{}]", b'"a}"'])
def test_a_call_payload_that_is_not_an_object_is_a_format_violation(
    payload: bytes, version: OcppVersion
) -> None:
    assert summary(refused(b'[2,"a","Heartbeat",' + payload + b"]", version)) == (
        "a",
        FORMAT_VIOLATION[version],
        MessageType.CALL,
        MessageType.CALL_ERROR,
    )
    # with whitespace before the closing bracket too
    error = refused(b'[2,"a","Heartbeat",' + payload + b" \n]", version)
    assert error.code == FORMAT_VIOLATION[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_call_result_payload_or_error_details_that_is_not_an_object_is_refused(
    version: OcppVersion,
) -> None:
    assert refused(b'[3,"a",null]', version).code == FORMAT_VIOLATION[version]
    assert refused(b'[4,"a","GenericError","",null]', version).code == FORMAT_VIOLATION[version]
    assert refused(b'[4,"a","GenericError","",[]]', version).code == FORMAT_VIOLATION[version]


def test_a_send_payload_or_result_error_details_that_is_not_an_object_is_refused() -> None:
    assert refused(b'[6,"a","X",[]]', "2.1").code == "FormatViolation"
    assert refused(b'[5,"a","GenericError","",1]', "2.1").code == "FormatViolation"


# --- rule 7: error frames --------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "code"),
    [
        ("1.6", "Nope"),
        ("1.6", "RpcFrameworkError"),
        ("1.6", "MessageTypeNotSupported"),
        ("2.0.1", "Nope"),
        ("2.0.1", "FormationViolation"),
        ("2.0.1", "OccurenceConstraintViolation"),
        ("2.0.1", "genericerror"),
        ("2.1", "FormationViolation"),
        ("2.1", ""),
    ],
)
def test_a_call_error_code_outside_the_version_table_is_refused(
    version: OcppVersion, code: str
) -> None:
    error = refused(f'[4,"a","{code}","",{{}}]', version)
    assert summary(error) == ("a", FRAMING_ERROR[version], MessageType.CALL_ERROR, None)
    assert "error code" in error.description


@pytest.mark.parametrize("version", VERSIONS)
def test_every_code_of_the_version_table_is_accepted(version: OcppVersion) -> None:
    for code in ERROR_CODES[version]:
        assert parse(f'[4,"a","{code}","",{{}}]', version) == CallError(
            message_id="a", code=code, description="", details=msgspec.Raw(b"{}")
        )


@pytest.mark.parametrize("code", ["FormatViolation", "OccurrenceConstraintViolation"])
def test_1_6_also_accepts_the_corrected_spellings_from_the_errata(code: str) -> None:
    assert parse(f'[4,"a","{code}","",{{}}]', "1.6") == CallError(
        message_id="a", code=code, description="", details=msgspec.Raw(b"{}")
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("code", [b"1", b"null"])
def test_a_call_error_code_that_is_not_a_string_is_refused(
    code: bytes, version: OcppVersion
) -> None:
    assert refused(b'[4,"a",' + code + b',"",{}]', version).code == FRAMING_ERROR[version]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("description", [b"1", b"null", b"{}"])
def test_a_call_error_description_is_a_string(description: bytes, version: OcppVersion) -> None:
    error = refused(b'[4,"a","GenericError",' + description + b",{}]", version)
    assert (error.code, error.reply) == (FRAMING_ERROR[version], None)
    assert "description" in error.description


@pytest.mark.parametrize("version", VERSIONS)
def test_a_received_description_may_be_longer_than_255_characters(version: OcppVersion) -> None:
    description = "x" * 1000
    frame = parse(f'[4,"a","GenericError","{description}",{{}}]', version)
    assert isinstance(frame, CallError)
    assert frame.description == description


def test_call_result_error_codes_follow_the_2_1_table() -> None:
    assert refused(b'[5,"a","FormationViolation","",{}]', "2.1").code == "RpcFrameworkError"
    assert refused(b'[5,"a",1,"",{}]', "2.1").code == "RpcFrameworkError"
    assert refused(b'[5,"a","GenericError",1,{}]', "2.1").code == "RpcFrameworkError"


# --- who gets an answer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "data", "reply"),
    [
        # a CALL is answered with a CALLERROR
        ("1.6", b'[2,"a","Heartbeat",[]]', MessageType.CALL_ERROR),
        ("2.0.1", b'[2,"a","Heartbeat",[]]', MessageType.CALL_ERROR),
        ("2.1", b'[2,"a","Heartbeat",[]]', MessageType.CALL_ERROR),
        # a CALLRESULT: with a CALLRESULTERROR in 2.1, not at all before
        ("1.6", b'[3,"a",[]]', None),
        ("2.0.1", b'[3,"a",[]]', None),
        ("2.1", b'[3,"a",[]]', MessageType.CALL_RESULT_ERROR),
        ("2.1", b'[3,"a"]', MessageType.CALL_RESULT_ERROR),
        ("1.6", b'[3,"",{}]', None),
        # errors are never answered, nor is a SEND
        ("1.6", b'[4,"a","Nope","",{}]', None),
        ("2.0.1", b'[4,"a","GenericError","",[]]', None),
        ("2.1", b'[4,"a","GenericError"]', None),
        ("2.1", b'[5,"a","Nope","",{}]', None),
        ("2.1", b'[6,"a","X",[]]', None),
        ("2.1", b'[6,1,"X",{}]', None),
    ],
)
def test_the_reply_depends_on_the_message_type(
    version: OcppVersion, data: bytes, reply: MessageType | None
) -> None:
    assert refused(data, version).reply is reply


def test_a_refused_call_result_tells_the_session_which_call_failed() -> None:
    error = refused(b'[3,"c-17",[]]', "2.0.1")
    assert (error.message_id, error.message_type, error.reply) == ("c-17", 3, None)


def test_a_frame_error_reads_well() -> None:
    error = refused(b'[2,"a","Heartbeat",[]]', "2.0.1")
    assert str(error) == "the payload is not a JSON object"
    assert repr(error) == (
        "FrameError(message_id='a', code='FormatViolation', "
        "description='the payload is not a JSON object', message_type=2, "
        "reply=<MessageType.CALL_ERROR: 4>)"
    )


# --- encoding --------------------------------------------------------------------------


def test_encoders_build_the_frames() -> None:
    assert encode_call("1", "Heartbeat", b"{}") == b'[2,"1","Heartbeat",{}]'
    assert encode_call("1", "Heartbeat", msgspec.Raw(b'{"a":1}')) == b'[2,"1","Heartbeat",{"a":1}]'
    assert encode_call_result("1", b'{"status":"Accepted"}') == b'[3,"1",{"status":"Accepted"}]'
    assert encode_call_error("1", "NotImplemented") == b'[4,"1","NotImplemented","",{}]'
    assert (
        encode_call_error("1", "GenericError", "boom", {"cause": "x"})
        == b'[4,"1","GenericError","boom",{"cause":"x"}]'
    )
    assert (
        encode_call_error("-1", "RpcFrameworkError", "", msgspec.Raw(b'{"a":[]}'))
        == b'[4,"-1","RpcFrameworkError","",{"a":[]}]'
    )
    assert encode_send("1", "NotifyPeriodicEventStream", b"{}") == (
        b'[6,"1","NotifyPeriodicEventStream",{}]'
    )
    assert encode_call_result_error("1", "FormatViolation", "bad") == (
        b'[5,"1","FormatViolation","bad",{}]'
    )


def test_ids_and_descriptions_are_json_escaped() -> None:
    tricky = 'q"uo\\te\n\t\x00\x1f é€😀 \u2028</script>'
    frame = encode_call_error(tricky[:36], "GenericError", tricky, {"k": tricky})
    assert json.loads(frame) == [4, tricky[:36], "GenericError", tricky, {"k": tricky}]
    call = encode_call(tricky[:36], tricky, b"{}")
    assert json.loads(call) == [2, tricky[:36], tricky, {}]
    assert parse(call, "2.0.1") == Call(
        message_id=tricky[:36], action=tricky, payload=msgspec.Raw(b"{}")
    )


def test_a_description_is_cut_to_255_characters() -> None:
    exact = "é" * 255
    assert json.loads(encode_call_error("1", "GenericError", exact))[3] == exact
    long = "é" * 254 + "xyz"
    cut = json.loads(encode_call_result_error("1", "GenericError", long))[3]
    assert len(cut) == 255
    assert cut == "é" * 252 + "..."


def test_a_description_with_a_lone_surrogate_still_encodes() -> None:
    description = b"bad byte \xff".decode("utf-8", "surrogateescape")
    frame = encode_call_error("1", "InternalError", description)
    assert json.loads(frame) == [4, "1", "InternalError", "bad byte ?", {}]


# --- properties ------------------------------------------------------------------------

message_ids = st.text(min_size=1, max_size=36)
actions = st.text(min_size=1, max_size=40)
keys = st.text(max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=8,
)
json_objects = st.dictionaries(keys, json_values, max_size=4)
payloads = json_objects.map(msgspec.json.encode)
versions = st.sampled_from(VERSIONS)


@settings(max_examples=50)
@given(message_id=message_ids, action=actions, payload=payloads, version=versions)
def test_call_round_trips(
    message_id: str, action: str, payload: bytes, version: OcppVersion
) -> None:
    frame = parse(encode_call(message_id, action, payload), version)
    assert frame == Call(message_id=message_id, action=action, payload=msgspec.Raw(payload))


@settings(max_examples=50)
@given(message_id=message_ids, payload=payloads, version=versions)
def test_call_result_round_trips(message_id: str, payload: bytes, version: OcppVersion) -> None:
    frame = parse(encode_call_result(message_id, payload), version)
    assert frame == CallResult(message_id=message_id, payload=msgspec.Raw(payload))


@settings(max_examples=50)
@given(
    message_id=message_ids,
    data=st.data(),
    description=st.text(max_size=255),
    details=json_objects,
    version=versions,
)
def test_call_error_round_trips(
    message_id: str,
    data: st.DataObject,
    description: str,
    details: dict[str, Any],
    version: OcppVersion,
) -> None:
    code = data.draw(st.sampled_from(sorted(ERROR_CODES[version])))
    frame = parse(encode_call_error(message_id, code, description, details), version)
    assert frame == CallError(
        message_id=message_id,
        code=code,
        description=description,
        details=msgspec.Raw(msgspec.json.encode(details)),
    )


@settings(max_examples=50)
@given(message_id=message_ids, action=actions, payload=payloads, description=st.text(max_size=255))
def test_send_and_call_result_error_round_trip_in_2_1(
    message_id: str, action: str, payload: bytes, description: str
) -> None:
    assert parse(encode_send(message_id, action, payload), "2.1") == Send(
        message_id=message_id, action=action, payload=msgspec.Raw(payload)
    )
    assert parse(
        encode_call_result_error(message_id, "GenericError", description), "2.1"
    ) == CallResultError(
        message_id=message_id,
        code="GenericError",
        description=description,
        details=msgspec.Raw(b"{}"),
    )


def assert_parse_is_well_behaved(data: bytes | str, version: OcppVersion) -> None:
    """parse returns a frame or raises a FrameError with a code of the version; nothing else."""
    try:
        parse(data, version)
    except FrameError as error:
        refusal = error
    else:
        return
    assert refusal.code in ERROR_CODES[version]
    assert refusal.message_id == "-1" or 1 <= len(refusal.message_id) <= 36


def assert_both_parsers_agree(data: bytes | str, version: OcppVersion) -> None:
    """The fast path accepts exactly what the reference parser accepts, as the same frame."""
    quick = ocppj._parse_quickly(data, version)
    try:
        slow = ocppj._parse_slowly(data, version)
    except FrameError:
        assert quick is None
    else:
        assert quick == slow


# Arrays shaped like frames, right and wrong: what reaches the deeper rules.
frame_like = st.tuples(
    st.integers(-1, 8) | st.sampled_from(sorted(ERROR_CODES["2.1"])) | json_values,
    st.lists(json_values, max_size=6),
).map(lambda head_and_rest: [head_and_rest[0], *head_and_rest[1]])


@settings(max_examples=300)
@given(data=st.binary(), version=versions)
def test_parse_raises_only_frame_errors_on_arbitrary_bytes(
    data: bytes, version: OcppVersion
) -> None:
    assert_parse_is_well_behaved(data, version)


@settings(max_examples=300)
@given(data=st.text(), version=versions)
def test_parse_raises_only_frame_errors_on_arbitrary_text(data: str, version: OcppVersion) -> None:
    assert_parse_is_well_behaved(data, version)


@settings(max_examples=150)
@given(
    items=frame_like,
    version=versions,
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
)
@example(items=[2, "a", "Heartbeat", {}], version="1.6", indent=None, ascii_only=True)
@example(items=[4, "a", "GenericError", "", {}], version="1.6", indent=1, ascii_only=True)
def test_the_fast_path_and_the_reference_parser_agree(
    items: list[Any], version: OcppVersion, indent: int | None, ascii_only: bool
) -> None:
    data = json.dumps(items, indent=indent, ensure_ascii=ascii_only)
    assert_parse_is_well_behaved(data, version)
    assert_both_parsers_agree(data, version)
    assert_both_parsers_agree(data.encode(), version)


@settings(max_examples=150)
@given(
    message_id=message_ids,
    payload=payloads,
    version=versions,
    where=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_corrupting_a_valid_frame_never_escapes_the_codec(
    message_id: str, payload: bytes, version: OcppVersion, where: int, byte: int
) -> None:
    frame = bytearray(encode_call(message_id, "MeterValues", payload))
    where %= len(frame)
    frame[where] = byte
    for data in (bytes(frame), bytes(frame[:where])):
        assert_parse_is_well_behaved(data, version)
        assert_both_parsers_agree(data, version)


def test_all_lists_what_the_module_defines() -> None:
    assert all(hasattr(ocppj, name) for name in ocppj.__all__)
    defined = {
        name
        for name, value in vars(ocppj).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == ocppj.__name__
    }
    assert defined <= set(ocppj.__all__)
