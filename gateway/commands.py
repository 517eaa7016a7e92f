"""Commands: deliver the station command stream to the stations held here, and publish results.

Every gateway reads all partitions of ``ocpp.commands.v1`` from the end, with no
consumer group (ARCHITECTURE.md, "The per-station command stream"). For each
record it looks at the key only; if the station is not held here the record is
skipped without decoding (the read amplification is measured by
``csms_gateway_command_records_read_total`` against
``..._skipped_total``). For a station held here:

- ``kind=call``: validated against the OCPP contracts for the connection's version
  and queued on the station's session (one outstanding CALL; see
  :mod:`gateway.session`). Its result is published when the station answers,
  errs, times out, or the connection closes.
- ``kind=call_result`` / ``call_error``: a worker's reply to the station's call,
  relayed when the call still waits for it (``completed``), else ``expired``.

Exactly one result per command id from this instance: ids are remembered for a
while, so a command redelivered (a producer retry, a replay) is executed at most
once. Per station held here it keeps the offset just past the last command it
handled (:meth:`CommandDelivery.handled`); the station's presence tombstone
carries it, so that the offline responder leaves those commands alone. A
command for a station nobody holds ends ``station_offline``, decided by
:mod:`gateway.offline`. A station that connects here just after its command was
read is not missed: records for stations not held are kept for
``offline_grace`` seconds and replayed when the station arrives.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from contracts.envelopes import (
    CommandError,
    CommandResult,
    CommandStatus,
    StationCommand,
    command_problem,
    decode_command,
    encode_command_result,
    record_key,
)
from contracts.headers import command_result_headers
from contracts.topics import COMMAND_RESULTS
from gateway.errors import CommandRejected
from gateway.session import (
    CommandAborted,
    CommandAnswered,
    CommandExpired,
    CommandFailed,
    CommandTimedOut,
)

if TYPE_CHECKING:
    from gateway.connection import StationConnection
    from gateway.server import Gateway

__all__ = ["CommandDelivery", "RecentIds"]

log = logging.getLogger("gateway.commands")

_NULL = msgspec.Raw(b"null")


class RecentIds:
    """A bounded set of recently seen ids (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()

    def add(self, item: str) -> bool:
        """Remember ``item``; False when it was already known."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._ids


class _InFlight:
    __slots__ = ("arrived", "command")

    def __init__(self, command: StationCommand, arrived: float) -> None:
        self.command = command
        self.arrived = arrived


class CommandDelivery:
    def __init__(self, gateway: Gateway, *, remember: int = 100_000) -> None:
        self.gateway = gateway
        self._seen = RecentIds(remember)
        self._in_flight: dict[str, _InFlight] = {}
        # records for stations not held here, kept offline_grace seconds (reconnect race):
        # (arrived, station id, offset, value)
        self._recent: collections.deque[tuple[float, str, int, bytes]] = collections.deque()
        # station id: the offset just past the last command its connection here handled
        self._handled: dict[str, int] = {}

    # ------------------------------------------------------------------ the topic

    def on_records(self, records: list[Any]) -> None:
        gateway = self.gateway
        metrics = gateway.metrics
        now = time.monotonic()
        metrics.command_records_read.inc(len(records))
        for record in records:
            if record.key is None or record.value is None:
                continue
            station_id = record.key.decode("utf-8", "replace")
            connection = gateway.connections.get(station_id)
            if connection is None:
                metrics.command_records_skipped.inc()
                self._recent.append((now, station_id, record.offset, record.value))
                continue
            self._handle(connection, record.offset, record.value, now)
        self._trim(now)

    def station_connected(self, connection: StationConnection) -> None:
        """Deliver the records that arrived for this station just before it connected."""
        now = time.monotonic()
        self._trim(now)
        self._handled.pop(connection.station_id, None)  # a new connection starts afresh
        for _, station_id, offset, value in list(self._recent):
            if station_id == connection.station_id:
                self._handle(connection, offset, value, now)

    def handled(self, station_id: str) -> int | None:
        """The offset just past the last command the station's connection here handled
        (each got or gets its one result from this gateway), forgotten as it is asked for:
        its presence tombstone carries it. None when it handled none."""
        return self._handled.pop(station_id, None)

    def _trim(self, now: float) -> None:
        horizon = now - self.gateway.settings.offline_grace
        recent = self._recent
        while recent and recent[0][0] < horizon:
            recent.popleft()

    # ------------------------------------------------------------------ one command

    def _handle(self, connection: StationConnection, offset: int, value: bytes, now: float) -> None:
        station_id = connection.station_id
        self._handled[station_id] = max(self._handled.get(station_id, 0), offset + 1)
        try:
            command = decode_command(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # without a readable command_id there is nothing to answer to
            log.warning(
                "command.undecodable",
                extra={"station_id": connection.station_id, "error": str(exc)[:200]},
            )
            return
        if not self._seen.add(command.command_id):
            return  # redelivered: executed at most once
        problem = command_problem(command)
        if problem is None and command.station_id != connection.station_id:
            problem = "station_id differs from the record key"
        if problem is None and command.ocpp_version not in (None, connection.version):
            problem = (
                f"written for OCPP {command.ocpp_version}, the station speaks {connection.version}"
            )
        if problem is not None:
            self.publish(
                connection,
                command,
                "invalid",
                error=CommandError(code="Invalid", description=problem),
            )
            return
        wall_now = datetime.now(UTC)
        if command.expires_at is not None and command.expires_at <= wall_now:
            self.publish(connection, command, "expired", error=_error("Expired", "past expires_at"))
            return
        if command.kind == "call":
            self._call(connection, command, now, wall_now)
        else:
            self._reply(connection, command)

    def _call(
        self, connection: StationConnection, command: StationCommand, now: float, wall_now: datetime
    ) -> None:
        session = connection.session
        if session is None:
            self.publish(
                connection,
                command,
                "station_offline",
                error=_error("StationOffline", "the connection closed"),
            )
            return
        timeout = command.timeout_s or self.gateway.settings.command_timeout
        expires = None
        if command.expires_at is not None:
            expires = now + (command.expires_at - wall_now) / timedelta(seconds=1)
        try:
            session.call(
                command.command_id,
                command.action,
                command.payload,
                timeout=timeout,
                expires_at=expires,
            )
        except CommandRejected as exc:
            self.publish(
                connection,
                command,
                "invalid",
                error=CommandError(code="Invalid", description=str(exc)),
            )
            return
        self._in_flight[command.command_id] = _InFlight(command, now)
        self.gateway.metrics.commands_queued.inc()
        connection.pump()

    def _reply(self, connection: StationConnection, command: StationCommand) -> None:
        assert command.message_id is not None
        if command.kind == "call_result":
            status = self.gateway.relay_reply(
                connection.station_id, command.message_id, result=bytes(command.payload), error=None
            )
        else:
            assert command.error_code is not None
            status = self.gateway.relay_reply(
                connection.station_id,
                command.message_id,
                result=None,
                error=(command.error_code, command.error_description, bytes(command.payload)),
            )
        if status == "completed":
            self.publish(connection, command, "completed", message_id=command.message_id)
        else:
            self.publish(
                connection,
                command,
                "expired",
                message_id=command.message_id,
                error=_error("Expired", "the call was already answered (fallback) or is unknown"),
            )

    # ------------------------------------------------------------------ session events

    def finished(self, connection: StationConnection, event: Any) -> None:
        in_flight = self._in_flight.pop(event.command_id, None)
        if in_flight is None:
            return
        self.gateway.metrics.commands_queued.dec()
        self.gateway.metrics.command_duration.observe(time.monotonic() - in_flight.arrived)
        command = in_flight.command
        kind = type(event)
        message_id = getattr(event, "message_id", None)
        if kind is CommandAnswered:
            self.publish(
                connection, command, "completed", payload=event.payload, message_id=message_id
            )
        elif kind is CommandFailed:
            self.publish(
                connection,
                command,
                "call_error",
                message_id=message_id,
                error=CommandError(
                    code=event.code,
                    description=event.description,
                    details=event.details if event.details is not None else msgspec.Raw(b"{}"),
                ),
            )
        elif kind is CommandTimedOut:
            self.publish(
                connection,
                command,
                "timeout",
                message_id=message_id,
                error=_error("Timeout", "the station did not answer in time"),
            )
        elif kind is CommandExpired:
            self.publish(
                connection,
                command,
                "expired",
                error=_error("Expired", "past expires_at before it could be sent"),
            )
        elif kind is CommandAborted:
            self.publish(
                connection,
                command,
                "station_offline",
                message_id=message_id,
                error=_error("StationOffline", "the connection closed before an answer"),
            )

    # ------------------------------------------------------------------ results

    def publish(
        self,
        connection: StationConnection | None,
        command: StationCommand,
        status: CommandStatus,
        *,
        payload: msgspec.Raw = _NULL,
        message_id: str | None = None,
        error: CommandError | None = None,
    ) -> None:
        gateway = self.gateway
        result = CommandResult(
            command_id=command.command_id,
            station_id=command.station_id,
            action=command.action,
            status=status,
            message_id=message_id,
            ocpp_version=connection.version if connection is not None else None,
            error=error,
            gateway_id=gateway.instance_id,
            completed_at=datetime.now(UTC),
            payload=payload,
        )
        gateway.metrics.commands.labels(command.action, status).inc()
        gateway.publisher.publish(
            COMMAND_RESULTS.name,
            record_key(command.station_id),
            encode_command_result(result),
            command_result_headers(result),
            _log_failure,
        )


def _error(code: str, description: str) -> CommandError:
    return CommandError(code=code, description=description)


def _log_failure(exc: BaseException | None) -> None:
    if exc is not None:
        log.error("command.result_not_published", extra={"error": repr(exc)})
