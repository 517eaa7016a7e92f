"""Generate contracts/asyncapi.yaml, the AsyncAPI 3 document of every csms topic.

``python -m contracts.asyncapi`` writes the document; ``--check`` exits 1 when
the checked-in file differs from a fresh generation. Nobody edits the YAML by
hand: it is made from the topic catalogue (contracts/topics.py), the envelope
Structs (their JSON schemas, by ``msgspec.json.schema_components``) and the
header scheme (contracts/headers.py).

The document has one channel per topic (its address is the topic name), one
message per envelope (two on a compacted topic: the record and its tombstone)
with the payload schema, the record key as ``bindings.kafka.key`` and the
header schema, one ``send`` operation per writer and one ``receive``
operation per reader, and examples built from real envelopes.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import yaml  # type: ignore[import-untyped]

from contracts import envelopes as env
from contracts import headers as hdr
from contracts.topics import (
    ALERTS,
    CATALOGUE,
    COMMAND_RESULTS,
    COMMANDS,
    DEAD_LETTER,
    EVENTS,
    ID_TOKENS,
    PRESENCE,
    SESSIONS,
    SILENCES,
    SITES,
    STATION_STATUS,
    STATIONS,
    Topic,
)

__all__ = ["DOCUMENT_PATH", "EXAMPLES", "Example", "document", "main", "render", "schemas"]

DOCUMENT_PATH = Path(__file__).with_name("asyncapi.yaml")

# Bump the minor version when a field or a topic is added, the major one never
# (a breaking change is a new topic, .v2, next to the old one).
DOCUMENT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{name}"

# The payloads of lifecycle events, carried inside StationEvent.payload: not a
# topic's value, but part of the contract, so the document describes them too.
LIFECYCLE_PAYLOADS: tuple[type[msgspec.Struct], ...] = (
    env.ConnectedPayload,
    env.DisconnectedPayload,
    env.RejectedPayload,
)

INFO_DESCRIPTION = """\
The Kafka topics of csms, an OCPP 1.6J / 2.0.1 / 2.1 gateway and charge-point
management system. The guide for developers of downstream services is
docs/topics.md.

- Keys are the station id as UTF-8 (the id token on csms.id-tokens.v1, the site
  id on csms.sites.v1, the silence id on csms.alert-silences.v1): a station's
  records stay in order on one partition.
- Values are JSON with snake_case fields; timestamps are RFC 3339 in UTC.
  OCPP payloads are embedded exactly as the station sent them.
- Headers follow the CloudEvents Kafka protocol binding in binary mode
  (ce_specversion, ce_id, ce_type, ce_source, ce_time, content-type) plus
  ocpp-action and ocpp-version where they apply.
- Evolution within a .v1 topic: new fields get defaults, a type never changes,
  nothing is removed. Consumers must ignore fields they do not know.
- Compacted topics use a tombstone (null value) for a deletion.
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Example:
    """One example record of a topic: its key, headers and value (``None`` for a tombstone)."""

    name: str
    summary: str
    key: str
    headers: hdr.Headers
    value: msgspec.Struct | None


# --- schemas ------------------------------------------------------------------------------------


def _clean_descriptions(node: Any) -> Any:
    # msgspec copies class docstrings as they are; Python 3.13 strips their
    # indentation and 3.11 does not, so clean them to generate the same text on both.
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def schemas() -> dict[str, Any]:
    """The JSON schemas of every envelope and the Structs they contain, by Struct name."""
    types = [topic.value_type for topic in CATALOGUE]
    types.extend(LIFECYCLE_PAYLOADS)
    _, components = msgspec.json.schema_components(types, ref_template=SCHEMA_REF)
    # As plain JSON data (a tuple default becomes a list), the way a reader sees it.
    plain = msgspec.json.decode(msgspec.json.encode(components))
    cleaned: dict[str, Any] = _clean_descriptions(plain)
    return cleaned


# --- examples -----------------------------------------------------------------------------------

_AT = datetime(2026, 3, 1, 12, 15, 0, tzinfo=UTC)
_GATEWAY = "gateway-0"
_CONNECTION = "2b1f6a0c-93d5-4c47-8a4e-0e7f5d3c9b21"
_STATION = "CP-0001"
_SESSIONS = hdr.worker_source("sessions", "sessions-0")
_ALERTS = hdr.worker_source("alerts", "alerts-0")
_STATUS = hdr.worker_source("status", "status-0")
_OPERATOR = "/csms/cli/operator"

