"""The gateway's exceptions, and the one function that turns an exception into a CALLERROR.

Exceptions::

    Exception
     └── GatewayError                 root of every exception the gateway raises on purpose
          ├── CommandRejected         Session.call() cannot accept a command (``reason``,
          │                           ``retriable``): invalid for the version, or the queue is full
          └── CallRefused             a station's CALL is answered with a CALLERROR; each
               │                      subclass fixes the code (valid in 1.6, 2.0.1 and 2.1)
               ├── ActionNotSupported     NotSupported: a known action the CSMS does not receive
               ├── CallInProgress         GenericError: the message id is being handled already
               ├── TooManyCalls           GenericError: too many of the station's calls in progress
               └── StationNotAccepted     SecurityError: a CALL before BootNotification was accepted

``call_error(exc, version)`` is the only place that decides what a CALLERROR says
[STYLE: "exactly one tested function turns an exception into a CALLERROR"]. Besides
the gateway's own ``CallRefused``, it knows the exceptions of the contracts a station's
frame can raise (``FrameError``, ``PayloadError``, ``UnknownAction``). Anything else is
a failure of ours: it becomes ``InternalError`` with a fixed description, so no
internal detail (a broker address, a stack frame, a Python repr) ever reaches the wire.
"""

from __future__ import annotations

from typing import Final

from contracts.ocpp import OcppVersion
from contracts.ocpp.errors import error_code
from contracts.ocpp.validation import PayloadError, UnknownAction
from contracts.ocppj import FrameError

__all__ = [
    "INTERNAL_ERROR_DESCRIPTION",
    "ActionNotSupported",
    "CallInProgress",
    "CallRefused",
    "CommandRejected",
    "GatewayError",
    "StationNotAccepted",
    "TooManyCalls",
    "call_error",
]

INTERNAL_ERROR_DESCRIPTION: Final = "internal error"


class GatewayError(Exception):
    """Root of the exceptions the gateway raises on purpose."""


class CommandRejected(GatewayError):
    """A command (a CALL to send to a station) cannot be accepted.

    ``retriable`` says whether the same command may succeed later (the queue was
    full) or never will (unknown action, an action the station does not receive,
    an invalid payload): the command ends ``invalid``.
    """

    def __init__(self, reason: str, *, retriable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable


class CallRefused(GatewayError):
    """A station's CALL is answered with a CALLERROR of ``code``, saying ``description``
    (the class's own when none is given)."""

    code: str = "GenericError"
    default_description: str = ""

    def __init__(self, description: str | None = None) -> None:
        if description is None:
            description = self.default_description
        super().__init__(description)
        self.description = description


class ActionNotSupported(CallRefused):
    """The action is known, but the CSMS does not receive it (OCPP-J: "recognized but not
    supported by the receiver"; 1.6 §4.2.3 Table 7, 2.0.1/2.1 §4.3)."""

    code = "NotSupported"
    default_description = "the CSMS does not receive this action"


class CallInProgress(CallRefused):
    """A CALL with the id of one still being handled [1.6 §4.2.3: "an existing call with
    the same unique identifier is being handled already"; RELIABILITY 19]."""

    code = "GenericError"
    default_description = "a call with this message id is in progress"


class TooManyCalls(CallRefused):
    """More unanswered CALLs from the station than the session allows (1.6/2.0.1/2.1
    §4.1.1 allow one; the session is lenient up to a bound)."""

    code = "GenericError"
    default_description = "too many calls in progress"


class StationNotAccepted(CallRefused):
    """A CALL other than BootNotification from a station not accepted yet [1.6 errata;
    2.0.1 B01.FR.10 / errata B02.FR.04; RELIABILITY 12]."""

    code = "SecurityError"
    default_description = "the station is not accepted: send BootNotification first"


def call_error(exc: BaseException, version: OcppVersion) -> tuple[str, str]:
    """The CALLERROR ``(code, description)`` that answers a CALL which raised ``exc``.

    The code is one of ``version``'s table (1.6 §4.2.3 Table 7; 2.0.1 §4.3 Table 8;
    2.1 §4.3 Table 9). An exception this function does not know is a failure of ours:
    ``InternalError`` and a fixed description, never the exception's text.
    """
    if isinstance(exc, CallRefused):
        return exc.code, exc.description
    if isinstance(exc, PayloadError):
        where = f"{exc.path}: " if exc.path else ""
        return error_code(exc.violation, version), f"{where}{exc.reason}"
    if isinstance(exc, UnknownAction):
        return "NotImplemented", str(exc)
    if isinstance(exc, FrameError):
        return exc.code, exc.description
    return "InternalError", INTERNAL_ERROR_DESCRIPTION
