"""One station's websocket: an asyncio protocol around websockets' sans-I/O core and the session.

Layers, from the socket up:

- asyncio (uvloop) calls :meth:`StationConnection.data_received` with bytes;
- websockets' ``ServerProtocol`` (its sans-I/O core: RFC 6455 framing, masking,
  control frames, close handshake, size limit) turns them into a handshake
  request, then frames;
- :class:`gateway.session.Session` turns text frames into OCPP events and our
  answers into frames;
- :class:`gateway.server.Gateway` decides (routing, Kafka, commands).

Not using websockets' asyncio connection layer saves a task, queues and futures
per connection and several microseconds per message (docs/benchmarks.md),
while the protocol itself stays websockets'.

Per-connection objects are kept few (``__slots__``, no per-connection tasks):
at 20,000 connections every tracked object costs garbage-collector time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from contracts.envelopes import SecurityProfile
from contracts.ocpp import OcppVersion
from contracts.service.websocket import release_websocket, write_pending
from gateway.frames import FrameSplitter, text_frame_header
from gateway.handshake import (
    InvalidIdentity,
    offered_subprotocols,
    select_subprotocol,
    station_identity,
)
from gateway.session import Session

if TYPE_CHECKING:
    from gateway.server import Gateway

__all__ = ["CloseCode", "StationConnection"]

log = logging.getLogger("gateway.connection")
_WEBSOCKETS_LOG = logging.getLogger("websockets.server")


class CloseCode:
    NORMAL = 1000
    GOING_AWAY = 1001  # drain on SIGTERM
    PROTOCOL_ERROR = 1002  # no common OCPP version
    POLICY_VIOLATION = 1008  # too many bad frames
    TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class StationConnection(asyncio.Protocol):
    """A station's connection, from the TCP accept to ``connection_lost``."""

    __slots__ = (
        "_handshake_timer",
        "_paused",
        "close_reason",
        "connected_at",
        "connection_id",
        "gateway",
        "last_input",
        "partition",
        "peer",
        "ping_sent_at",
        "remote_ip",
        "security_profile",
        "session",
        "splitter",
        "station_id",
        "subprotocol",
        "timer",
        "tls",
        "transport",
        "version",
        "ws",
    )

    def __init__(self, gateway: Gateway, *, tls: bool) -> None:
        self.gateway = gateway
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.ws: ServerProtocol | None = None
        self.session: Session | None = None
        self.splitter: FrameSplitter | None = None  # once the websocket is open
        self.station_id = ""
        self.version: OcppVersion | None = None
        self.subprotocol = ""
        self.connection_id = ""
        self.security_profile: SecurityProfile | None = None
        self.partition = 0
        self.remote_ip = ""
        self.peer = ""
        self.connected_at = 0.0
        self.last_input = 0.0
        self.ping_sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.close_reason = ""
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._paused = False

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.remote_ip = peer[0] if peer else ""
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        settings = self.gateway.settings
        self.ws = ServerProtocol(
            select_subprotocol=lambda protocol, offered: Subprotocol(self.subprotocol) or None,
            max_size=settings.max_frame_size,
            logger=_WEBSOCKETS_LOG,  # not looked up again per connection
        )
        self.last_input = time.monotonic()
        self._handshake_timer = asyncio.get_running_loop().call_later(
            settings.handshake_timeout, self._handshake_timed_out
        )
        self.gateway.handshake_started(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._data_received(data)
        except Exception:  # a bug must cost one connection, never the process or a silent drop
            log.exception("station.internal_error", extra=self.describe())
            self._fail_internally()

    def _fail_internally(self) -> None:
        ws = self.ws
        self.close_reason = "internal_error"
        if ws is not None and ws.state is State.CONNECTING and self.transport is not None:
            with contextlib.suppress(Exception):
                ws.send_response(ws.reject(500, "internal error\n"))
                for chunk in ws.data_to_send():
                    self.transport.write(chunk)
            self.abort()
        elif ws is not None and ws.state is State.OPEN:
            self.close(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            self.abort()

    def _data_received(self, data: bytes) -> None:
        if self.ws is None:
            return
        self.last_input = time.monotonic()
        splitter = self.splitter
        if splitter is not None:
            splitter.feed(data, self._text_frame, self._frame_for_websockets)
        else:
            opening = self.session is None
            self._frame_for_websockets(data)
            if opening and self.session is not None and data.endswith(b"\r\n\r\n"):
                # this read ended with the handshake: websockets holds no frame bytes, so the
                # frame splitter can take over from here (see gateway/frames.py); after a
                # handshake with frames pipelined behind it, websockets keeps the connection
                self.splitter = FrameSplitter(self.gateway.settings.max_frame_size)
        self.pump()

    def _text_frame(self, payload: bytes) -> None:
        """A whole text frame cut by the splitter: straight to the session."""
        ws = self.ws
        if ws is not None and ws.state is State.OPEN and self.session is not None:
            self.session.receive_text(payload)

    def _frame_for_websockets(self, data: bytes) -> None:
        """Bytes for websockets' protocol: the handshake, control frames, anything unusual."""
        ws = self.ws
        assert ws is not None
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                session = self.session
                if session is None:
                    continue
                if opcode is Opcode.TEXT:
                    session.receive_text(bytes(event.data))
                elif opcode is Opcode.BINARY:
                    session.receive_binary(bytes(event.data))
                elif opcode is Opcode.PONG:
                    self.ping_sent_at = 0.0
            elif type(event) is Request:
                self._handshake(event)

    def eof_received(self) -> bool | None:
        if self.ws is not None:
            self.ws.receive_eof()
            self.pump()
        return None  # let the transport close itself

    def pause_writing(self) -> None:  # the socket's send buffer is full: stop reading too
        self.pause_reading()

    def resume_writing(self) -> None:
        if not self.gateway.backpressure:
            self.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.timer, self._handshake_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self._handshake_timer = None
        self.transport = None
        self.gateway.connection_lost(self, exc)  # which calls release(), now or a little later

    def closed_with(self) -> int:
        """The close code, once the TCP connection is gone: the station's close frame's, or
        1006 when none came (what websockets' ``close_code`` says once it is CLOSED; asked
        directly, because feeding it the end of the stream costs more than all the rest)."""
        ws = self.ws
        received = ws.close_rcvd if ws is not None else None
        return 1006 if received is None else received.code

    def release(self) -> None:
        """Let go of the websocket and the session: the connection has ended."""
        if self.ws is not None:
            release_websocket(self.ws)  # no cycle may outlive it: frozen ones are never freed
        self.session = None
        self.ws = None

    # ------------------------------------------------------------------ flow control

    def pause_reading(self) -> None:
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------------ output

    def pump(self) -> None:
        """Hand the session's events to the gateway and write every pending byte."""
        session = self.session
        ws = self.ws
        if ws is None:
            return
        transport = self.transport
        close = None
        if session is not None:
            events = session.events_received()
            if events:
                close = self.gateway.session_events(self, events)
            frames = session.data_to_send()
            if frames and ws.state is State.OPEN and transport is not None:
                # what websockets queued (a pong, say) goes first, then our text frames,
                # whose header is written here rather than by websockets (gateway/frames.py)
                for chunk in ws.data_to_send():
                    transport.write(chunk)
                for frame in frames:
                    transport.write(text_frame_header(len(frame)) + frame)
            self._schedule_tick()
            if close is not None:  # after the frames: the CALLERROR that explains it goes first
                self.close(*close)
        if transport is None:
            return
        write_pending(ws, transport)
        if ws.state is State.CLOSED and not transport.is_closing():
            transport.close()

    def _schedule_tick(self) -> None:
        deadline = self.session.next_deadline() if self.session is not None else None
        timer = self.timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self.timer = None
            return
        loop_deadline = asyncio.get_running_loop().time() + (deadline - time.monotonic())
        if timer is not None:
            if abs(timer.when() - loop_deadline) < 0.001:
                return
            timer.cancel()
        self.timer = asyncio.get_running_loop().call_at(loop_deadline, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.session is not None:
            self.session.tick()
            self.pump()

    def send_ping(self) -> None:
        if self.ws is not None and self.ws.state is State.OPEN:
            self.ping_sent_at = time.monotonic()
            self.ws.send_ping(b"")
            self.pump()

    def close(self, code: int, reason: str) -> None:
        """Start the websocket closing handshake (the transport closes when it completes)."""
        if not self.close_reason:
            self.close_reason = reason
        ws = self.ws
        if ws is None:
            return
        if ws.state is State.OPEN:
            with contextlib.suppress(InvalidState):
                ws.send_close(code, reason[:120])
            self.pump()
            # a station that never answers the close frame is dropped after a while
            asyncio.get_running_loop().call_later(5.0, self.abort)
        elif ws.state is State.CONNECTING:
            self.abort()

    def abort(self, reason: str = "") -> None:
        """Drop the TCP connection without a closing handshake (half-open, timeouts)."""
        if reason and not self.close_reason:
            self.close_reason = reason
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ handshake

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        if self.session is None:
            self.gateway.metrics.handshakes_rejected.labels("timeout").inc()
            self.abort("handshake_timeout")

    def _reject(self, status: int, text: str, reason: str, **headers: str) -> None:
        assert self.ws is not None
        response = self.ws.reject(status, text + "\n")
        for name, value in headers.items():
            response.headers[name.replace("_", "-")] = value
        self._respond(response)
        self.gateway.handshake_rejected(self, reason, status)

    def _respond(self, response: Response) -> None:
        assert self.ws is not None
        self.ws.send_response(response)
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _handshake(self, request: Request) -> None:
        gateway = self.gateway
        assert self.ws is not None and self.transport is not None
        try:
            self.station_id = station_identity(request.path)
        except InvalidIdentity as exc:
            self._reject(400, str(exc), "bad_identity")
            return
        refusal = gateway.admission()
        if refusal is not None:
            status, text, reason, extra = refusal
            self._reject(status, text, reason, **extra)
            return
        offered = offered_subprotocols(request.headers.get_all("Sec-WebSocket-Protocol"))
        choice = select_subprotocol(offered, gateway.versions)
        # websockets parses this header strictly; hand it only the (clean) choice
        headers = Headers(request.headers)
        if "Sec-WebSocket-Protocol" in headers:
            del headers["Sec-WebSocket-Protocol"]
        if choice is not None:
            self.subprotocol, self.version = choice
            headers["Sec-WebSocket-Protocol"] = self.subprotocol
        request = Request(request.path, headers)
        response = self.ws.accept(request)
        if response.status_code != 101:  # not a valid websocket upgrade
            self._respond(response)
            gateway.handshake_rejected(self, "bad_request", response.status_code)
            return
        refusal = gateway.authenticate(self, request)
        if refusal is not None:
            status, text, reason, extra = refusal
            self._reject(status, text, reason, **extra)
            return
        if self.station_id in gateway.connections and self._client_gone():
            # an attempt its station gave up on (it timed out, closed, and connected again)
            # reaching us late from the accept queue: it must not replace the live connection
            gateway.handshake_rejected(self, "abandoned", 499)
            self.abort("abandoned")
            return
        self._respond(response)
        if choice is None:
            # OCPP-J §3.2: complete the handshake without a subprotocol, then close at once
            gateway.handshake_rejected(self, "no_subprotocol", 101)
            self.close(CloseCode.PROTOCOL_ERROR, "no supported OCPP version offered")
            return
        gateway.station_connected(self)

    def _client_gone(self) -> bool:
        """Has the client closed its side already (its FIN or reset waits behind the request)?

        A peek at the socket, without taking anything from it; asked only when the
        handshake would replace a connection, so that storms pay it, not every station.
        """
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return False
        try:
            with socket.socket(fileno=os.dup(sock.fileno())) as peek:
                return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:  # nothing to read: the client is there, waiting for the answer
            return False
        except OSError:  # reset
            return True

    def describe(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "remote": self.peer,
            "ocpp_version": self.version,
            "connection_id": self.connection_id,
        }
