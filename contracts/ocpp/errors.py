"""OCPP-J CALLERROR codes per protocol version, and how a payload violation maps onto them.

OCPP-J 1.6 §4.2.3 lists ten codes. Two of them are misspelt in 1.6 and the
errata keep them so ("Known issues that will not be fixed", 5.1 and 5.2):
``FormationViolation`` and ``OccurenceConstraintViolation``. OCPP 2.0.1 and 2.1
(Part 4 §4.3, Table 8) spell them ``FormatViolation`` and
``OccurrenceConstraintViolation`` and add ``MessageTypeNotSupported`` and
``RpcFrameworkError``.
"""

from __future__ import annotations

import enum

from contracts.ocpp import OcppVersion

__all__ = ["ERROR_CODES", "FRAMING_ERROR", "Violation", "error_code"]


class Violation(enum.Enum):
    """Why a payload does not match its schema, independent of the version's spelling."""

    FORMAT = "format"  # not an object, or a property the schema does not allow
    TYPE = "type"  # a JSON type other than the schema's ("somestring": 12)
    OCCURRENCE = "occurrence"  # a required property missing, too few or too many items
    PROPERTY = "property"  # right type, invalid value: enum, length, range, pattern, format


_V16 = {
    Violation.FORMAT: "FormationViolation",
    Violation.TYPE: "TypeConstraintViolation",
    Violation.OCCURRENCE: "OccurenceConstraintViolation",
    Violation.PROPERTY: "PropertyConstraintViolation",
}
_V2 = {
    Violation.FORMAT: "FormatViolation",
    Violation.TYPE: "TypeConstraintViolation",
    Violation.OCCURRENCE: "OccurrenceConstraintViolation",
    Violation.PROPERTY: "PropertyConstraintViolation",
}

ERROR_CODES: dict[OcppVersion, frozenset[str]] = {
    "1.6": frozenset(
        {
            "NotImplemented",
            "NotSupported",
            "InternalError",
            "ProtocolError",
            "SecurityError",
            "FormationViolation",
            "PropertyConstraintViolation",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "GenericError",
        }
    ),
    "2.0.1": frozenset(
        {
            "FormatViolation",
            "GenericError",
            "InternalError",
            "MessageTypeNotSupported",
            "NotImplemented",
            "NotSupported",
            "OccurrenceConstraintViolation",
            "PropertyConstraintViolation",
            "ProtocolError",
            "RpcFrameworkError",
            "SecurityError",
            "TypeConstraintViolation",
        }
    ),
}
ERROR_CODES["2.1"] = ERROR_CODES["2.0.1"]

# The answer (with message id "-1" when the id is unreadable) to a frame that is
# not a valid OCPP-J message: 1.6 knows only FormationViolation; 2.0.1 and 2.1
# answer RpcFrameworkError ("Content of the call is not a valid RPC Request").
FRAMING_ERROR: dict[OcppVersion, str] = {
    "1.6": "FormationViolation",
    "2.0.1": "RpcFrameworkError",
    "2.1": "RpcFrameworkError",
}


def error_code(violation: Violation, version: OcppVersion) -> str:
    """The CALLERROR code for a payload violation, spelt as ``version`` spells it."""
    return (_V16 if version == "1.6" else _V2)[violation]
