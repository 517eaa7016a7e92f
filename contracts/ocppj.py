"""OCPP-J frames: parse the text a station sends, encode the text to send it.

This is the RPC layer only. A frame's payload stays the exact JSON text the
station sent (``msgspec.Raw``): the gateway forwards those bytes to Kafka
unchanged, and ``contracts.ocpp.validation`` decodes them against the action's
schema. Message ids, the one-outstanding-CALL rule and timeouts belong to the
session layer above.

Frames (OCPP-J 1.6 §4.2, 2.0.1 Part 4 §4.2, 2.1 Part 4 §4.2)::

    Call             [2, messageId, action, {payload}]
    CallResult       [3, messageId, {payload}]
    CallError        [4, messageId, errorCode, errorDescription, {errorDetails}]
    CallResultError  [5, messageId, errorCode, errorDescription, {errorDetails}]   2.1 only
    Send             [6, messageId, action, {payload}]                             2.1 only

``parse`` decodes a valid frame with one typed decoder over the tagged union
(the first array element is the tag). Only when that fails, or a check the
decoder cannot make fails, does a second, slower parser work out which rule the
frame breaks. Both apply the same rules; the tests check that they agree.

Exceptions::

    Exception
     └── FrameError    the only exception raised here: the frame breaks OCPP-J;
                       msgspec.DecodeError, UnicodeError and RecursionError from
                       the JSON decoder are translated into it, never leaked

A ``FrameError`` says how the spec wants it answered: ``reply`` is
``MessageType.CALL_ERROR``, ``MessageType.CALL_RESULT_ERROR`` (2.1) or ``None``
(send nothing: drop the frame, or ignore it as 1.6 asks for unknown message
types), and ``message_id``/``code``/``description`` are what to answer with.

Rules, and the answer to a frame that breaks them:

1. A frame is a JSON array, UTF-8 encoded [1.6 §4.1.2; 2.0.1 §4.1.2]. Malformed
   JSON (nesting deeper than Python's recursion limit, about 1,000 levels,
   included), invalid UTF-8, or JSON that is not an array: message id ``"-1"``
   [2.0.1 §4.2.3: "When also the MessageId cannot be read, the CALLERROR SHALL
   contain "-1""; 1.6 says nothing, so we do the same].
2. The first element is a message type number of the version: 2, 3, 4; 2.1
   adds 5 and 6 [1.6 §4.1.3 Table 2; 2.0.1 §4.1.3 Table 3; 2.1 §4.1.3 Table 3].
   Not an integer: the framing error. An integer the version does not know:
   1.6 ignores the frame (§4.1.3: "it SHALL ignore the message payload", and
   1.6 has no error code to answer with); 2.0.1 answers
   ``MessageTypeNotSupported`` [§4.4]; so does 2.1, whose §4.4 only repeats
   "ignore the message payload" but whose Table 9 keeps the code for exactly
   this case.
3. The message id is a string of 1 to 36 characters [1.6 §4.1.4 Table 3;
   2.0.1 §4.1.4 Table 4 "string[36]"]. Otherwise it cannot be read: ``"-1"``.
   A too-long id is not echoed, since the answer's id would break the same
   rule. Everywhere else the answer carries the frame's id.
4. Each message type has exactly its number of elements: CALL and SEND 4,
   CALLRESULT 3, CALLERROR and CALLRESULTERROR 5 [2.0.1 §4.2.1-4.2.3 "always
   consists of N elements"; 2.1 §4.2.4]. msgspec accepts extra trailing
   elements in an ``array_like`` struct unless ``forbid_unknown_fields`` is
   set, so it is set.
5. The action is a non-empty string [2.0.1 §4.2.1 Table 5]. Whether it names a
   known action is for the payload layer (NotImplemented).
6. The payload (and a CALLERROR's details) is a JSON object [2.0.1 §4.1.5 "The
   Payload of a message is a JSON object"; 1.6 §4.2.3 Table 6 "If there are no
   error details you MUST fill in an empty object {}"]. ``null`` is refused
   too: both specs call ``{}`` the good practice for an empty payload, every
   OCA schema's root is ``"type": "object"``, and 2.0.1 §4.1.2 gives the right
   to reject messages that do not conform to the schemas.
7. A CALLERROR's (and CALLRESULTERROR's) code is one of the version's table
   [1.6 §4.2.3 Table 7; 2.0.1 §4.3 Table 8; 2.1 §4.3 Table 9]. On 1.6 the
   correct spellings ``FormatViolation`` and ``OccurrenceConstraintViolation``
   are accepted besides the 1.6 ones: the errata (5.1, 5.2) keep the typos but
   announce the correct names, and stations (the ``ocpp`` package among them)
   send them. The description is a string of any length when received.

Codes. 1.6 has one code for a malformed frame, ``FormationViolation`` ("not
conform the PDU structure"). 2.0.1 and 2.1 tell the wrapper from the payload:

- the wrapper (rules 1-5 and 7: not JSON, not an array, the type number, the
  id, the element count, the action, an error frame's code or description):
  ``RpcFrameworkError``, "Content of the call is not a valid RPC Request, for
  example: MessageId could not be read" [2.0.1 §4.3 Table 8];
- the payload or details not an object (rule 6): ``FormatViolation``,
  "Payload for Action is syntactically incorrect" [ibid.];
- an unknown message type: ``MessageTypeNotSupported`` (rule 2).

Who is answered. A CALL that breaks a rule gets a CALLERROR [2.0.1 §4.2.3: to
report a "failure to process the message" the server SHALL use CALLERROR]; so
does a frame whose type cannot be told. A CALLRESULT gets a CALLRESULTERROR on
2.1 [2.1 §4.2.3] and nothing on 1.6 and 2.0.1, where a CALLERROR answers a CALL
only; the session fails its outstanding call with ``message_id`` instead. A
CALLERROR or CALLRESULTERROR is never answered (an error about an error could
loop), nor is a SEND [2.1 §4.2.4: "The receiver SHALL NOT respond to a SEND
message with a CALLRESULT or CALLERROR message"].

Encoding. The ``encode_*`` functions build the frame with msgspec, which
escapes ids and descriptions correctly (a CALLERROR "SHALL NOT directly include
syntactically invalid JSON" [2.0.1 §4.2.3]). Payloads and details given as
bytes or ``msgspec.Raw`` are inserted verbatim: they must be the JSON text of
an object. A description longer than 255 characters is cut to 255, ending in
"..." [2.0.1 §4.2.3 Table 7 "ErrorDescription string[255]"; applied to 1.6 too,
where it does no harm].

Text frames only: a binary frame is the transport's business.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Final, Literal, TypeAlias, TypeVar

import msgspec

from contracts.ocpp import OcppVersion
from contracts.ocpp.errors import ERROR_CODES, FRAMING_ERROR, Violation, error_code

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_MESSAGE_ID_LENGTH",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "FrameError",
    "MessageType",
    "Reply",
    "Send",
    "encode_call",
    "encode_call_error",
    "encode_call_result",
    "encode_call_result_error",
    "encode_send",
    "parse",
]

MAX_MESSAGE_ID_LENGTH: Final = 36  # 1.6 §4.1.4 Table 3; 2.0.1/2.1 §4.1.4 Table 4
MAX_DESCRIPTION_LENGTH: Final = 255  # 2.0.1/2.1 §4.2.3 Table 7


class MessageType(enum.IntEnum):
    """The Message Type Number, the first element of every frame (§4.1.3)."""

    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4
    CALL_RESULT_ERROR = 5  # 2.1
    SEND = 6  # 2.1


_MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]
_Action = Annotated[str, msgspec.Meta(min_length=1)]


class Call(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag=MessageType.CALL.value,
):
    """``[2, message_id, action, {payload}]``: a request that expects a CALLRESULT or CALLERROR."""

    message_id: _MessageId
    action: _Action
    payload: msgspec.Raw


class CallResult(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag=MessageType.CALL_RESULT.value,
):
    """``[3, message_id, {payload}]``: the answer to the CALL with the same message id."""

    message_id: _MessageId
    payload: msgspec.Raw


class CallError(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag=MessageType.CALL_ERROR.value,
):
    """``[4, message_id, code, description, {details}]``: a CALL could not be processed."""

    message_id: _MessageId
    code: str
    description: str
    details: msgspec.Raw


class CallResultError(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag=MessageType.CALL_RESULT_ERROR.value,
):
    """2.1 ``[5, message_id, code, description, {details}]``: a CALLRESULT was not processable."""

    message_id: _MessageId
    code: str
    description: str
    details: msgspec.Raw


class Send(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag=MessageType.SEND.value,
):
    """2.1 ``[6, message_id, action, {payload}]``: a message that gets no answer at all."""

    message_id: _MessageId
    action: _Action
    payload: msgspec.Raw


Frame: TypeAlias = Call | CallResult | CallError | CallResultError | Send

Reply: TypeAlias = Literal[MessageType.CALL_ERROR, MessageType.CALL_RESULT_ERROR] | None


class FrameError(Exception):
    """A frame that breaks OCPP-J, and how to answer it.

    ``message_id`` is the frame's id, or ``"-1"`` when it cannot be read;
    ``code`` is an error code of the version (for a frame 1.6 ignores, the
    framing error, never sent) and ``description`` says which rule was broken.
    ``message_type`` is the frame's message type number when it is an integer
    (possibly one the version does not know), else ``None``. ``reply`` is the
    message type to answer with, or ``None`` to send nothing.
    """

    def __init__(
        self,
        message_id: str,
        code: str,
        description: str,
        *,
        message_type: int | None,
        reply: Reply,
    ) -> None:
        super().__init__(description)
        self.message_id = message_id
        self.code = code
        self.description = description
        self.message_type = message_type
        self.reply = reply

    def __repr__(self) -> str:
        return (
            f"FrameError(message_id={self.message_id!r}, code={self.code!r}, "
            f"description={self.description!r}, message_type={self.message_type!r}, "
            f"reply={self.reply!r})"
        )


# --- parsing ---------------------------------------------------------------------------

_MESSAGE_TYPES: Final[dict[OcppVersion, frozenset[int]]] = {
    "1.6": frozenset({MessageType.CALL, MessageType.CALL_RESULT, MessageType.CALL_ERROR}),
    "2.0.1": frozenset({MessageType.CALL, MessageType.CALL_RESULT, MessageType.CALL_ERROR}),
    "2.1": frozenset(MessageType),
}

_DECODERS: Final[dict[OcppVersion, msgspec.json.Decoder[Frame]]] = {
    "1.6": msgspec.json.Decoder(Call | CallResult | CallError),
    "2.0.1": msgspec.json.Decoder(Call | CallResult | CallError),
    "2.1": msgspec.json.Decoder(Frame),
}

# Rule 7: codes a received CALLERROR may carry.
_RECEIVED_ERROR_CODES: Final[dict[OcppVersion, frozenset[str]]] = {
    "1.6": ERROR_CODES["1.6"] | {"FormatViolation", "OccurrenceConstraintViolation"},
    "2.0.1": ERROR_CODES["2.0.1"],
    "2.1": ERROR_CODES["2.1"],
}

# Rule 4, and the spec's name of each message type.
_ELEMENTS: Final[dict[int, int]] = {
    MessageType.CALL: 4,
    MessageType.CALL_RESULT: 3,
    MessageType.CALL_ERROR: 5,
    MessageType.CALL_RESULT_ERROR: 5,
    MessageType.SEND: 4,
}
_NAMES: Final[dict[int, str]] = {
    MessageType.CALL: "CALL",
    MessageType.CALL_RESULT: "CALLRESULT",
    MessageType.CALL_ERROR: "CALLERROR",
    MessageType.CALL_RESULT_ERROR: "CALLRESULTERROR",
    MessageType.SEND: "SEND",
}

_JSON_ERRORS = (msgspec.DecodeError, UnicodeError, RecursionError)

_ITEMS: Final = msgspec.json.Decoder(list[msgspec.Raw])
_INT: Final = msgspec.json.Decoder(int)
_STR: Final = msgspec.json.Decoder(str)

_OPEN_BRACE: Final = ord("{")

_T = TypeVar("_T")


def parse(data: bytes | str, version: OcppVersion) -> Frame:
    """The frame in ``data``, a text frame received on a ``version`` connection.

    Raises ``FrameError`` when the frame breaks a rule of OCPP-J (see the module
    docstring); never any other exception.
    """
    frame = _parse_quickly(data, version)
    return _parse_slowly(data, version) if frame is None else frame


def _parse_quickly(data: bytes | str, version: OcppVersion) -> Frame | None:
    """The frame, or None when it breaks a rule and the slow parser must say which.

    Rule 6 is checked on the text: the element that must be an object is the
    last one in every message type (the payload, or the error details), and a
    JSON value ends with "}" exactly when it is an object (a string ends with a
    quote, an array with "]", a number with a digit, a literal with a letter).
    So once the frame has decoded, the character before its closing "]" tells.
    That is several times cheaper than opening the payload's ``Raw``.
    """
    try:
        if isinstance(data, bytes):
            if not data.isascii():
                data.decode()  # rule 1: msgspec does not check UTF-8 inside a Raw payload
            ends_with_object = data.endswith(b"}]") or data.rstrip()[:-1].rstrip().endswith(b"}")
        else:
            ends_with_object = data.endswith("}]") or data.rstrip()[:-1].rstrip().endswith("}")
        frame = _DECODERS[version].decode(data)
    except _JSON_ERRORS:
        return None
    if not ends_with_object:
        return None  # rule 6
    # type() rather than isinstance(): on a Struct class (its metaclass) isinstance
    # costs several times more, and the frame types have no subclasses.
    if (type(frame) is CallError or type(frame) is CallResultError) and (
        frame.code not in _RECEIVED_ERROR_CODES[version]
    ):
        return None  # rule 7
    return frame


def _is_object(value: msgspec.Raw) -> bool:
    # Raw holds one valid JSON value, without surrounding whitespace.
    return memoryview(value)[0] == _OPEN_BRACE


def _parse_slowly(data: bytes | str, version: OcppVersion) -> Frame:
    """The reference parser: the rules one at a time, raising for the first broken one.

    ``parse`` calls it only for the frames ``_parse_quickly`` refused, so in
    practice it raises; the tests check that it accepts exactly the frames
    ``_parse_quickly`` accepts, and returns the same frames.
    """
    framing = FRAMING_ERROR[version]
    try:
        if isinstance(data, bytes):
            data.decode()
    except UnicodeDecodeError:
        raise FrameError(
            "-1",
            framing,
            "the frame is not valid UTF-8",
            message_type=None,
            reply=MessageType.CALL_ERROR,
        ) from None
    try:
        items = _ITEMS.decode(data)
    except msgspec.ValidationError:
        raise FrameError(
            "-1",
            framing,
            "a frame is a JSON array",
            message_type=None,
            reply=MessageType.CALL_ERROR,
        ) from None
    except _JSON_ERRORS:
        raise FrameError(
            "-1",
            framing,
            "the frame is not valid JSON",
            message_type=None,
            reply=MessageType.CALL_ERROR,
        ) from None

    message_id = _read(items, 1, _STR)
    if message_id is not None and not 1 <= len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        message_id = None
    answer_id = "-1" if message_id is None else message_id
    message_type = _read(items, 0, _INT)
    if message_type is None:
        raise FrameError(
            answer_id,
            framing,
            "the first element of a frame is its message type number, an integer",
            message_type=None,
            reply=MessageType.CALL_ERROR,
        )
    if message_type not in _MESSAGE_TYPES[version]:
        if version == "1.6":
            raise FrameError(
                answer_id,
                framing,
                f"{message_type} is not an OCPP-J 1.6 message type: ignored",
                message_type=message_type,
                reply=None,
            )
        raise FrameError(
            answer_id,
            "MessageTypeNotSupported",
            f"message type {message_type} is not supported in OCPP {version}",
            message_type=message_type,
            reply=MessageType.CALL_ERROR,
        )

    name = _NAMES[message_type]
    reply = _reply(message_type, version)

    def broken(code: str, description: str) -> FrameError:
        return FrameError(answer_id, code, description, message_type=message_type, reply=reply)

    if message_id is None:
        raise broken(
            framing,
            f"the message id is a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters",
        )
    if len(items) != _ELEMENTS[message_type]:
        raise broken(
            framing,
            f"a {name} has {_ELEMENTS[message_type]} elements, this one has {len(items)}",
        )

    if message_type in (MessageType.CALL, MessageType.SEND):
        action = _read(items, 2, _STR)
        if not action:
            raise broken(framing, f"the action of a {name} is a non-empty string")
        payload = items[3]
        if not _is_object(payload):
            raise broken(error_code(Violation.FORMAT, version), "the payload is not a JSON object")
        if message_type == MessageType.CALL:
            return Call(message_id=message_id, action=action, payload=payload)
        return Send(message_id=message_id, action=action, payload=payload)

    if message_type == MessageType.CALL_RESULT:
        payload = items[2]
        if not _is_object(payload):
            raise broken(error_code(Violation.FORMAT, version), "the payload is not a JSON object")
        return CallResult(message_id=message_id, payload=payload)

    code = _read(items, 2, _STR)
    if code not in _RECEIVED_ERROR_CODES[version]:
        raise broken(framing, f"the error code of a {name} is not an OCPP {version} error code")
    description = _read(items, 3, _STR)
    if description is None:
        raise broken(framing, f"the error description of a {name} is a string")
    details = items[4]
    if not _is_object(details):
        raise broken(
            error_code(Violation.FORMAT, version), "the error details are not a JSON object"
        )
    if message_type == MessageType.CALL_ERROR:
        return CallError(message_id=message_id, code=code, description=description, details=details)
    return CallResultError(
        message_id=message_id, code=code, description=description, details=details
    )


def _read(items: list[msgspec.Raw], index: int, decoder: msgspec.json.Decoder[_T]) -> _T | None:
    """Element ``index`` decoded with ``decoder``; None when it is missing or of another type."""
    if index >= len(items):
        return None
    try:
        return decoder.decode(items[index])
    except msgspec.ValidationError:
        return None


def _reply(message_type: int, version: OcppVersion) -> Reply:
    if message_type == MessageType.CALL:
        return MessageType.CALL_ERROR
    if message_type == MessageType.CALL_RESULT and version == "2.1":
        return MessageType.CALL_RESULT_ERROR
    return None


# --- encoding --------------------------------------------------------------------------

_ENCODER: Final = msgspec.json.Encoder()
_EMPTY_OBJECT: Final = msgspec.Raw(b"{}")


def encode_call(message_id: str, action: str, payload: bytes | msgspec.Raw) -> bytes:
    """``[2, message_id, action, payload]``; ``payload`` is the JSON text of an object."""
    return _ENCODER.encode((2, message_id, action, _raw(payload)))


def encode_call_result(message_id: str, payload: bytes | msgspec.Raw) -> bytes:
    """``[3, message_id, payload]``; ``payload`` is the JSON text of an object."""
    return _ENCODER.encode((3, message_id, _raw(payload)))


def encode_call_error(
    message_id: str,
    code: str,
    description: str = "",
    details: Mapping[str, object] | msgspec.Raw | None = None,
) -> bytes:
    """``[4, message_id, code, description, details]``; ``code`` is an error code of the version."""
    return _encode_error(4, message_id, code, description, details)


def encode_call_result_error(
    message_id: str,
    code: str,
    description: str = "",
    details: Mapping[str, object] | msgspec.Raw | None = None,
) -> bytes:
    """2.1 ``[5, message_id, code, description, details]``: answers a CALLRESULT."""
    return _encode_error(5, message_id, code, description, details)


def encode_send(message_id: str, action: str, payload: bytes | msgspec.Raw) -> bytes:
    """2.1 ``[6, message_id, action, payload]``; ``payload`` is the JSON text of an object."""
    return _ENCODER.encode((6, message_id, action, _raw(payload)))


def _raw(payload: bytes | msgspec.Raw) -> msgspec.Raw:
    return payload if isinstance(payload, msgspec.Raw) else msgspec.Raw(payload)


def _encode_error(
    message_type: int,
    message_id: str,
    code: str,
    description: str,
    details: Mapping[str, object] | msgspec.Raw | None,
) -> bytes:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        description = description[: MAX_DESCRIPTION_LENGTH - 3] + "..."
    frame = (
        message_type,
        message_id,
        code,
        description,
        _EMPTY_OBJECT if details is None else details,
    )
    try:
        return _ENCODER.encode(frame)
    except UnicodeEncodeError:
        # A lone surrogate (say, from text decoded with errors="surrogateescape") has
        # no UTF-8 form; the error report must still go out, so it becomes "?".
        description = description.encode("utf-8", "replace").decode()
        frame = (message_type, message_id, code, description, frame[4])
        return _ENCODER.encode(frame)
