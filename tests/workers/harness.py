"""The sessions logic driven in memory, the way the runtime drives it (no loop, no Kafka)."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from contracts.envelopes import IdTokenRecord, SessionRecord, StationEvent, decode_session
from contracts.ocpp.validation import decode_response
from workers.runtime.logic import Decision, Position
from workers.sessions.id_tokens import IdTokenTable
from workers.sessions.logic import SessionsLogic
from workers.sessions.model import StationSessions, TransactionIds

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DELEGATED = {"Authorize", "StartTransaction", "StopTransaction"}


def stamp(minutes: float) -> str:
    """An OCPP timestamp ``minutes`` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def token(id_token: str, status: str = "Accepted", **fields: Any) -> IdTokenRecord:
    return IdTokenRecord(id_token=id_token, status=status, updated_at=T0, **fields)  # type: ignore[arg-type]


def station_event(
    station: str,
    action: str,
    payload: dict[str, Any],
    *,
    version: str = "1.6",
    received_at: datetime,
    reply_expected: bool = True,
    message_id: str | None = None,
    reply_in: float = 8.0,
) -> StationEvent:
    """The event the gateway writes for a station's call."""
    return StationEvent(
        station_id=station,
        kind="call",
        message_id=message_id or uuid.uuid4().hex,
        action=action,
        ocpp_version=version,  # type: ignore[arg-type]
        gateway_id="gw-test",
        connection_id="conn-test",
        received_at=received_at,
        reply_expected=reply_expected,
        reply_by=received_at + timedelta(seconds=reply_in) if reply_expected else None,
        payload=msgspec.Raw(orjson.dumps(payload)),
    )


@dataclasses.dataclass
class Sent:
    """One event handled: its decision, the decoded reply, the session records it made."""

    decision: Decision[StationSessions, TransactionIds]
    reply: Any
    records: list[SessionRecord]

    @property
    def outcome(self) -> str:
        return self.decision.outcome


class Harness:
    """One partition of stations, handled in offset order like the runtime does."""

    def __init__(
        self,
        *tokens: IdTokenRecord,
        allow_unknown: bool = False,
        partition: int = 3,
    ) -> None:
        self.table = IdTokenTable(tokens)
        self.logic = SessionsLogic(
            self.table, source="/csms/workers/sessions/test", allow_unknown_id_tokens=allow_unknown
        )
        self.partition = partition
        self.offset = 100
        self.stations: dict[str, StationSessions] = {}
        self.ids = self.logic.initial_partition()
        self.records: list[SessionRecord] = []

    def event(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        station: str = "CP-1",
        version: str = "1.6",
        received_at: datetime | None = None,
        message_id: str | None = None,
    ) -> StationEvent:
        return station_event(
            station,
            action,
            payload,
            version=version,
            received_at=received_at or T0 + timedelta(minutes=1),
            reply_expected=action in DELEGATED
            or (action == "TransactionEvent" and "idToken" in payload),
            message_id=message_id,
        )

    def handle(self, event: StationEvent) -> Sent:
        self.offset += 1
        decision = self.logic.decide(
            event,
            self.stations.get(event.station_id),
            self.ids,
            Position(self.partition, self.offset),
        )
        if decision.station is None:
            self.stations.pop(event.station_id, None)
        else:
            self.stations[event.station_id] = decision.station
        self.ids = decision.partition
        records = [decode_session(output.value) for output in decision.outputs]
        self.records.extend(records)
        reply = None
        if decision.reply is not None and event.reply_expected:
            assert event.action is not None
            reply = decode_response(event.ocpp_version, event.action, decision.reply.payload)
        return Sent(decision, reply, records)

    def send(self, action: str, payload: dict[str, Any], **fields: Any) -> Sent:
        return self.handle(self.event(action, payload, **fields))

    def last(self, session_id: str | None = None) -> SessionRecord:
        """The latest record (of ``session_id``)."""
        found = [r for r in self.records if session_id is None or r.session_id == session_id]
        return found[-1]


SHOWN = (
    "id_token",
    "evse_id",
    "connector_id",
    "state",
    "started_at",
    "stopped_at",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
    "stop_reason",
    "offline",
)
"""The fields of a session record that say what the session is (not how it was written)."""


def assert_completed_is_final(records: list[SessionRecord]) -> None:
    """Per session: every record after a completed one corrects it, naming exactly what changed."""
    assert all(not r.corrections for r in records if r.state == "active")
    for _, session in itertools.groupby(sorted(records, key=lambda r: r.session_id), _session_id):
        for before, after in itertools.pairwise(session):
            shown = [f for f in SHOWN if getattr(before, f) != getattr(after, f)]
            assert shown, "a record that shows nothing new"
            if before.state != "completed":
                assert not after.corrections
                continue
            assert (after.event, after.state) == ("updated", "completed")
            changed = {
                f: (msgspec.to_builtins(getattr(before, f)), msgspec.to_builtins(getattr(after, f)))
                for f in shown
            }
            assert {c.field: (c.was, c.now) for c in after.corrections} == changed
            assert len({c.reason for c in after.corrections}) == 1


def _session_id(record: SessionRecord) -> str:
    return record.session_id
