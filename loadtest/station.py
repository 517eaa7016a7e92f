"""One simulated charging station: an asyncio protocol around websockets' sans-I/O client.

Layers, from the socket up (the same as the gateway's, mirrored):

- asyncio (uvloop) calls :meth:`Station.data_received` with bytes;
- websockets' ``ClientProtocol`` (RFC 6455: the opening handshake, masking,
  control frames, the closing handshake, the size limit) turns them into the
  handshake response, then frames;
- ``contracts.ocppj`` parses the OCPP-J frames and encodes ours;
- the :class:`~loadtest.fleet.Fleet` decides what the station does and when.

An idle station is this object, websockets' protocol, a :class:`Link` and the
transport: no task, no queue, no future, no timer of its own (the fleet's one
:class:`~loadtest.schedule.Scheduler` wakes it). Each connection gets a new
:class:`Link`, the asyncio protocol, which forwards to the station only while
the station's ``generation`` is the one it was made for: once the fleet gives
up a connection (a failed handshake, a reconnect storm, the end of the run),
whatever its transport still reports is ignored, so a station can reconnect at
once without mixing up its old and new connections.

OCPP-J allows one outstanding CALL per direction; calls whose time comes while
one is outstanding wait in :attr:`Station.queue`, and their latency still
counts from their scheduled time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from contracts.ocpp.errors import Violation, error_code
from contracts.ocppj import (
    Call,
    CallError,
    CallResult,
    FrameError,
    encode_call,
    encode_call_error,
    encode_call_result,
    parse,
)
from contracts.service.websocket import release_websocket, write_pending
from loadtest import messages

if TYPE_CHECKING:
    from loadtest.fleet import Fleet

__all__ = ["Link", "Purpose", "Station", "StationState"]


class StationState:
    IDLE = 0  # not connected, nothing under way
    CONNECTING = 1  # TCP connect or websocket handshake under way
    OPEN = 2


class Purpose:
    """What the answer to a call is needed for (most calls need nothing)."""

    NONE = 0
    START_TRANSACTION = 1  # 1.6: the answer carries the transactionId


_SUBPROTOCOLS: Final = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}

# a queued call: (action, payload, scheduled, purpose)
Pending = tuple[str, bytes, float, int]


class Station:
    __slots__ = (
        "authorization",
        "connect_scheduled",
        "fleet",
        "generation",
        "in_flight_action",
        "in_flight_id",
        "in_flight_purpose",
        "in_flight_scheduled",
        "next_message",
        "number",
        "opening",
        "queue",
        "retries",
        "state",
        "station_id",
        "transaction",
        "transport",
        "url",
        "version",
        "ws",
    )

    def __init__(
        self,
        fleet: Fleet,
        number: int,
        station_id: str,
        url: str,
        version: str,
        authorization: str | None,
    ) -> None:
        self.fleet = fleet
        self.number = number
        self.station_id = station_id
        self.url = url
        self.version = version
        self.authorization = authorization
        self.state = StationState.IDLE
        self.generation = 0  # bumped by every connection: stale scheduler entries compare it
        self.ws: ClientProtocol | None = None
        self.transport: asyncio.Transport | None = None
        self.next_message = 0
        self.in_flight_id = ""  # "" when no call is outstanding
        self.in_flight_action = ""
        self.in_flight_scheduled = 0.0
        self.in_flight_purpose = Purpose.NONE
        self.queue: collections.deque[Pending] | None = None
        self.connect_scheduled = 0.0
        self.opening: asyncio.Task[None] | None = None  # the TCP connect under way
        self.retries = 0
        self.transaction: Any = None  # the fleet's transaction state while one runs

    # ------------------------------------------------------------------ connection

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        ws = self.ws = ClientProtocol(
            parse_uri(self.url),
            subprotocols=[Subprotocol(_SUBPROTOCOLS[self.version])],
            max_size=self.fleet.max_frame_size,
        )
        request = ws.connect()
        if self.authorization is not None:
            request.headers["Authorization"] = self.authorization
        ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is None:
            return
        ws.receive_data(data)
        self._process(ws)

    def eof_received(self) -> bool | None:
        ws = self.ws
        if ws is not None:
            # an HTTP answer without Content-Length ends at EOF: it may only now be complete
            ws.receive_eof()
            self._process(ws)
        return None

    def _process(self, ws: ClientProtocol) -> None:
        for event in ws.events_received():
            if type(event) is Frame:
                if event.opcode is Opcode.TEXT:
                    self._receive(bytes(event.data))
            elif type(event) is Response:
                self._handshake_answered(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        _release(self.ws)
        self.transport = None
        self.ws = None
        self.fleet.connection_lost(self, exc)

    # ------------------------------------------------------------------ handshake

    def _handshake_answered(self, response: Response) -> None:
        ws = self.ws
        assert ws is not None
        if self.state != StationState.CONNECTING:
            return
        if ws.handshake_exc is not None:
            if response.status_code == 101:
                reason = "connect:bad_handshake"
            else:
                reason = f"connect:http_{response.status_code}"
            retry_after = response.headers.get("Retry-After")
            self.fleet.connect_failed(self, reason, _seconds(retry_after))
            return
        if ws.subprotocol is None:
            self.fleet.connect_failed(self, "connect:no_subprotocol", None)
            return
        self.state = StationState.OPEN
        self.fleet.connected(self)

    # ------------------------------------------------------------------ OCPP-J

    def _receive(self, data: bytes) -> None:
        fleet = self.fleet
        try:
            frame = parse(data, self.version)  # type: ignore[arg-type]
        except FrameError as exc:
            fleet.recorder.error("protocol:" + exc.code, time.monotonic())
            return
        kind = type(frame)
        if kind is CallResult or kind is CallError:
            if frame.message_id != self.in_flight_id:
                fleet.recorder.error("late_answer", time.monotonic())
                return
            action = self.in_flight_action
            purpose = self.in_flight_purpose
            scheduled = self.in_flight_scheduled
            self.in_flight_id = ""
            now = time.monotonic()
            if kind is CallResult:
                fleet.recorder.answered(action, scheduled, now)
                if purpose:
                    fleet.call_answered(self, purpose, frame.payload)  # type: ignore[union-attr]
            else:
                fleet.recorder.failed(action, "callerror:" + frame.code, now)  # type: ignore[union-attr]
            self._send_next()
        elif kind is Call:
            self._answer(frame)  # type: ignore[arg-type]

    def _answer(self, call: Call) -> None:
        self.fleet.recorder.command(call.action)
        try:
            payload = messages.answer(self.version, call.action, bytes(call.payload))
        except (ValueError, KeyError, TypeError):  # a payload the answer needed to read
            code = error_code(Violation.FORMAT, self.version)  # type: ignore[arg-type]
            self.send(encode_call_error(call.message_id, code, "unreadable payload"))
            return
        if payload is None:
            self.send(encode_call_error(call.message_id, "NotImplemented", call.action))
            return
        self.send(encode_call_result(call.message_id, payload))
        if call.action == "TriggerMessage":
            self.fleet.triggered(self, bytes(call.payload))

    def call(self, action: str, payload: bytes, scheduled: float, purpose: int = 0) -> None:
        """Send a CALL whose time was ``scheduled``, or queue it behind the outstanding one."""
        self.fleet.recorder.called(action)
        if self.in_flight_id:
            queue = self.queue
            if queue is None:
                queue = self.queue = collections.deque()
            queue.append((action, payload, scheduled, purpose))
            return
        self._send_call(action, payload, scheduled, purpose)

    def _send_call(self, action: str, payload: bytes, scheduled: float, purpose: int) -> None:
        self.next_message += 1
        message_id = str(self.next_message)
        self.in_flight_id = message_id
        self.in_flight_action = action
        self.in_flight_scheduled = scheduled
        self.in_flight_purpose = purpose
        self.send(encode_call(message_id, action, payload))
        self.fleet.call_sent(self, message_id, scheduled)

    def _send_next(self) -> None:
        queue = self.queue
        if not queue:
            return
        timeout = self.fleet.call_timeout
        now = time.monotonic()
        while queue:
            action, payload, scheduled, purpose = queue.popleft()
            if now - scheduled < timeout:
                self._send_call(action, payload, scheduled, purpose)
                return
            self.fleet.recorder.failed(action, "timeout", now)
        self.queue = None

    def timed_out(self, message_id: str) -> None:
        """The scheduler's call: the call ``message_id`` got no answer in time."""
        if self.in_flight_id != message_id or self.state != StationState.OPEN:
            return
        self.in_flight_id = ""
        self.fleet.recorder.failed(self.in_flight_action, "timeout", time.monotonic())
        self._send_next()

    def forget_calls(self, reason: str | None) -> None:
        """The connection is gone: drop the outstanding and queued calls, failed as ``reason``."""
        now = time.monotonic()
        if self.in_flight_id:
            if reason is not None:
                self.fleet.recorder.failed(self.in_flight_action, reason, now)
            self.in_flight_id = ""
        if self.queue and reason is not None:
            for action, *_ in self.queue:
                self.fleet.recorder.failed(action, reason, now)
        self.queue = None

    # ------------------------------------------------------------------ output

    def send(self, frame: bytes) -> None:
        ws = self.ws
        if ws is None or ws.state is not State.OPEN:
            return
        ws.send_text(frame)
        self._flush()

    def _flush(self) -> None:
        ws = self.ws
        transport = self.transport
        if ws is None or transport is None:
            return
        write_pending(ws, transport)

    def give_up(self, *, gracefully: bool) -> None:
        """Leave the connection: with a closing handshake (the end of the run) or dropping
        it (a network outage, a failed handshake). What its transport reports afterwards is
        ignored (see :class:`Link`)."""
        self.generation += 1
        self.state = StationState.IDLE
        opening, self.opening = self.opening, None
        if opening is not None:
            opening.cancel()  # a TCP connect still retrying its SYN holds a socket: free it
        ws, transport = self.ws, self.transport
        self.ws = self.transport = None
        if transport is None:
            _release(ws)
            return
        if gracefully and ws is not None and ws.state is State.OPEN:
            with contextlib.suppress(InvalidState):
                ws.send_close(1000, "")
            for chunk in ws.data_to_send():
                if chunk:
                    transport.write(chunk)
            transport.close()
        else:
            transport.abort()
        _release(ws)


