"""The gateway: station connections in, events to Kafka, answers and commands out.

One :class:`Gateway` per process. It owns the connections (by station id), the
batching Kafka publisher, the routing table, the answers waiting for Kafka or
for a worker, and backpressure. Commands and presence have their own modules
(:mod:`gateway.commands`, :mod:`gateway.presence`); sockets are
:class:`gateway.connection.StationConnection`.

The guarantee it keeps: a station never gets a CALLRESULT for a call whose event
Kafka has not acknowledged (ARCHITECTURE.md, "Guarantees"). Routine calls are
answered in the publisher's acknowledgement callback; if no acknowledgement
comes within ``kafka_ack_timeout`` the station gets CALLERROR InternalError and
its own retry brings the call back.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from websockets.http11 import Request

from contracts.bus.publisher import Done, Publisher, partition_for
from contracts.envelopes import (
    GATEWAY_GONE,
    ConnectedPayload,
    DisconnectedPayload,
    EventKind,
    Presence,
    RejectedPayload,
    StationEvent,
    StationRecord,
    encode_connection_payload,
    encode_event,
    encode_presence,
    record_key,
)
from contracts.headers import event_headers, presence_headers, tombstone_headers
from contracts.ocpp import VERSIONS, OcppVersion
from contracts.topics import EVENTS, PRESENCE
from gateway.auth import FAILED_LOGIN_REASONS, Attempt, Authenticator
from gateway.boot import BootGate
from gateway.connection import CloseCode, StationConnection
from gateway.metrics import GatewayMetrics
from gateway.routing import Context, Handling, Route, routes
from gateway.session import (
    CloseRequested,
    CommandAborted,
    CommandAnswered,
    CommandExpired,
    CommandFailed,
    CommandTimedOut,
    ProtocolIssue,
    Session,
    SessionLimits,
    StationCall,
    StationSend,
)
from gateway.settings import GatewaySettings

__all__ = ["Gateway"]

log = logging.getLogger("gateway")

_HANDLING_LABEL = {Handling.ANSWER: "answer", Handling.DELEGATE: "delegate"}

# Refusals counted in one line a second instead of a line each: those that say "not now"
# (HTTP 503 with Retry-After) rather than "not you", and attempts their station had given up
SUMMED_REFUSALS = frozenset({"abandoned", "capacity", "draining", "overloaded"})

# Lost connections ended and reported (~100 µs each) per loop iteration: a few
# milliseconds at a time, however many sockets reset together.
DEPARTURES_PER_ITERATION = 100


class _Departure(NamedTuple):
    """A connection that was lost, waiting to be ended and reported."""

    connection: StationConnection
    exc: Exception | None
    current: bool  # it was the station's connection in the table
    lost_at: float  # time.monotonic()
    at: datetime


class _Call:
    """A station call waiting for Kafka's acknowledgement and, when delegated, a worker's reply."""

    __slots__ = (
        "acked",
        "action",
        "answer",
        "connection",
        "done",
        "handling",
        "message_id",
        "received",
        "reply_by",
    )

    def __init__(
        self,
        connection: StationConnection,
        message_id: str,
        action: str,
        handling: Handling,
        answer: bytes | None,
        received: float,
    ) -> None:
        self.connection = connection
        self.message_id = message_id
        self.action = action
        self.handling = handling
        self.answer = answer
        self.received = received
        self.reply_by = 0.0
        self.acked = False
        self.done = False


class Gateway:
    """Everything one gateway process does, minus the listening sockets (see :meth:`serve`)."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        publisher: Publisher,
        authenticator: Authenticator,
        metrics: GatewayMetrics,
    ) -> None:
        self.settings = settings
        self.instance_id = settings.resolved_instance_id()
        self.publisher = publisher
        self.authenticator = authenticator
        self.metrics = metrics
        self.versions: tuple[OcppVersion, ...] = tuple(
            v for v in VERSIONS if v in settings.ocpp_versions
        )
        self.routes = routes(settings.boot_policy)
        self.limits = SessionLimits(
            max_bad_frames=settings.max_bad_frames,
            max_station_calls_in_flight=settings.max_station_calls_in_flight,
            max_queued_commands=settings.max_queued_commands,
            replay_cache_size=settings.replay_cache_size,
        )
        self.connections: dict[str, StationConnection] = {}
        self.handshaking = 0
        self.backpressure = False
        self.draining = False
        self._full = False
        self._sweep: list[StationConnection] = []  # connections the ping sweep has still to see
        self._sweep_share = 1
        self.commands: Any = None  # gateway.commands.CommandDelivery, set by the application
        self.presence: Any = None  # gateway.presence.PresenceView, set by the application
        # calls waiting for Kafka's ack (FIFO: one timeout for all) and for workers' replies
        self._awaiting_ack: collections.deque[tuple[float, _Call]] = collections.deque()
        self._awaiting_reply: collections.deque[_Call] = collections.deque()
        self._replies: dict[tuple[str, str], _Call] = {}
        self._departures: collections.deque[_Departure] = collections.deque()
        self._recording_departures = False
        self._refused: dict[str, int] = {}  # admission refusals by reason, since the last line
        self._labels: dict[tuple[str, str, str], Any] = {}
        # ids of the gateway's calls: unique per process (so per connection), short, never reused
        self._message_prefix = os.urandom(4).hex() + "-"
        self._message_counter = itertools.count(1)
        # connection and lifecycle event ids, unique across processes and restarts without
        # a system call each (uuid4 reads the kernel's random source): 64 random bits, a counter
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count(1)

    # ------------------------------------------------------------------ connections

    def new_connection(self, *, tls: bool) -> StationConnection:
        connection = StationConnection(self, tls=tls)
        if self.backpressure:
            connection.pause_reading()
        return connection

    @property
    def overloaded(self) -> bool:
        """Too busy for more work: admission and BootNotification answers look at this."""
        return self.backpressure or self.handshaking > self.settings.max_handshakes_in_progress

    def handshake_started(self, connection: StationConnection) -> None:
        self.handshaking += 1
        connection.connection_id = ""
        if self.backpressure:
            connection.pause_reading()

    def admission(self) -> tuple[int, str, str, dict[str, str]] | None:
        """None when a handshake may go on; else the 503 that says "not now".

        Asked before anything else is done for the handshake: in a reconnect
        storm most attempts end here, and each should cost as little as possible.
        """
        if self.draining:
            return 503, "the gateway is shutting down", "draining", {"Retry_After": "5"}
        if len(self.connections) >= self.settings.max_connections:
            return 503, "too many connections", "capacity", {"Retry_After": "30"}
        if self.handshaking > self.settings.max_handshakes_in_progress:
            return 503, "too many connections in progress", "overloaded", {"Retry_After": "5"}
        return None

    def authenticate(
        self, connection: StationConnection, request: Request
    ) -> tuple[int, str, str, dict[str, str]] | None:
        """None to accept; else (HTTP status, text, reason, extra headers) to refuse."""
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():  # repeated lines join, as RFC 9110 §5.3
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        transport = connection.transport
        attempt = Attempt(
            station_id=connection.station_id,
            remote_ip=connection.remote_ip,
            authorization=request.headers.get("Authorization"),
            tls=connection.tls,
            peer_cert=transport.get_extra_info("peercert")
            if transport is not None and connection.tls
            else None,
            headers=headers,
        )
        decision = self.authenticator.authenticate(attempt)
        if decision.remote_address:  # the client behind a trusted proxy, in offload mode
            connection.peer = decision.remote_address
        if decision.accepted:
            connection.security_profile = decision.security_profile
            return None
        if decision.reason in FAILED_LOGIN_REASONS:
            self.metrics.failed_logins.labels(decision.reason).inc()
        if decision.security_event:
            self._publish_rejected(connection, decision.reason, decision.http_status)
        extra = {"WWW_Authenticate": 'Basic realm="csms"'} if decision.www_authenticate else {}
        if decision.retry_after is not None:
            extra["Retry_After"] = str(decision.retry_after)
        text = {401: "unauthorized", 403: "forbidden", 404: "unknown station"}.get(
            decision.http_status, decision.reason.replace("_", " ")
        )
        return decision.http_status, text, decision.reason, extra

    def station_changed(self, station_id: str, record: StationRecord | None) -> None:
        """The registry changed: disconnect a station that was removed, disabled or re-profiled."""
        connection = self.connections.get(station_id)
        if connection is None or connection.security_profile in (None, 0):
            return  # not here, or let in as unknown (development mode)
        if record is None:
            reason = "station removed from the registry"
        elif not record.enabled:
            reason = "station disabled"
        elif record.security_profile != connection.security_profile:
            reason = "security profile changed"
        else:
            return
        log.info("station.revoked", extra=connection.describe() | {"reason": reason})
        connection.close(CloseCode.POLICY_VIOLATION, reason)
        connection.close_reason = "revoked"

    def handshake_rejected(self, connection: StationConnection, reason: str, status: int) -> None:
        self.metrics.handshakes_rejected.labels(reason).inc()
        if reason in SUMMED_REFUSALS:
            # a reconnect storm is refused tens of thousands of times a minute: counted here,
            # logged as one line a second (log_refusals), not one line per attempt
            self._refused[reason] = self._refused.get(reason, 0) + 1
            return
        log.info(
            "station.rejected",
            extra={
                "station_id": connection.station_id,
                "remote": connection.peer,
                "reason": reason,
                "http_status": status,
            },
        )

    def log_refusals(self) -> None:
        """One ``gateway.admission_refused`` line for the handshakes refused since the last one."""
        if self._refused:
            refused, self._refused = self._refused, {}
            log.info(
                "gateway.admission_refused",
                extra={
                    "refused": refused,
                    "handshakes_in_progress": self.handshaking,
                    "connections": len(self.connections),
                },
            )

    def station_connected(self, connection: StationConnection) -> None:
        """The handshake succeeded: register, replace an older connection, publish the facts."""
        self.handshaking -= 1
        version = connection.version
        assert version is not None
        connection.connection_id = self._unique_id()
        connection.connected_at = time.monotonic()
        connection.partition = partition_for(
            record_key(connection.station_id), self.publisher.partitions(EVENTS.name)
        )
        connection.session = Session(
            version,
            self.limits,
            clock=time.monotonic,
            new_message_id=self._new_message_id,
            boot=BootGate.opened(
                version,
                connection.connected_at,
                grace=self.settings.boot_grace,
                strict=self.settings.require_boot,
            ),
        )
        previous = self.connections.get(connection.station_id)
        self.connections[connection.station_id] = connection
        if previous is not None:
            # RELIABILITY 9: an authenticated newer connection replaces the older one
            previous.close(CloseCode.NORMAL, "replaced by a newer connection")
        self.metrics.connections.labels(version).inc()
        self.metrics.connections_opened.labels(version).inc()
        now = datetime.now(UTC)
        payload = msgspec.Raw(
            encode_connection_payload(
                ConnectedPayload(
                    remote_address=connection.peer,
                    subprotocol=connection.subprotocol,
                    security_profile=connection.security_profile or 0,
                )
            )
        )
        self._publish_lifecycle(connection, "connected", payload, now)
        presence = Presence(
            station_id=connection.station_id,
            gateway_id=self.instance_id,
            connection_id=connection.connection_id,
            ocpp_version=version,
            connected_at=now,
        )
        if self.presence is not None:
            self.presence.held(presence)
        self.publisher.publish(
            PRESENCE.name,
            record_key(connection.station_id),
            encode_presence(presence),
            presence_headers(presence),
            _ignore,
        )
        log.info("station.connected", extra=connection.describe() | {"tls": connection.tls})
        if self.commands is not None:
            self.commands.station_connected(connection)

    def connection_lost(self, connection: StationConnection, exc: Exception | None) -> None:
        """The socket is gone: out of the connection table now, the rest a slice at a time.

        uvloop calls this for every socket that reset in one loop iteration: in an
        outage, thousands in a row. Only what a station coming back needs is done at
        once (the table no longer holds the old connection); ending the session, the
        presence tombstone, the ``disconnected`` event and the log line follow in
        slices of :data:`DEPARTURES_PER_ITERATION` per loop iteration
        (:meth:`record_departures`), so that the handshakes of the stations coming
        back and the answers waiting for Kafka are served in between.
        """
        if connection.session is None:  # never got past the handshake
            if connection.connection_id == "":
                self.handshaking -= 1
                connection.connection_id = "-"
            connection.release()
            return
        current = self.connections.get(connection.station_id) is connection
        if current:
            del self.connections[connection.station_id]
        self._departures.append(
            _Departure(connection, exc, current, time.monotonic(), datetime.now(UTC))
        )
        if not self._recording_departures:
            self._recording_departures = True
            asyncio.get_running_loop().call_soon(self._record_departures_slice)

    def _record_departures_slice(self) -> None:
        self.record_departures(DEPARTURES_PER_ITERATION)
        if self._departures:
            asyncio.get_running_loop().call_soon(self._record_departures_slice)  # next iteration
        else:
            self._recording_departures = False

    def record_departures(self, limit: int | None = None) -> None:
        """End up to ``limit`` of the connections that were lost, oldest first."""
        departures = self._departures
        for _ in range(len(departures) if limit is None else min(limit, len(departures))):
            self._depart(departures.popleft())

    def _depart(self, departure: _Departure) -> None:
        connection = departure.connection
        session = connection.session
        version = connection.version
        assert session is not None and version is not None
        close_code = connection.closed_with()
        session.close()
        self.session_events(connection, session.events_received())
        self.metrics.connections.labels(version).dec()
        reason = connection.close_reason or ("error" if departure.exc else "closed_by_station")
        self.metrics.connections_closed.labels(reason).inc()
        station_id = connection.station_id
        if (
            departure.current
            and station_id not in self.connections  # not back here meanwhile
            and (self.presence is None or self.presence.owns(connection))
        ):
            handled = None if self.commands is None else self.commands.handled(station_id)
            self.publish_tombstone(station_id, departure.at, commands_handled=handled)
            if self.presence is not None:
                self.presence.released(station_id, connection.connection_id, handled)
        duration = round(departure.lost_at - connection.connected_at, 3)
        payload = msgspec.Raw(
            encode_connection_payload(
                DisconnectedPayload(
                    close_code=close_code,
                    close_reason=connection.close_reason,
                    connected_seconds=duration,
                )
            )
        )
        self._publish_lifecycle(connection, "disconnected", payload, departure.at)
        log.info(
            "station.disconnected",
            extra=connection.describe()
            | {"close_code": close_code, "reason": reason, "duration_s": duration},
        )
        connection.release()

    def _unique_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):016x}"

    def _new_message_id(self) -> str:
        return f"{self._message_prefix}{next(self._message_counter)}"

    def publish_tombstone(
        self,
        station_id: str,
        at: datetime,
        on_done: Done | None = None,
        *,
        commands_handled: int | None = None,
    ) -> None:
        """Say in ``ocpp.presence.v1`` that nobody holds the station any more.

        The station's holder says up to which offset of ``ocpp.commands.v1`` its
        connection handled the station's commands (``commands_handled``), so that
        the offline responder gives those no second result (:mod:`gateway.offline`).
        """
        headers = tombstone_headers(
            PRESENCE, station_id, source=self._source, at=at, commands_handled=commands_handled
        )
        self.publisher.publish(
            PRESENCE.name, record_key(station_id), None, headers, on_done or _ignore
        )

    def publish_departed(self, record: Presence, on_done: Done) -> None:
        """End a connection that a gone gateway (or this one's predecessor) left in presence.

        Its holder cannot say the connection ended, so this gateway does, for it:
        a tombstone in ``ocpp.presence.v1``, and a ``disconnected`` event in
        ``ocpp.events.v1`` naming the holder's gateway and connection, close code
        1006 and reason ``gateway_gone``, so that readers of the events (the alerts
        worker) see the station offline. Its ``message_id`` comes from the
        connection, so two gateways that both clear the record write one event twice.
        ``on_done`` hears about the tombstone and the event, once each.
        """
        at = datetime.now(UTC)
        self.publish_tombstone(record.station_id, at, on_done)
        event = StationEvent(
            station_id=record.station_id,
            kind="disconnected",
            message_id=f"gone-{record.connection_id}",
            ocpp_version=record.ocpp_version,
            gateway_id=record.gateway_id,
            connection_id=record.connection_id,
            received_at=at,
            payload=msgspec.Raw(
                encode_connection_payload(
                    DisconnectedPayload(
                        close_code=1006,
                        close_reason=GATEWAY_GONE,
                        connected_seconds=max(0.0, (at - record.connected_at).total_seconds()),
                    )
                )
            ),
        )
        self.publisher.publish(
            EVENTS.name,
            record_key(record.station_id),
            encode_event(event),
            event_headers(event),
            on_done,
        )

    @property
    def _source(self) -> str:
        return f"/csms/gateway/{self.instance_id}"

    # ------------------------------------------------------------------ session events

    def session_events(
        self, connection: StationConnection, events: list[Any]
    ) -> tuple[int, str] | None:
        """Act on a session's events; returns the close (code, reason) the session asked for."""
        close = None
        for event in events:
            kind = type(event)
            if kind is StationCall:
                self._station_call(connection, event)
            elif kind is StationSend:
                self._station_send(connection, event)
            elif kind in (
                CommandAnswered,
                CommandFailed,
                CommandTimedOut,
                CommandExpired,
                CommandAborted,
            ):
                if self.commands is not None:
                    self.commands.finished(connection, event)
            elif kind is ProtocolIssue:
                self.metrics.protocol_issues.labels(event.kind).inc()
                log.debug(
                    "station.protocol_issue", extra=connection.describe() | {"kind": event.kind}
                )
            elif kind is CloseRequested:
                connection.close_reason = "protocol_violation"
                close = (event.code, event.reason)
        return close

    def _count(self, version: str, action: str, outcome: str) -> None:
        key = (version, action, outcome)
        child = self._labels.get(key)
        if child is None:
            child = self._labels[key] = self.metrics.station_calls.labels(*key)
        child.inc()

    def _station_call(self, connection: StationConnection, call: StationCall) -> None:
        session = connection.session
        version = connection.version
        assert session is not None and version is not None
        route: Route | None = self.routes[version].get(call.action)
        if route is None:  # the session only emits station-initiated actions; be safe anyway
            session.answer_error(call.message_id, "NotSupported", "not a station action")
            return
        handling = route.handling_for(call.request)
        now = datetime.now(UTC)
        received = time.monotonic()
        answer = None
        if handling is Handling.ANSWER:
            assert route.answer is not None
            answer = route.answer(
                call.request,
                Context(
                    now=now,
                    heartbeat_interval=self.settings.heartbeat_interval,
                    overloaded=self.overloaded,
                    boot_retry_interval=self.settings.boot_retry_interval,
                ),
            )
        pending = _Call(connection, call.message_id, call.action, handling, answer, received)
        reply_by = None
        if handling is Handling.DELEGATE:
            pending.reply_by = received + self.settings.reply_timeout
            reply_by = now + timedelta(seconds=self.settings.reply_timeout)
            self._replies[(connection.station_id, call.message_id)] = pending
            self._awaiting_reply.append(pending)
        event = StationEvent(
            station_id=connection.station_id,
            kind="call",
            message_id=call.message_id,
            action=call.action,
            ocpp_version=version,
            gateway_id=self.instance_id,
            connection_id=connection.connection_id,
            received_at=now,
            reply_expected=handling is Handling.DELEGATE,
            reply_by=reply_by,
            payload=call.payload,
        )
        self._awaiting_ack.append((received + self.settings.kafka_ack_timeout, pending))
        self.publisher.publish(
            EVENTS.name,
            record_key(connection.station_id),
            encode_event(event),
            event_headers(event),
            lambda exc: self._acked(pending, exc),
            connection.partition,
        )

    def _station_send(self, connection: StationConnection, send: StationSend) -> None:
        version = connection.version
        assert version is not None
        event = StationEvent(
            station_id=connection.station_id,
            kind="send",
            message_id=send.message_id,
            action=send.action,
            ocpp_version=version,
            gateway_id=self.instance_id,
            connection_id=connection.connection_id,
            received_at=datetime.now(UTC),
            payload=send.payload,
        )
        self.publisher.publish(
            EVENTS.name,
            record_key(connection.station_id),
            encode_event(event),
            event_headers(event),
            _ignore,
            connection.partition,
        )
        self._count(version, send.action, "published")

    def _acked(self, pending: _Call, exc: BaseException | None) -> None:
        connection = pending.connection
        session = connection.session
        if exc is None:
            self.metrics.kafka_acked.inc()
        else:
            self.metrics.kafka_failed.inc()
        if pending.done or session is None:
            return
        version = connection.version
        assert version is not None
        if exc is not None:
            pending.done = True
            self._replies.pop((connection.station_id, pending.message_id), None)
            session.answer_error(
                pending.message_id, "InternalError", "the call could not be stored; retry"
            )
            self._count(version, pending.action, "kafka_error")
        elif pending.handling is Handling.ANSWER:
            pending.done = True
            assert pending.answer is not None
            session.answer(pending.message_id, pending.answer)
            self._count(version, pending.action, "answered")
            self.metrics.answer_duration.observe(time.monotonic() - pending.received)
        else:
            pending.acked = True
            return
        connection.pump()

    # ------------------------------------------------------------------ worker replies

    def relay_reply(
        self,
        station_id: str,
        message_id: str,
        *,
        result: bytes | None,
        error: tuple[str, str, bytes] | None,
    ) -> str:
        """Send a worker's reply to the station's call; returns completed / expired / invalid."""
        pending = self._replies.pop((station_id, message_id), None)
        if pending is None or pending.done:
            self.metrics.replies.labels("late").inc()
            return "expired"
        connection = pending.connection
        session = connection.session
        version = connection.version
        if session is None or version is None:
            self.metrics.replies.labels("late").inc()
            return "expired"
        pending.done = True
        if result is not None:
            session.answer(message_id, result, validate=True)
            self._count(version, pending.action, "replied")
        else:
            assert error is not None
            code, description, details = error
            session.answer_error(message_id, code, description, details)
            self._count(version, pending.action, "replied_error")
        self.metrics.replies.labels("relayed").inc()
        self.metrics.delegate_duration.observe(time.monotonic() - pending.received)
        connection.pump()
        return "completed"

    # ------------------------------------------------------------------ housekeeping

    def expire(self, now: float | None = None) -> None:
        """Answer calls whose Kafka ack or worker reply did not come in time; check backpressure."""
        now = time.monotonic() if now is None else now
        awaiting_ack = self._awaiting_ack
        while awaiting_ack and awaiting_ack[0][0] <= now:
            _, pending = awaiting_ack.popleft()
            if pending.done or pending.acked:
                continue
            pending.done = True
            self._replies.pop((pending.connection.station_id, pending.message_id), None)
            self._fail(pending, "kafka_timeout", "the call could not be stored in time; retry")
        awaiting_reply = self._awaiting_reply
        while awaiting_reply and awaiting_reply[0].reply_by <= now:
            pending = awaiting_reply.popleft()
            if pending.done:
                continue
            pending.done = True
            self._replies.pop((pending.connection.station_id, pending.message_id), None)
            self.metrics.replies.labels("fallback").inc()
            self._fail(pending, "fallback", "no decision was made in time; retry")
        self.check_backpressure()

    def _fail(self, pending: _Call, outcome: str, description: str) -> None:
        connection = pending.connection
        if connection.session is None or connection.version is None:
            return
        connection.session.answer_error(pending.message_id, "InternalError", description)
        self._count(connection.version, pending.action, outcome)
        connection.pump()

    def check_backpressure(self) -> None:
        pending = self.publisher.pending
        self.metrics.kafka_pending.set(pending)
        if not self.backpressure and pending > self.settings.max_pending_events:
            self.backpressure = True
            self.metrics.backpressure.set(1)
            log.warning("gateway.backpressure_on", extra={"pending_records": pending})
            for connection in list(self.connections.values()):
                connection.pause_reading()
        elif self.backpressure and pending < self.settings.resume_pending_events:
            self.backpressure = False
            self.metrics.backpressure.set(0)
            log.warning("gateway.backpressure_off", extra={"pending_records": pending})
            for connection in list(self.connections.values()):
                connection.resume_reading()

    def ping_sweep(self, now: float, slices: int = 1) -> None:
        """Ping the connections that were silent too long; drop those whose pong is overdue.

        Each call looks at the next ``1/slices`` of the connections, so that a
        sweep over 19,000 of them never holds the event loop at once. Stations go
        quiet at different moments, so pings spread out by themselves.
        """
        interval = self.settings.ping_interval
        if interval <= 0:
            return
        timeout = self.settings.ping_timeout
        if not self._sweep:  # a new round over every connection
            self._sweep = list(self.connections.values())
            self._sweep_share = max(1, -(-len(self._sweep) // slices))
        batch = self._sweep[: self._sweep_share]
        del self._sweep[: self._sweep_share]
        for connection in batch:
            if connection.session is None:  # closed since the sweep began
                continue
            if connection.ping_sent_at:
                if now - connection.ping_sent_at > timeout:
                    log.info("station.ping_timeout", extra=connection.describe())
                    connection.abort("ping_timeout")
            elif now - connection.last_input > interval:
                connection.send_ping()

    def has_calls_in_flight(self) -> bool:
        """Are stations still waiting for an answer to a call (draining waits for them)?"""
        return any(not p.done for _, p in self._awaiting_ack) or any(
            not p.done for p in self._awaiting_reply
        )

    def readiness(self) -> Mapping[str, bool]:
        # "capacity" fails when full, so the load balancer sends stations to other
        # gateways, and recovers with some room (5 %) so that it does not flap
        connections = len(self.connections)
        if connections >= self.settings.max_connections:
            self._full = True
        elif connections <= self.settings.max_connections * 0.95:
            self._full = False
        return {
            "draining": not self.draining,
            "backpressure": not self.backpressure,
            "capacity": not self._full,
        }

    # ------------------------------------------------------------------ publishing helpers

    def _publish_lifecycle(
        self, connection: StationConnection, kind: EventKind, payload: msgspec.Raw, now: datetime
    ) -> None:
        version = connection.version
        assert version is not None
        event = StationEvent(
            station_id=connection.station_id,
            kind=kind,
            message_id=self._unique_id(),
            ocpp_version=version,
            gateway_id=self.instance_id,
            connection_id=connection.connection_id,
            received_at=now,
            payload=payload,
        )
        self.publisher.publish(
            EVENTS.name,
            record_key(connection.station_id),
            encode_event(event),
            event_headers(event),
            _ignore,
            connection.partition,
        )

    def _publish_rejected(self, connection: StationConnection, reason: str, status: int) -> None:
        """A security event: a station was refused after identifying itself (RELIABILITY 3)."""
        now = datetime.now(UTC)
        event = StationEvent(
            station_id=connection.station_id,
            kind="rejected",
            message_id=self._unique_id(),
            ocpp_version=connection.version or self.versions[0],
            gateway_id=self.instance_id,
            connection_id=self._unique_id(),
            received_at=now,
            payload=msgspec.Raw(
                encode_connection_payload(
                    RejectedPayload(
                        remote_address=connection.peer, reason=reason, http_status=status
                    )
                )
            ),
        )
        self.publisher.publish(
            EVENTS.name,
            record_key(connection.station_id),
            encode_event(event),
            event_headers(event),
            _ignore,
        )


def _ignore(exc: BaseException | None) -> None:
    """Completion callback for records nobody waits for (the publisher logs failures)."""