_METER_VALUES = (
    b'{"connectorId":1,"transactionId":4217,"meterValue":[{"timestamp":"2026-03-01T12:15:00Z",'
    b'"sampledValue":[{"value":"12873.4","measurand":"Energy.Active.Import.Register",'
    b'"unit":"Wh","context":"Sample.Clock"}]}]}'
)


def _examples() -> dict[str, tuple[Example, ...]]:
    meter_values = env.StationEvent(
        station_id=_STATION,
        kind="call",
        message_id="1042",
        action="MeterValues",
        ocpp_version="1.6",
        gateway_id=_GATEWAY,
        connection_id=_CONNECTION,
        received_at=_AT,
        payload=msgspec.Raw(_METER_VALUES),
    )
    authorize = env.StationEvent(
        station_id=_STATION,
        kind="call",
        message_id="1043",
        action="Authorize",
        ocpp_version="1.6",
        gateway_id=_GATEWAY,
        connection_id=_CONNECTION,
        received_at=_AT,
        reply_expected=True,
        reply_by=_AT + timedelta(seconds=5),
        payload=msgspec.Raw(b'{"idTag":"04E91C5A123456"}'),
    )
    connected = env.StationEvent(
        station_id=_STATION,
        kind="connected",
        message_id=f"{_CONNECTION}:connected",
        ocpp_version="1.6",
        gateway_id=_GATEWAY,
        connection_id=_CONNECTION,
        received_at=_AT - timedelta(hours=2),
        payload=env.encode_connection_payload(
            env.ConnectedPayload(
                remote_address="203.0.113.17", subprotocol="ocpp1.6", security_profile=2
            )
        ),
    )
    disconnected = env.StationEvent(
        station_id=_STATION,
        kind="disconnected",
        message_id=f"{_CONNECTION}:disconnected",
        ocpp_version="1.6",
        gateway_id=_GATEWAY,
        connection_id=_CONNECTION,
        received_at=_AT + timedelta(minutes=5),
        payload=env.encode_connection_payload(
            env.DisconnectedPayload(close_code=1006, close_reason="", connected_seconds=7500.0)
        ),
    )
    start = env.StationCommand(
        command_id="5f0e9a52-6d0b-4a3e-9b5e-7c1d2e3f4a5b",
        station_id=_STATION,
        kind="call",
        action="RemoteStartTransaction",
        ocpp_version="1.6",
        created_at=_AT,
        expires_at=_AT + timedelta(minutes=1),
        timeout_s=30.0,
        source="/billing/api",
        payload=msgspec.Raw(b'{"connectorId":1,"idTag":"04E91C5A123456"}'),
    )
    authorize_reply = env.StationCommand(
        command_id="a3c5e7f9-0b1d-4f3a-8c5e-7a9b1c3d5e7f",
        station_id=_STATION,
        kind="call_result",
        action="Authorize",
        message_id="1043",
        ocpp_version="1.6",
        created_at=_AT + timedelta(milliseconds=40),
        source=_SESSIONS,
        payload=msgspec.Raw(b'{"idTagInfo":{"status":"Accepted"}}'),
    )
    data_transfer_error = env.StationCommand(
        command_id="c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        station_id=_STATION,
        kind="call_error",
        action="DataTransfer",
        message_id="1044",
        error_code="NotImplemented",
        error_description="vendor id unknown",
        created_at=_AT,
        source=_SESSIONS,
        payload=msgspec.Raw(b"{}"),
    )
    completed = env.CommandResult(
        command_id=start.command_id,
        station_id=_STATION,
        action="RemoteStartTransaction",
        status="completed",
        message_id=start.command_id,
        ocpp_version="1.6",
        gateway_id=_GATEWAY,
        completed_at=_AT + timedelta(milliseconds=850),
        payload=msgspec.Raw(b'{"status":"Accepted"}'),
    )
    timed_out = env.CommandResult(
        command_id="0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
        station_id=_STATION,
        action="GetConfiguration",
        status="timeout",
        message_id="0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
        ocpp_version="1.6",
        error=env.CommandError(code="Timeout", description="no answer within 30 s"),
        gateway_id=_GATEWAY,
        completed_at=_AT + timedelta(seconds=30),
    )
    presence = env.Presence(
        station_id=_STATION,
        gateway_id=_GATEWAY,
        connection_id=_CONNECTION,
        ocpp_version="1.6",
        connected_at=_AT - timedelta(hours=2),
    )
    started = env.SessionRecord(
        session_id="s-7f3e2d1c",
        station_id=_STATION,
        transaction_id="4217",
        id_token="04E91C5A123456",
        evse_id=1,
        connector_id=1,
        state="active",
        event="started",
        started_at=_AT - timedelta(minutes=45),
        meter_start_wh=10250.0,
        energy_wh=0.0,
        ocpp_version="1.6",
        updated_at=_AT - timedelta(minutes=45),
    )
    finished = env.SessionRecord(
        session_id="s-7f3e2d1c",
        station_id=_STATION,
        transaction_id="4217",
        id_token="04E91C5A123456",
        evse_id=1,
        connector_id=1,
        state="completed",
        event="completed",
        started_at=_AT - timedelta(minutes=45),
        stopped_at=_AT + timedelta(minutes=20),
        meter_start_wh=10250.0,
        meter_stop_wh=14960.0,
        energy_wh=4710.0,
        stop_reason="EVDisconnected",
        ocpp_version="1.6",
        updated_at=_AT + timedelta(minutes=20),
    )
    guessed = {  # closed as superseded at the next start, from its last reading
        "stopped_at": _AT + timedelta(minutes=40),
        "meter_stop_wh": 14200.0,
        "energy_wh": 3950.0,
        "stop_reason": None,
        "offline": False,
    }
    corrected = msgspec.structs.replace(
        finished,
        event="updated",
        offline=True,  # the stop was queued: it arrived long after its timestamp
        updated_at=_AT + timedelta(minutes=55),
        anomalies=("superseded",),
    )
    corrected = msgspec.structs.replace(
        corrected,
        corrections=tuple(
            env.SessionCorrection(
                field=field,
                was=msgspec.to_builtins(value),
                now=msgspec.to_builtins(getattr(corrected, field)),
                reason="late_stop",
            )
            for field, value in guessed.items()
        ),
    )
    alert = env.Alert(
        alert_id="CP-0001///station_offline@3:1042",
        station_id=_STATION,
        kind="station_offline",
        severity="warning",
        state="raised",
        raised_at=_AT + timedelta(minutes=10),
        summary="CP-0001 has been offline for 5 minutes",
        details={"last_seen_at": "2026-03-01T12:20:00Z"},
        fingerprint="CP-0001///station_offline",
        gateway_id="gw-7f9c2",
    )
    silence = env.Silence(
        silence_id="sil-5e1f0c2a",
        station_id=_STATION,
        kind="connector_faulted",
        starts_at=_AT,
        ends_at=_AT + timedelta(hours=2),
        created_by="ops@example.com",
        comment="connector 2 replaced tomorrow",
        created_at=_AT,
    )
    status = env.StationStatus(
        station_id=_STATION,
        online=True,
        connection_id=_CONNECTION,
        gateway_id=_GATEWAY,
        ocpp_version="1.6",
        connected_since=_AT - timedelta(hours=2),
        last_heard_at=_AT - timedelta(minutes=1),
        boot=env.BootInfo(
            vendor="Alfen BV",
            model="NG920-61001",
            serial_number="ACE0123456",
            firmware_version="6.4.0-4245",
            booted_at=_AT - timedelta(hours=2),
        ),
        connectors=(
            env.ConnectorState(
                evse_id=0, status="Available", error_code="NoError", since=_AT - timedelta(hours=2)
            ),
            env.ConnectorState(
                evse_id=1,
                status="Charging",
                error_code="NoError",
                since=_AT - timedelta(minutes=45),
            ),
            env.ConnectorState(
                evse_id=2,
                status="Faulted",
                error_code="GroundFailure",
                vendor_error_code="E42",
                info="RCD tripped",
                since=_AT - timedelta(minutes=5),
            ),
        ),
        transactions=(
            env.ActiveTransaction(
                evse_id=1, transaction_id="4217", started_at=_AT - timedelta(minutes=45)
            ),
        ),
        meters=(env.MeterReading(evse_id=1, energy_wh=12873.4, power_w=11040.0, at=_AT),),
        firmware=env.OperationProgress(
            status="Installed", request_id=None, at=_AT - timedelta(days=3)
        ),
        updated_at=_AT,
    )
    station = env.StationRecord(
        station_id=_STATION,
        security_profile=2,
        password_hash="$scrypt$n=16384,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        site_id="site-berlin-1",
        updated_at=_AT - timedelta(days=30),
    )
    id_token = env.IdTokenRecord(
        id_token="04E91C5A123456",
        status="Accepted",
        expires_at=_AT + timedelta(days=365),
        group_id="fleet-acme",
        updated_at=_AT - timedelta(days=2),
    )
    site = env.SiteRecord(
        site_id="site-berlin-1",
        max_current_a=250.0,
        circuits=(env.Circuit(circuit_id="garage-a", max_current_a=63.0, station_ids=(_STATION,)),),
        updated_at=_AT - timedelta(days=30),
    )
    dead_letter = env.DeadLetter(
        record=env.original_record(
            topic=EVENTS.name,
            partition=3,
            offset=118_204,
            key=env.record_key(_STATION),
            value=b'{"station_id": "CP-0001", "kind": "call"',
            headers=hdr.event_headers(meter_values),
            timestamp=_AT,
        ),
        worker="sessions",
        reason="DecodeError: Input data was truncated",
        failures=3,
        failed_at=_AT + timedelta(seconds=2),
    )
    return {
        EVENTS.name: (
            Example(
                name="meter-values",
                summary="A MeterValues call; the gateway answered it itself.",
                key=_STATION,
                headers=hdr.event_headers(meter_values),
                value=meter_values,
            ),
            Example(
                name="authorize",
                summary="An Authorize call a worker must answer before reply_by.",
                key=_STATION,
                headers=hdr.event_headers(authorize),
                value=authorize,
            ),
            Example(
                name="connected",
                summary="The station connected.",
                key=_STATION,
                headers=hdr.event_headers(connected),
                value=connected,
            ),
            Example(
                name="disconnected",
                summary="The connection dropped without a close frame.",
                key=_STATION,
                headers=hdr.event_headers(disconnected),
                value=disconnected,
            ),
        ),
        COMMANDS.name: (
            Example(
                name="remote-start",
                summary="A call to send: RemoteStartTransaction.",
                key=_STATION,
                headers=hdr.command_headers(start),
                value=start,
            ),
            Example(
                name="authorize-reply",
                summary="The sessions worker's reply to the station's Authorize call.",
                key=_STATION,
                headers=hdr.command_headers(authorize_reply),
                value=authorize_reply,
            ),
            Example(
                name="call-error-reply",
                summary="A CALLERROR reply to the station's DataTransfer call.",
                key=_STATION,
                headers=hdr.command_headers(data_transfer_error),
                value=data_transfer_error,
            ),
        ),
        COMMAND_RESULTS.name: (
            Example(
                name="completed",
                summary="The station accepted the remote start.",
                key=_STATION,
                headers=hdr.command_result_headers(completed),
                value=completed,
            ),
            Example(
                name="timeout",
                summary="The station did not answer in time.",
                key=_STATION,
                headers=hdr.command_result_headers(timed_out),
                value=timed_out,
            ),
        ),
        PRESENCE.name: (
            Example(
                name="held",
                summary="gateway-0 holds the station.",
                key=_STATION,
                headers=hdr.presence_headers(presence),
                value=presence,
            ),
            Example(
                name="released",
                summary="The station disconnected (a tombstone by its holder, which handled "
                "the station's commands up to offset 1041 of its partition).",
                key=_STATION,
                headers=hdr.tombstone_headers(
                    PRESENCE,
                    _STATION,
                    source=hdr.gateway_source(_GATEWAY),
                    at=_AT + timedelta(minutes=5),
                    commands_handled=1042,
                ),
                value=None,
            ),
        ),
        SESSIONS.name: (
            Example(
                name="started",
                summary="A session started.",
                key=_STATION,
                headers=hdr.session_headers(started, source=_SESSIONS),
                value=started,
            ),
            Example(
                name="completed",
                summary="The session completed.",
                key=_STATION,
                headers=hdr.session_headers(finished, source=_SESSIONS),
                value=finished,
            ),
            Example(
                name="corrected",
                summary="The lost StopTransaction of a session closed as superseded turned up.",
                key=_STATION,
                headers=hdr.session_headers(corrected, source=_SESSIONS),
                value=corrected,
            ),
        ),
        ALERTS.name: (
            Example(
                name="offline",
                summary="A station-offline alert is raised.",
                key=_STATION,
                headers=hdr.alert_headers(alert, source=_ALERTS),
                value=alert,
            ),
        ),
        SILENCES.name: (
            Example(
                name="silence",
                summary="connector_faulted alerts of CP-0001 are not notified for two hours.",
                key=silence.silence_id,
                headers=hdr.silence_headers(silence, source=_OPERATOR),
                value=silence,
            ),
            Example(
                name="deleted",
                summary="The silence is ended early (a tombstone).",
                key="sil-0b7d93e4",
                headers=hdr.tombstone_headers(SILENCES, "sil-0b7d93e4", source=_OPERATOR, at=_AT),
                value=None,
            ),
        ),
        STATION_STATUS.name: (
            Example(
                name="charging-and-faulted",
                summary="An online 1.6 station: connector 1 charging, connector 2 faulted.",
                key=_STATION,
                headers=hdr.station_status_headers(status, source=_STATUS),
                value=status,
            ),
        ),
        STATIONS.name: (
            Example(
                name="registered",
                summary="A station on security profile 2.",
                key=_STATION,
                headers=hdr.station_headers(station, source=_OPERATOR),
                value=station,
            ),
            Example(
                name="deleted",
                summary="The station is removed from the registry (a tombstone).",
                key="CP-0999",
                headers=hdr.tombstone_headers(STATIONS, "CP-0999", source=_OPERATOR, at=_AT),
                value=None,
            ),
        ),
        ID_TOKENS.name: (
            Example(
                name="accepted",
                summary="An accepted RFID card of a fleet.",
                key=id_token.id_token,
                headers=hdr.id_token_headers(id_token, source=_OPERATOR),
                value=id_token,
            ),
            Example(
                name="deleted",
                summary="The id token is removed from the list (a tombstone).",
                key="04E91C5A999999",
                headers=hdr.tombstone_headers(
                    ID_TOKENS, "04E91C5A999999", source=_OPERATOR, at=_AT
                ),
                value=None,
            ),
        ),
        SITES.name: (
            Example(
                name="site",
                summary="A site with one circuit.",
                key=site.site_id,
                headers=hdr.site_headers(site, source=_OPERATOR),
                value=site,
            ),
            Example(
                name="deleted",
                summary="The site is removed (a tombstone).",
                key="site-hamburg-2",
                headers=hdr.tombstone_headers(SITES, "site-hamburg-2", source=_OPERATOR, at=_AT),
                value=None,
            ),
        ),
        DEAD_LETTER.name: (
            Example(
                name="truncated",
                summary="The sessions worker gave up on a truncated event.",
                key=_STATION,
                headers=hdr.dead_letter_headers(
                    dead_letter, source=hdr.worker_source("sessions", "sessions-0")
                ),
                value=dead_letter,
            ),
        ),
    }