class Link(asyncio.Protocol):
    """The asyncio protocol of one connection attempt of ``station``."""

    __slots__ = ("generation", "station")

    def __init__(self, station: Station) -> None:
        self.station = station
        self.generation = station.generation

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        station = self.station
        if station.generation != self.generation or station.state != StationState.CONNECTING:
            transport.close()  # the attempt was given up (it timed out) while TCP connected
            return
        station.connection_made(transport)  # type: ignore[arg-type]  # uvloop's transport

    def data_received(self, data: bytes) -> None:
        if self.station.generation == self.generation:
            self.station.data_received(data)

    def eof_received(self) -> bool | None:
        if self.station.generation == self.generation:
            self.station.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        station = self.station
        if station.generation == self.generation:
            station.connection_lost(exc)
        self.station = None  # type: ignore[assignment]  # no cycle left for the collector


def _release(ws: ClientProtocol | None) -> None:
    """Break websockets' reference cycles at once (``release_websocket``).

    The garbage collector's policy freezes long-lived objects (``GcPolicy``),
    and a frozen cycle is never collected: without this, every connection a
    station leaves (a reconnect storm, a refused handshake) would stay in
    memory for good.
    """
    if ws is not None:
        release_websocket(ws)


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110 §10.2.3; the HTTP-date form is not used by CSMSs here)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
