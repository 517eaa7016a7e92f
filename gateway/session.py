"""The OCPP-J session of one websocket connection: a sans-I/O state machine.

Feed it what happened, read back what to do::

    inputs                                  outputs
    receive_text(data)   a text frame       data_to_send()     text frames to write, in order
    receive_binary(data) a binary frame     events_received()  events to act on and publish
    answer(...)          CALLRESULT         next_deadline()    when tick() must run next
    answer_error(...)    CALLERROR
    call(...)            a command to send
    tick()               time has passed
    close()              the connection is gone

The gateway owns the socket, Kafka and the timer; after any input it writes
``data_to_send()`` first, then handles ``events_received()`` (a ``CloseRequested``
comes after the CALLERROR that explains it), then reschedules its one timer at
``next_deadline()``. Time is ``clock()`` (monotonic seconds, injected), and so is
every ``timeout``/``expires_at`` given here. Nothing here does I/O, logs or raises
on bad input from the station: a broken frame is answered, counted and reported
as a ``ProtocolIssue``.

The two directions [1.6 §4.1.1; 2.0.1 and 2.1 Part 4 §4.1.1 "Synchronicity"]:

- Station to CSMS. Each valid CALL becomes a ``StationCall``; the gateway answers
  it later with ``answer``/``answer_error``. OCPP-J allows one unanswered CALL per
  direction; stations that pipeline a few are tolerated up to
  ``SessionLimits.max_station_calls_in_flight``, beyond that they get
  ``GenericError``. A CALL reusing the id of one in flight gets ``GenericError``
  [1.6 §4.2.3 "an existing call with the same unique identifier is being handled
  already"]. A CALL reusing the id of one already answered with a CALLRESULT is
  the station's retry [2.0.1 errata 2024-09 §4.1.4 and 2.1 §4.1.4: "The message ID
  for a retried message ... MAY be identical"]: it gets the same answer again from
  a small replay cache, and no second event. A retry after a CALLERROR is handled
  as a new call, so that a call refused while Kafka was down succeeds on retry.
- CSMS to station. ``call`` queues a command; exactly one is outstanding at a
  time, sent with a fresh message id from ``new_message_id`` (which must never
  repeat an id within a session). It ends with exactly one of
  ``CommandAnswered``, ``CommandFailed``, ``CommandTimedOut``, ``CommandExpired``
  or ``CommandAborted``, and the next one is sent. Answers to anything but the
  outstanding call (unknown ids, late answers) are dropped.
- Calls crossing each other (a station CALL while ours is outstanding, and the
  reverse) are independent: both complete [§4.1.1 NOTE].
- Boot. With a :class:`gateway.boot.BootGate`, queued commands wait until the gate
  lets them through (the BootNotification answered, or the grace over), and CALLs
  the gate refuses get ``SecurityError``; the session tells the gate of every
  BootNotification answer and every command sent.

Costs: a Session is one GC-tracked object while idle (plus whatever its
``clock``/``new_message_id`` are: share them between sessions), plus its boot gate,
which the collector does not track. The dictionaries
and the queue are created on first use; the dictionaries hold only strings, bytes
and tuples of them, which CPython's collector does not track (tuples from their
first collection on). Events are ``msgspec.Struct(gc=False)``. The replay cache
holds up to ``replay_cache_size`` answer frames, about 1 KiB for four Heartbeats.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import msgspec

from contracts.ocpp import VERSIONS, Action, OcppVersion, actions
from contracts.ocpp.errors import ERROR_CODES, FRAMING_ERROR
from contracts.ocpp.validation import PayloadError, UnknownAction, decode_request, decode_response
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
    parse,
)
from gateway.boot import BootGate, asks_for
from gateway.errors import (
    ActionNotSupported,
    CallInProgress,
    CommandRejected,
    StationNotAccepted,
    TooManyCalls,
    call_error,
)

__all__ = [
    "CloseRequested",
    "CommandAborted",
    "CommandAnswered",
    "CommandExpired",
    "CommandFailed",
    "CommandTimedOut",
    "Event",
    "IssueKind",
    "ProtocolIssue",
    "Session",
    "SessionLimits",
    "StationCall",
    "StationSend",
]

# WebSocket close code 1008 "policy violation" [RFC 6455 §7.4.1].
POLICY_VIOLATION: Final = 1008


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLimits:
    """The bounds of one session; the gateway maps them to ``CSMS_*`` settings."""

    max_bad_frames: int = 10
    """Frames breaking OCPP-J (and binary frames) tolerated before ``CloseRequested``
    [RELIABILITY 13]."""
    max_station_calls_in_flight: int = 4
    """Unanswered station CALLs accepted at once; beyond, ``GenericError`` [§4.1.1]."""
    replay_cache_size: int = 4
    """CALLRESULTs kept to answer a retried CALL again [RELIABILITY 19]; 0 disables."""
    max_queued_commands: int = 64
    """Commands waiting behind the outstanding one; beyond, ``call`` raises."""

    def __post_init__(self) -> None:
        if self.max_bad_frames < 1:
            raise ValueError("max_bad_frames must be at least 1")
        if self.max_station_calls_in_flight < 1:
            raise ValueError("max_station_calls_in_flight must be at least 1")
        if self.replay_cache_size < 0:
            raise ValueError("replay_cache_size must not be negative")
        if self.max_queued_commands < 0:
            raise ValueError("max_queued_commands must not be negative")


# --- events ----------------------------------------------------------------------------


class StationCall(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A valid CALL from the station; answer it with ``answer`` or ``answer_error``.

    ``payload`` is the station's JSON text, unchanged; ``request`` its decoded form.
    """

    message_id: str
    action: str
    payload: msgspec.Raw
    request: msgspec.Struct


