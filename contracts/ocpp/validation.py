"""Decode an OCPP payload into its generated type, validating it on the way, at msgspec speed.

``decode_request(version, action, payload)`` and ``decode_response(...)`` turn
the payload of a CALL (or SEND) and of a CALLRESULT into the action's frozen
``msgspec.Struct``; the typed decode *is* the validation: there is no
jsonschema at run time. Each version/action/direction has one
``msgspec.json.Decoder``, built when this module is imported (about 20 ms)
and reused for every payload: two dict lookups, then native code.

Exceptions::

    LookupError
     └── UnknownAction       the action is not in the version's table (or has no response)
    ValueError
     └── PayloadError        the payload does not match the schema: ``violation``, ``path``,
                             ``reason``; ``str()`` reads "$.meterValue[0].sampledValue: ..."

``payload_error`` is the one place that turns msgspec's errors into a
``Violation``, the category a CALLERROR code is chosen from
(``contracts.ocpp.errors.error_code``; OCPP-J 1.6 §4.2.3, 2.0.1/2.1 Part 4 §4.3):

=============  ===============================================================
FORMAT         not JSON, not a JSON object, or a property the schema forbids
TYPE           a value of the wrong JSON type, ``null`` included
OCCURRENCE     a required property missing; too few or too many array items
PROPERTY       the right type, an invalid value: enumeration, string length,
               number range, date-time
=============  ===============================================================

Where the decoder and the schemas deliberately disagree (a date-time without
an offset is accepted, ``multipleOf`` is not enforced, ...): docs/contracts.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

import msgspec

from contracts.ocpp import VERSIONS, OcppVersion, actions
from contracts.ocpp.errors import Violation

__all__ = [
    "Payload",
    "PayloadError",
    "UnknownAction",
    "decode_request",
    "decode_response",
    "encode",
    "payload_error",
]

Direction = Literal["request", "response"]

# What a payload can be decoded from: the bytes of a frame's payload, a view of
# them, or the msgspec.Raw a frame decoder leaves the payload in.
Payload = bytes | memoryview | msgspec.Raw


class UnknownAction(LookupError):
    """The version has no such action, or the action has no response (a SEND)."""

    def __init__(self, version: str, action: str, direction: Direction) -> None:
        if version not in VERSIONS:
            message = f"unknown OCPP version {version!r}"
        elif direction == "response" and action in _REQUESTS[version]:
            message = f"OCPP {version} {action} is a SEND: it has no response"
        else:
            message = f"OCPP {version} has no action {action!r}"
        super().__init__(message)
        self.version = version
        self.action = action


class PayloadError(ValueError):
    """A payload that does not match its schema: what is wrong (``violation``), where
    (``path``, a JSONPath such as ``$.meterValue[0].sampledValue``) and why (``reason``)."""

    def __init__(self, violation: Violation, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.violation = violation
        self.path = path
        self.reason = reason


def _decoders(direction: Direction) -> dict[str, dict[str, msgspec.json.Decoder[msgspec.Struct]]]:
    """Version -> action -> the decoder of its request or response."""
    table: dict[str, dict[str, msgspec.json.Decoder[msgspec.Struct]]] = {}
    for version in VERSIONS:
        table[version] = {}
        for name, action in actions(version).items():
            struct = action.request if direction == "request" else action.response
            if struct is not None:
                table[version][name] = msgspec.json.Decoder(struct)
    return table


# Read-only by contract. Plain nested dicts because this is the hot path: two
# lookups cost about 40 ns, a (version, action) tuple key about 130 ns.
_REQUESTS: Final[Mapping[str, Mapping[str, msgspec.json.Decoder[msgspec.Struct]]]] = _decoders(
    "request"
)
_RESPONSES: Final[Mapping[str, Mapping[str, msgspec.json.Decoder[msgspec.Struct]]]] = _decoders(
    "response"
)
_ENCODER: Final = msgspec.json.Encoder()


def decode_request(version: OcppVersion, action: str, payload: Payload) -> msgspec.Struct:
    """The ``<action>Request`` of ``version`` in ``payload``; raises PayloadError or UnknownAction."""
    try:
        decoder = _REQUESTS[version][action]
    except KeyError:
        raise UnknownAction(version, action, "request") from None
    try:
        return decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise payload_error(exc) from exc
    except (UnicodeError, RecursionError) as exc:  # raw bytes from Kafka, say
        raise PayloadError(Violation.FORMAT, "$", f"invalid JSON: {exc}") from exc


def decode_response(version: OcppVersion, action: str, payload: Payload) -> msgspec.Struct:
    """The ``<action>Response`` of ``version`` in ``payload``; raises PayloadError or UnknownAction."""
    try:
        decoder = _RESPONSES[version][action]
    except KeyError:
        raise UnknownAction(version, action, "response") from None
    try:
        return decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise payload_error(exc) from exc
    except (UnicodeError, RecursionError) as exc:  # raw bytes from Kafka, say
        raise PayloadError(Violation.FORMAT, "$", f"invalid JSON: {exc}") from exc


def encode(payload: msgspec.Struct) -> bytes:
    """The JSON of ``payload``: unset optional properties are left out."""
    return _ENCODER.encode(payload)


# msgspec words its errors "<reason>", or "<reason> - at `<path>`" below the root.
_AT: Final = re.compile(r" - at `(\$[^`]*)`\Z")
_WRONG_TYPE: Final = re.compile(r"Expected `[^`]+`, got `[^`]+`\Z")


def payload_error(exc: msgspec.DecodeError) -> PayloadError:
    """The PayloadError, with its Violation, for an error msgspec raised decoding a payload.

    msgspec says what is wrong only in words, so this reads them, and
    ``tests/contracts`` pins every wording it relies on, per category and version.
    """
    if not isinstance(exc, msgspec.ValidationError):  # not JSON at all (truncated, malformed)
        return PayloadError(Violation.FORMAT, "$", f"invalid JSON: {exc}")
    message = str(exc)
    at = _AT.search(message)
    path, reason = (at.group(1), message[: at.start()]) if at else ("$", message)
    if reason.startswith("Object contains unknown field"):
        violation = Violation.FORMAT
    elif reason.startswith(("Object missing required field", "Expected `array` of length")):
        violation = Violation.OCCURRENCE
    elif _WRONG_TYPE.match(reason):
        # The payload itself must be an object (OCPP-J 1.6 §4.2.1: "Payload is a JSON
        # object containing the arguments relevant to the Action").
        violation = Violation.FORMAT if path == "$" else Violation.TYPE
    else:
        # "Invalid enum value", "Expected `str` of length <= 20", "Expected `int` >= 0",
        # "Invalid RFC3339 encoded datetime", "Number out of range": a value the
        # schema's constraints refuse.
        violation = Violation.PROPERTY
    return PayloadError(violation, path, reason)