EXAMPLES: dict[str, tuple[Example, ...]] = _examples()


def _example_object(example: Example) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "name": example.name,
        "summary": example.summary,
        "headers": {name: value.decode() for name, value in example.headers},
    }
    if example.value is not None:
        shown["payload"] = msgspec.json.decode(msgspec.json.encode(example.value))
    return shown


# --- messages, channels, operations -------------------------------------------------------------

_KEY_WORDS = {
    "station id": "The station id, UTF-8: every record of a station is on one partition, in order.",
    "id token": "The id token, UTF-8.",
    "site id": "The site id, UTF-8.",
    "silence id": "The silence id, UTF-8.",
}


def _headers_schema(topic: Topic, *, tombstone: bool) -> dict[str, Any]:
    types = [f"{topic.ce_type_prefix}.deleted"] if tombstone else list(topic.ce_types)
    if topic.compacted and not tombstone:
        types.remove(f"{topic.ce_type_prefix}.deleted")
    properties: dict[str, Any] = {
        hdr.CE_SPECVERSION: {
            "type": "string",
            "const": "1.0",
            "description": "CloudEvents specification version.",
        },
        hdr.CE_ID: {
            "type": "string",
            "description": "Unique per distinct record; a duplicate of a record (an "
            "at-least-once retry) has the same id.",
        },
        hdr.CE_TYPE: {
            "type": "string",
            "enum": types,
            "description": "What the record says: the topic's type prefix and the record's kind.",
        },
        hdr.CE_SOURCE: {
            "type": "string",
            "format": "uri-reference",
            "description": "Who wrote the record, e.g. /csms/gateway/gateway-0.",
        },
        hdr.CE_TIME: {
            "type": "string",
            "format": "date-time",
            "description": "The record's own timestamp (RFC 3339, UTC).",
        },
    }
    if not tombstone:
        properties[hdr.CONTENT_TYPE] = {"type": "string", "const": "application/json"}
    if "ocpp-action" in topic.ocpp_headers and not tombstone:
        properties[hdr.OCPP_ACTION] = {
            "type": "string",
            "description": "The OCPP action, when the record has one.",
        }
    if "ocpp-version" in topic.ocpp_headers and not tombstone:
        properties[hdr.OCPP_VERSION] = {
            "type": "string",
            "enum": ["1.6", "2.0.1", "2.1"],
            "description": "The OCPP version, when the record has one.",
        }
    if topic is PRESENCE and tombstone:
        properties[hdr.COMMANDS_HANDLED] = {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "On a tombstone the station's holder wrote: the offset just past the "
            "last record of ocpp.commands.v1 for the station that its connection handled "
            "(each got its one result from that gateway).",
        }
    required = [hdr.CE_SPECVERSION, hdr.CE_ID, hdr.CE_TYPE, hdr.CE_SOURCE, hdr.CE_TIME]
    if not tombstone:
        required.append(hdr.CONTENT_TYPE)
    return {"type": "object", "properties": properties, "required": required}