class StationSend(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A valid 2.1 SEND from the station; it gets no answer [2.1 §4.2.4]."""

    message_id: str
    action: str
    payload: msgspec.Raw
    request: msgspec.Struct


class CommandAnswered(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The station's valid CALLRESULT to command ``command_id``."""

    command_id: str
    action: str
    message_id: str
    payload: msgspec.Raw
    response: msgspec.Struct


class CommandFailed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The station answered command ``command_id`` with a CALLERROR, or with a CALLRESULT
    that is invalid (then ``code`` is the version's violation code and ``details`` None)."""

    command_id: str
    action: str
    message_id: str
    code: str
    description: str
    details: msgspec.Raw | None


class CommandTimedOut(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Command ``command_id`` was sent and not answered within its timeout [§4.1.1]."""

    command_id: str
    action: str
    message_id: str


class CommandExpired(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Command ``command_id`` reached its ``expires_at`` before it could be sent."""

    command_id: str
    action: str


class CommandAborted(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The connection closed before command ``command_id`` was answered; ``sent`` says
    whether the station may have received it (then ``message_id`` is the CALL's id)."""

    command_id: str
    action: str
    sent: bool
    message_id: str | None = None


IssueKind: TypeAlias = Literal[
    "bad_frame",  # broke OCPP-J framing (or was binary): answered with an error, or ignored
    "invalid_call",  # a CALL refused: unknown or unsupported action, invalid payload
    "invalid_send",  # a 2.1 SEND dropped: unknown action, not a SEND action, invalid payload
    "duplicate_call",  # a CALL with the id of one in flight: GenericError
    "too_many_calls",  # more station CALLs in flight than allowed: GenericError
    "replayed_answer",  # a retried CALL answered again from the replay cache
    "unknown_answer",  # a CALLRESULT/CALLERROR that matches no outstanding call: dropped
    "late_answer",  # a CALLRESULT/CALLERROR to our last call, which had ended: dropped
    "invalid_answer",  # the station's CALLRESULT failed validation (the command failed)
    "answer_rejected",  # 2.1 CALLRESULTERROR: the station could not process our answer
    "answer_not_in_flight",  # answer()/answer_error() for an id not in flight: ignored
    "invalid_reply",  # answer(validate=True) or answer_error() given an invalid reply
    "not_accepted",  # a CALL while the boot is not accepted (gateway.boot): SecurityError
]


class ProtocolIssue(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Something went wrong on the wire and was handled; for logs and metrics only."""

    kind: IssueKind
    message_id: str
    detail: str


class CloseRequested(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The gateway must close the websocket with ``code`` and ``reason``."""

    code: int
    reason: str


Event: TypeAlias = (
    StationCall
    | StationSend
    | CommandAnswered
    | CommandFailed
    | CommandTimedOut
    | CommandExpired
    | CommandAborted
    | ProtocolIssue
    | CloseRequested
)


class _Command:
    """A command queued or outstanding; ``message_id``/``deadline`` are set when sent."""

    __slots__ = (
        "action",
        "asks",
        "command_id",
        "deadline",
        "expires_at",
        "message_id",
        "payload",
        "timeout",
    )

    def __init__(
        self,
        command_id: str,
        action: str,
        payload: bytes | msgspec.Raw,
        timeout: float,
        expires_at: float | None,
        asks: str | None,
    ) -> None:
        self.command_id = command_id
        self.action = action
        self.asks = asks
        self.payload = payload
        self.timeout = timeout
        self.expires_at = expires_at
        self.message_id = ""
        self.deadline = 0.0


# Plain dicts: a lookup per CALL, on the hot path.
_ACTIONS: Final[dict[OcppVersion, dict[str, Action]]] = {
    version: dict(actions(version)) for version in VERSIONS
}

_CLOSED_BY_BAD_FRAMES: Final = "too many frames breaking OCPP-J"

_OBJECT: Final = msgspec.json.Decoder(dict[str, object])


class Session:
    """The OCPP-J state of one station connection (see the module docstring)."""

    __slots__ = (
        "_actions",
        "_answers",
        "_bad_frames",
        "_boot",
        "_clock",
        "_closed",
        "_events",
        "_last_call_id",
        "_limits",
        "_new_message_id",
        "_outgoing",
        "_outstanding",
        "_queue",
        "_station_calls",
        "_version",
    )

    def __init__(
        self,
        version: OcppVersion,
        limits: SessionLimits,
        *,
        clock: Callable[[], float],
        new_message_id: Callable[[], str],
        boot: BootGate | None = None,
    ) -> None:
        self._version: OcppVersion = version
        self._boot = boot
        self._limits = limits
        self._clock = clock
        self._new_message_id = new_message_id
        self._actions = _ACTIONS[version]
        self._outgoing: list[bytes] | None = None
        self._events: list[Event] | None = None
        # Station CALLs in flight: message id -> action.
        self._station_calls: dict[str, str] | None = None
        # The last CALLRESULTs sent: message id -> (action, frame), oldest first.
        self._answers: dict[str, tuple[str, bytes]] | None = None
        self._outstanding: _Command | None = None
        self._queue: deque[_Command] | None = None
        self._last_call_id: str | None = None
        self._bad_frames = 0
        self._closed = False

    # --- state, for the gateway and metrics ---------------------------------------------

    @property
    def version(self) -> OcppVersion:
        return self._version

    @property
    def queued_commands(self) -> int:
        """Commands waiting behind the outstanding one."""
        return 0 if self._queue is None else len(self._queue)

    @property
    def outstanding_command(self) -> str | None:
        """The command id of the CALL sent and not answered yet."""
        return None if self._outstanding is None else self._outstanding.command_id

    @property
    def station_calls_in_flight(self) -> int:
        """The station's CALLs not answered yet."""
        return 0 if self._station_calls is None else len(self._station_calls)

    # --- outputs -----------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The text frames to write, in order; each call returns them once."""
        outgoing = self._outgoing
        if outgoing is None:
            return []
        self._outgoing = None
        return outgoing

    def events_received(self) -> list[Event]:
        """The events since the last call, in order; each call returns them once."""
        events = self._events
        if events is None:
            return []
        self._events = None
        return events

    def next_deadline(self) -> float | None:
        """When ``tick`` must run next: the outstanding call's timeout, the earliest
        ``expires_at`` of a queued command, or the end of the boot gate's grace while it
        holds commands; None when nothing is waiting on time."""
        deadline = None if self._outstanding is None else self._outstanding.deadline
        if self._queue:
            grace = None if self._boot is None else self._boot.next_deadline()
            if grace is not None and (deadline is None or grace < deadline):
                deadline = grace
            for command in self._queue:
                expires_at = command.expires_at
                if expires_at is not None and (deadline is None or expires_at < deadline):
                    deadline = expires_at
        return deadline

    # --- inputs from the station --------------------------------------------------------

    def receive_text(self, data: bytes | bytearray | memoryview | str) -> None:
        """Handle one websocket text message (``bytes`` are its UTF-8 text)."""
        if self._closed or self._bad_frames >= self._limits.max_bad_frames:
            return
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)  # the codec reads bytes or str only
        try:
            frame = parse(data, self._version)
        except FrameError as exc:
            self._bad_frame(exc)
            return
        if type(frame) is Call:
            self._receive_call(frame)
        elif type(frame) is CallResult:
            self._receive_call_result(frame)
        elif type(frame) is CallError:
            self._receive_call_error(frame)
        elif type(frame) is Send:
            self._receive_send(frame)
        elif type(frame) is CallResultError:
            self._receive_call_result_error(frame)

    def receive_binary(self, data: bytes) -> None:
        """Handle a binary websocket message: OCPP-J is text only [1.6 §4.1.2; 2.0.1/2.1
        §4.1.2], so it is a frame that cannot be read [RELIABILITY 15]."""
        if self._closed or self._bad_frames >= self._limits.max_bad_frames:
            return
        self._bad_frame(
            FrameError(
                "-1",
                FRAMING_ERROR[self._version],
                "OCPP-J frames are text, not binary",
                message_type=None,
                reply=MessageType.CALL_ERROR,
            )
        )

    def _receive_call(self, frame: Call) -> None:
        """A CALL from the station, checked in this order:

        1. its id is in flight: ``GenericError`` [1.6 §4.2.3 "an existing call with the
           same unique identifier is being handled already"; 2.1 §4.2.3; RELIABILITY 19];
        2. its id was answered with a CALLRESULT, for the same action: that answer again
           [2.0.1 errata 2024-09 §4.1.4, 2.1 §4.1.4: a retry MAY reuse the id];
        3. too many in flight: ``GenericError`` [§4.1.1 allows one; we allow a few];
        4. the action is known, received by the CSMS, and its payload valid: else
           ``NotImplemented``, ``NotSupported`` or the violation's code [2.0.1/2.1
           §4.1.7 "Message Validity"; 1.6 §4.2.3 Table 7; RELIABILITY 17].
        """
        message_id = frame.message_id
        calls = self._station_calls
        if calls is None:
            calls = self._station_calls = {}
        elif message_id in calls:
            self._refuse(
                message_id,
                CallInProgress(f"message id {message_id} is in progress"),
                "duplicate_call",
            )
            return
        answers = self._answers
        if answers is not None:
            answered = answers.get(message_id)
            if answered is not None and answered[0] == frame.action:
                self._send(answered[1])
                self._issue("replayed_answer", message_id, frame.action)
                return
        if len(calls) >= self._limits.max_station_calls_in_flight:
            self._refuse(message_id, TooManyCalls(), "too_many_calls")
            return
        action = frame.action
        definition = self._actions.get(action)
        try:
            if definition is None:
                raise UnknownAction(self._version, action, "request")
            if definition.initiator == "csms" or definition.response is None:
                raise ActionNotSupported(f"the CSMS does not receive {action} as a CALL")
            request = decode_request(self._version, action, frame.payload)
        except (UnknownAction, ActionNotSupported, PayloadError) as exc:
            self._refuse(message_id, exc, "invalid_call")
            return
        boot = self._boot
        if boot is not None:
            if not boot.may_call(action):
                self._refuse(message_id, StationNotAccepted(), "not_accepted")
                return
            if self._queue and self._outstanding is None:
                self._send_next()  # the call may have opened the gate (a station that says
                # something other than BootNotification first counts as booted)
        calls[message_id] = action
        event = StationCall(
            message_id=message_id, action=action, payload=frame.payload, request=request
        )
        # self._event(event), inlined: this is the hot path
        if self._events is None:
            self._events = [event]
        else:
            self._events.append(event)

    def _receive_send(self, frame: Send) -> None:
        # 2.1 §4.2.4: "The receiver SHALL NOT respond to a SEND message"; a bad one is dropped.
        action = frame.action
        definition = self._actions.get(action)
        if definition is None or definition.response is not None:
            self._issue("invalid_send", frame.message_id, f"{action} is not a SEND message")
            return
        try:
            request = decode_request(self._version, action, frame.payload)
        except (PayloadError, UnknownAction) as exc:
            self._issue("invalid_send", frame.message_id, call_error(exc, self._version)[1])
            return
        self._event(
            StationSend(
                message_id=frame.message_id, action=action, payload=frame.payload, request=request
            )
        )

    def _receive_call_result(self, frame: CallResult) -> None:
        """The station's CALLRESULT [§4.2.2], validated against the action's response
        schema [2.0.1/2.1 §4.1.2: the right to reject messages not conforming to it]."""
        command = self._answered(frame.message_id)
        if command is None:
            return
        try:
            response = decode_response(self._version, command.action, frame.payload)
        except (PayloadError, UnknownAction) as exc:
            code, description = call_error(exc, self._version)
            if self._version == "2.1":
                # 2.1 §4.2.3: a CALLRESULT that cannot be processed gets a CALLRESULTERROR.
                self._send(encode_call_result_error(frame.message_id, code, description))
            self._issue("invalid_answer", frame.message_id, description)
            self._event(
                CommandFailed(
                    command_id=command.command_id,
                    action=command.action,
                    message_id=command.message_id,
                    code=code,
                    description=f"the station's answer is invalid: {description}",
                    details=None,
                )
            )
        else:
            self._event(
                CommandAnswered(
                    command_id=command.command_id,
                    action=command.action,
                    message_id=command.message_id,
                    payload=frame.payload,
                    response=response,
                )
            )
        self._send_next()

    def _receive_call_error(self, frame: CallError | CallResultError) -> None:
        """The station's CALLERROR to our CALL [§4.2.3]: the command failed."""
        command = self._answered(frame.message_id)
        if command is None:
            return
        self._event(
            CommandFailed(
                command_id=command.command_id,
                action=command.action,
                message_id=command.message_id,
                code=frame.code,
                description=frame.description,
                details=frame.details,
            )
        )
        self._send_next()

    def _receive_call_result_error(self, frame: CallResultError) -> None:
        """2.1 §4.2.3: the station could not process our CALLRESULT to its CALL
        ``message_id``. That answer is not replayed: the station's retry is a new call.
        Should the id be our outstanding CALL's, it answers that CALL instead."""
        outstanding = self._outstanding
        if outstanding is not None and outstanding.message_id == frame.message_id:
            self._receive_call_error(frame)
            return
        if self._answers is not None:
            self._answers.pop(frame.message_id, None)
        self._issue("answer_rejected", frame.message_id, f"{frame.code}: {frame.description}")

    def _answered(self, message_id: str) -> _Command | None:
        """The outstanding command ``message_id`` answers, now ended; None (and an issue)
        when it answers nothing outstanding [RELIABILITY 21]."""
        command = self._outstanding
        if command is None or command.message_id != message_id:
            if message_id == self._last_call_id:
                self._issue("late_answer", message_id, "the call had ended already")
            else:
                self._issue("unknown_answer", message_id, "no call with this id is outstanding")
            return None
        self._outstanding = None
        self._last_call_id = message_id
        return command

    def _bad_frame(self, exc: FrameError) -> None:
        """Answer a frame breaking OCPP-J as the codec says, count it, and close after
        ``max_bad_frames`` [RELIABILITY 13-16; 2.0.1/2.1 §4.2.3]."""
        if exc.reply == MessageType.CALL_ERROR:
            self._send(encode_call_error(exc.message_id, exc.code, exc.description))
        elif exc.reply == MessageType.CALL_RESULT_ERROR:
            self._send(encode_call_result_error(exc.message_id, exc.code, exc.description))
        self._issue("bad_frame", exc.message_id, exc.description)
        # A broken CALLRESULT or CALLERROR to our outstanding call still answers it.
        outstanding = self._outstanding
        if (
            outstanding is not None
            and outstanding.message_id == exc.message_id
            and exc.message_type in (MessageType.CALL_RESULT, MessageType.CALL_ERROR)
        ):
            self._outstanding = None
            self._last_call_id = exc.message_id
            self._event(
                CommandFailed(
                    command_id=outstanding.command_id,
                    action=outstanding.action,
                    message_id=outstanding.message_id,
                    code=exc.code,
                    description=f"the station's answer is invalid: {exc.description}",
                    details=None,
                )
            )
            self._send_next()
        self._bad_frames += 1
        if self._bad_frames >= self._limits.max_bad_frames:
            self._event(CloseRequested(code=POLICY_VIOLATION, reason=_CLOSED_BY_BAD_FRAMES))

    def _refuse(self, message_id: str, exc: Exception, kind: IssueKind) -> None:
        code, description = call_error(exc, self._version)
        self._send(encode_call_error(message_id, code, description))
        self._issue(kind, message_id, f"{code}: {description}")

    # --- answers to the station's calls --------------------------------------------------

    def answer(
        self, message_id: str, payload: bytes | msgspec.Raw, *, validate: bool = False
    ) -> None:
        """Send the CALLRESULT ``payload`` (the JSON text of the response) to station CALL
        ``message_id``. With ``validate``, a payload that is not a valid response to the
        call's action is replaced by a CALLERROR ``InternalError`` (a worker's bug is ours,
        not the station's). The answer to a BootNotification moves the boot gate: commands
        it held may follow the CALLRESULT at once."""
        calls = self._station_calls
        action = None if calls is None else calls.pop(message_id, None)
        if action is None:
            self._not_in_flight(message_id)
            return
        if validate:
            try:
                decode_response(self._version, action, payload)
            except (PayloadError, UnknownAction) as exc:
                self._issue("invalid_reply", message_id, call_error(exc, self._version)[1])
                self._send(encode_call_error(*self._internal_error(message_id)))
                return
        frame = encode_call_result(message_id, payload)
        # self._send(frame), inlined: this is the hot path
        if self._outgoing is None:
            self._outgoing = [frame]
        else:
            self._outgoing.append(frame)
        size = self._limits.replay_cache_size
        if size:
            answers = self._answers
            if answers is None:
                answers = self._answers = {}
            elif len(answers) >= size and message_id not in answers:
                del answers[next(iter(answers))]
            answers[message_id] = (action, frame)
        if action == "BootNotification" and self._boot is not None:
            self._boot_answered(payload)

    def _boot_answered(self, payload: bytes | msgspec.Raw) -> None:
        boot = self._boot
        assert boot is not None
        try:
            response = decode_response(self._version, "BootNotification", payload)
        except (PayloadError, UnknownAction):
            return  # the gateway's own answers are valid; a worker's were checked above
        boot.answered(getattr(response, "status", ""))
        self._send_next()

    def answer_error(
        self, message_id: str, code: str, description: str = "", details: bytes | None = None
    ) -> None:
        """Send a CALLERROR to station CALL ``message_id``. ``code`` must be one of the
        version's codes (else ``InternalError`` is sent); ``details`` must be the JSON text
        of an object [§4.2.3 "ErrorDetails ... JSON object"], else ``{}`` is sent. Nothing
        from a worker goes on the wire unchecked. CALLERRORs are not replayed: a retry is
        handled as a new call."""
        calls = self._station_calls
        if calls is None or calls.pop(message_id, None) is None:
            self._not_in_flight(message_id)
            return
        if code not in ERROR_CODES[self._version]:
            self._issue("invalid_reply", message_id, f"{code} is not an OCPP {self._version} code")
            self._send(encode_call_error(*self._internal_error(message_id)))
            return
        raw = None
        if details is not None:
            try:
                _OBJECT.decode(details)
                raw = msgspec.Raw(details)
            except msgspec.DecodeError:
                self._issue("invalid_reply", message_id, "error details are not a JSON object")
        self._send(encode_call_error(message_id, code, description, raw))

    def _internal_error(self, message_id: str) -> tuple[str, str, str]:
        code, description = call_error(Exception(), self._version)
        return message_id, code, description

    def _not_in_flight(self, message_id: str) -> None:
        if not self._closed:  # after close(), late replies are expected: no noise
            self._issue("answer_not_in_flight", message_id, "no station call with this id")

    # --- commands to the station ---------------------------------------------------------

    def call(
        self,
        command_id: str,
        action: str,
        payload: bytes | msgspec.Raw,
        *,
        timeout: float,
        expires_at: float | None = None,
    ) -> None:
        """Queue command ``command_id``: a CALL of ``action`` with ``payload`` (the JSON
        text of the request), sent when no other CALL of ours is outstanding [§4.1.1] and
        waiting ``timeout`` seconds for the answer; dropped as expired when ``clock()``
        reaches ``expires_at`` before it could be sent.

        Raises ``CommandRejected`` when the version has no such action, the station does
        not receive it, the payload is not a valid request, or the queue is full
        (``retriable``). After ``close()`` the command ends ``CommandAborted`` at once.
        """
        definition = self._actions.get(action)
        if definition is None:
            raise CommandRejected(f"OCPP {self._version} has no action {action}")
        if definition.initiator == "station" or definition.response is None:
            raise CommandRejected(f"a station does not receive {action} as a CALL")
        try:
            request = decode_request(self._version, action, payload)
        except (PayloadError, UnknownAction) as exc:
            description = call_error(exc, self._version)[1]
            raise CommandRejected(f"invalid {action} payload: {description}") from None
        if self._closed:
            self._event(CommandAborted(command_id=command_id, action=action, sent=False))
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self._limits.max_queued_commands:
            raise CommandRejected("the station's command queue is full", retriable=True)
        queue.append(
            _Command(command_id, action, payload, timeout, expires_at, asks_for(action, request))
        )
        if self._outstanding is None:
            self._send_next()

    def _send_next(self) -> None:
        """Send the next queued command that has not expired and that the boot gate lets
        through, if nothing is outstanding; the commands it holds keep their order."""
        queue = self._queue
        if not queue or self._outstanding is not None:
            return
        now = self._clock()
        boot = self._boot
        held: list[_Command] | None = None
        while queue:
            command = queue.popleft()
            if command.expires_at is not None and now >= command.expires_at:
                self._event(CommandExpired(command_id=command.command_id, action=command.action))
                continue
            if boot is not None and not boot.may_send(command.action, now):
                if held is None:
                    held = []
                held.append(command)
                continue
            if boot is not None:
                boot.sent(command.asks)
            command.message_id = self._new_message_id()
            command.deadline = now + command.timeout
            self._send(encode_call(command.message_id, command.action, command.payload))
            command.payload = b""  # sent: the session no longer needs it
            self._outstanding = command
            break
        if held is not None:
            queue.extendleft(reversed(held))
        if not queue:
            self._queue = None

    # --- time and the end -----------------------------------------------------------------

    def tick(self) -> None:
        """Time has passed: time the outstanding call out and expire queued commands whose
        moment has come, then send the next command."""
        if self._closed:
            return
        now = self._clock()
        command = self._outstanding
        if command is not None and now >= command.deadline:
            self._outstanding = None
            self._last_call_id = command.message_id
            self._event(
                CommandTimedOut(
                    command_id=command.command_id,
                    action=command.action,
                    message_id=command.message_id,
                )
            )
        queue = self._queue
        if queue and any(c.expires_at is not None and now >= c.expires_at for c in queue):
            waiting: deque[_Command] = deque()
            for queued in queue:
                if queued.expires_at is not None and now >= queued.expires_at:
                    self._event(CommandExpired(command_id=queued.command_id, action=queued.action))
                else:
                    waiting.append(queued)
            self._queue = waiting or None
        self._send_next()

    def close(self) -> None:
        """The connection is gone: every outstanding or queued command ends
        ``CommandAborted``; later input is ignored and nothing more is sent."""
        if self._closed:
            return
        self._closed = True
        self._outgoing = None
        self._station_calls = None
        self._answers = None
        command = self._outstanding
        if command is not None:
            self._outstanding = None
            self._event(
                CommandAborted(
                    command_id=command.command_id,
                    action=command.action,
                    sent=True,
                    message_id=command.message_id,
                )
            )
        if self._queue is not None:
            for queued in self._queue:
                self._event(
                    CommandAborted(command_id=queued.command_id, action=queued.action, sent=False)
                )
            self._queue = None

    # --- plumbing ------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        outgoing = self._outgoing
        if outgoing is None:
            self._outgoing = [frame]
        else:
            outgoing.append(frame)

    def _event(self, event: Event) -> None:
        events = self._events
        if events is None:
            self._events = [event]
        else:
            events.append(event)

    def _issue(self, kind: IssueKind, message_id: str, detail: str) -> None:
        self._event(ProtocolIssue(kind=kind, message_id=message_id, detail=detail))