def _message_names(topic: Topic) -> list[str]:
    name = topic.value_type.__name__
    return [name, f"{name}Tombstone"] if topic.compacted else [name]


def _messages(topic: Topic) -> dict[str, Any]:
    name = topic.value_type.__name__
    examples = EXAMPLES[topic.name]
    key = {"type": "string", "description": _KEY_WORDS[topic.key]}
    bindings = {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}}
    messages: dict[str, Any] = {
        name: {
            "name": name,
            "title": name,
            "summary": topic.summary,
            "contentType": "application/json",
            "headers": _headers_schema(topic, tombstone=False),
            "payload": {"$ref": SCHEMA_REF.format(name=name)},
            "bindings": bindings,
            "examples": [_example_object(e) for e in examples if e.value is not None],
        }
    }
    if topic.compacted:
        messages[f"{name}Tombstone"] = {
            "name": f"{name}Tombstone",
            "title": f"{name} tombstone",
            "summary": f"Deletes the {topic.key}'s record: a null value.",
            "headers": _headers_schema(topic, tombstone=True),
            "payload": {"type": "null"},
            "bindings": bindings,
            "examples": [_example_object(e) for e in examples if e.value is None],
        }
    return messages


def _channel(topic: Topic) -> dict[str, Any]:
    retention = "compacted: the latest record per key" if topic.compacted else "deleted by time"
    return {
        "address": topic.name,
        "title": topic.name,
        "description": f"{topic.summary}\n\nKey: {topic.key}. Written by: {topic.written_by}. "
        f"Read by: {', '.join(topic.readers)}. Retention: {retention}.",
        "messages": {
            name: {"$ref": f"#/components/messages/{name}"} for name in _message_names(topic)
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "topicConfiguration": {
                    "cleanup.policy": ["compact"] if topic.compacted else ["delete"]
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _slug(text: str) -> str:
    return text.replace(" ", "-")


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for topic in CATALOGUE:
        messages = [
            {"$ref": f"#/channels/{topic.name}/messages/{name}"} for name in _message_names(topic)
        ]
        for action, roles, verb in (
            ("send", topic.writers, "writes"),
            ("receive", topic.readers, "reads"),
        ):
            for role in roles:
                operations[f"{_slug(role)}-{action}s-{topic.name}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{topic.name}"},
                    "summary": f"The {role} {verb} {topic.name}.",
                    "messages": messages,
                }
    return operations


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document as plain data."""
    messages: dict[str, Any] = {}
    for topic in CATALOGUE:
        messages.update(_messages(topic))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "csms Kafka topics",
            "version": DOCUMENT_VERSION,
            "description": INFO_DESCRIPTION,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
        },
        "defaultContentType": "application/json",
        "channels": {topic.name: _channel(topic) for topic in CATALOGUE},
        "operations": _operations(),
        "components": {"messages": messages, "schemas": schemas()},
    }


# --- YAML ---------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Writes multi-line strings as literal blocks, so descriptions read as text, and no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> Any:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)

HEADER = (
    "# Generated by `python -m contracts.asyncapi` from contracts/topics.py,\n"
    "# contracts/envelopes.py and contracts/headers.py. Do not edit by hand.\n"
)


def render() -> str:
    """The document as the YAML text that is checked in."""
    body = yaml.dump(document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + str(body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.asyncapi", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="where to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the file differs from a fresh generation"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m contracts.asyncapi", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
