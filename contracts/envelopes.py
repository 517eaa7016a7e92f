"""The record values of every csms topic: one ``msgspec.Struct`` per envelope, and its codec.

This is the downstream contract (docs/topics.md, contracts/asyncapi.yaml). The
rules every envelope follows:

- The value is JSON with snake_case field names; every field is always written
  (``null`` when it has no value), so a consumer in any language reads one shape.
- Timestamps are RFC 3339 in UTC (``2026-03-01T12:00:00.123456Z``): producers
  pass aware UTC datetimes, and the decoders reject a timestamp without an offset.
- OCPP payloads are ``msgspec.Raw``: the bytes the station sent (or that a
  worker wants sent), embedded in the envelope without being decoded or
  re-encoded. Decode them with the OCPP payload types of the record's
  ``action`` and ``ocpp_version``.
- Evolution, within a ``.v1`` topic: a new field gets a default; a field's
  type never changes; no field is removed or renamed. Anything else is a new
  topic (``.v2``). Decoders ignore fields they do not know, so an older
  consumer reads a newer record.
- Compacted topics (presence, station status, stations, id tokens, sites) use a
  tombstone (a ``null`` value) for a deletion: their ``decode_*`` functions take
  ``bytes | None`` and return ``None`` for a tombstone.

Encoding and decoding: one module-level ``msgspec.json.Encoder`` serves every
envelope (an encoder carries no type, so one is enough), and one typed
``msgspec.json.Decoder`` per envelope; both are built once and reused. The
gateway encodes an event per OCPP call, so :func:`encode_event` is a single
``Encoder.encode`` of the Struct, the ``Raw`` payload copied in as bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from contracts.ocpp import OcppVersion

__all__ = [
    "GATEWAY_GONE",
    "PHASE_ROTATIONS",
    "ActiveTransaction",
    "Alert",
    "AlertSeverity",
    "AlertState",
    "BootInfo",
    "Circuit",
    "CommandError",
    "CommandKind",
    "CommandResult",
    "CommandStatus",
    "ConnectedPayload",
    "ConnectorState",
    "DeadLetter",
    "DisconnectedPayload",
    "EventKind",
    "IdTokenRecord",
    "IdTokenStatus",
    "MeterReading",
    "OcppVersion",
    "OpenProblem",
    "OperationProgress",
    "OriginalHeader",
    "OriginalRecord",
    "Presence",
    "RejectedPayload",
    "SecurityProfile",
    "SessionCorrection",
    "SessionEvent",
    "SessionRecord",
    "SessionState",
    "Silence",
    "SiteRecord",
    "StationCommand",
    "StationEvent",
    "StationRecord",
    "StationStatus",
    "command_problem",
    "decode_alert",
    "decode_command",
    "decode_command_result",
    "decode_connected_payload",
    "decode_dead_letter",
    "decode_disconnected_payload",
    "decode_event",
    "decode_id_token",
    "decode_presence",
    "decode_rejected_payload",
    "decode_session",
    "decode_silence",
    "decode_site",
    "decode_station",
    "decode_station_status",
    "encode_alert",
    "encode_command",
    "encode_command_result",
    "encode_connection_payload",
    "encode_dead_letter",
    "encode_event",
    "encode_id_token",
    "encode_presence",
    "encode_session",
    "encode_silence",
    "encode_site",
    "encode_station",
    "encode_station_status",
    "original_record",
    "record_key",
]

# --- shared field types -------------------------------------------------------------------------


SecurityProfile = Literal[1, 2, 3]
"""OCPP security profile: 1 Basic auth over ws, 2 Basic auth over TLS, 3 mutual TLS."""

UtcTime = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 timestamp in UTC; decoding rejects one without an offset."""

StationId = Annotated[
    str,
    Meta(
        description="The station's identity: the last path segment of its OCPP websocket URL. "
        "Also the record key."
    ),
]
GatewayId = Annotated[
    str, Meta(description="The gateway instance (pod) that wrote the record or holds the station.")
]
ConnectionId = Annotated[
    str,
    Meta(
        description="The gateway's id for one websocket connection of the station, unique across "
        "gateway instances and restarts. A later connection of the same station has another id."
    ),
]
Action = Annotated[
    str, Meta(description="The OCPP action, e.g. MeterValues, RemoteStartTransaction.")
]


def _json_object() -> Raw:
    return Raw(b"{}")


def _json_null() -> Raw:
    return Raw(b"null")


def record_key(station_id: str) -> bytes:
    """The record key for a station (or an id token, or a site on their topics): UTF-8 bytes.

    Every record about a station is keyed by its id, so Kafka keeps the
    station's records in order on one partition, end to end.
    """
    return station_id.encode()


# --- ocpp.events.v1 -----------------------------------------------------------------------------

EventKind = Literal["call", "send", "connected", "disconnected", "rejected"]


class StationEvent(Struct, frozen=True, kw_only=True):
    """A message a station sent, or a change of its connection (ocpp.events.v1).

    ``kind`` is ``call`` for an OCPP CALL, ``send`` for an OCPP 2.1 SEND (an
    unconfirmed message, never answered), ``connected`` / ``disconnected`` for
    the lifecycle of the station's websocket connection, and ``rejected`` for
    a connection attempt the gateway refused after identifying the station
    (wrong password, wrong security profile, disabled...): a security event.

    Who answers a call: when ``reply_expected`` is false the gateway answered
    the station itself (after Kafka acknowledged this record), and nobody may
    reply. When it is true a worker must reply on ocpp.commands.v1 (kind
    ``call_result`` or ``call_error``, naming ``message_id``) before
    ``reply_by``; after that instant the gateway has sent its documented
    fallback, and a late reply ends ``expired``.
    """

    station_id: StationId
    kind: EventKind
    message_id: Annotated[
        str,
        Meta(
            description="The OCPP-J message id of the call or send; for a lifecycle event an id "
            "the gateway makes up, unique within the connection."
        ),
    ]
    action: Annotated[
        str | None,
        Meta(description="The OCPP action of a call or send; null for lifecycle events."),
    ] = None
    ocpp_version: Annotated[
        OcppVersion,
        Meta(
            description="The version of the connection; for rejected, the version the station "
            "asked for."
        ),
    ]
    gateway_id: GatewayId
    connection_id: Annotated[
        str,
        Meta(
            description="The gateway's id for the station's websocket connection (for rejected, "
            "for the attempt), unique across gateway instances and restarts."
        ),
    ]
    received_at: Annotated[
        UtcTime,
        Meta(description="When the gateway received the message or saw the connection change."),
    ]
    reply_expected: Annotated[
        bool,
        Meta(
            description="True when a worker must reply to this call; false when the gateway "
            "answered it (or nothing is to be answered)."
        ),
    ] = False
    reply_by: Annotated[
        UtcTime | None,
        Meta(
            description="When reply_expected: the instant after which the gateway answers the "
            "station with its fallback and ignores a reply."
        ),
    ] = None
    payload: Annotated[
        Raw,
        Meta(
            description="For call and send, the OCPP payload exactly as the station sent it. For "
            "connected a ConnectedPayload, for disconnected a DisconnectedPayload, for rejected a "
            "RejectedPayload.",
            extra_json_schema={"type": "object"},
        ),
    ]


class ConnectedPayload(Struct, frozen=True, kw_only=True):
    """The payload of a ``connected`` event: the facts of the new connection."""

    remote_address: Annotated[
        str,
        Meta(
            description="The station's IP address as the gateway sees it (the client address "
            "given by the trusted proxy in TLS-offload mode)."
        ),
    ]
    subprotocol: Annotated[
        str, Meta(description="The negotiated websocket subprotocol, e.g. ocpp1.6, ocpp2.0.1.")
    ]
    security_profile: Annotated[
        Literal[0, 1, 2, 3],
        Meta(
            description="The station's OCPP security profile (1 Basic auth over ws, 2 Basic auth "
            "over TLS, 3 mutual TLS); 0 for a station the gateway let in without credentials "
            "because unknown stations are allowed (development mode)."
        ),
    ]


GATEWAY_GONE = "gateway_gone"
"""The ``close_reason`` of a ``disconnected`` event written for a gateway that is gone."""


class DisconnectedPayload(Struct, frozen=True, kw_only=True):
    """The payload of a ``disconnected`` event: how and when the connection ended."""

    close_code: Annotated[
        int,
        Meta(
            description="The websocket close code (RFC 6455 §7.4.1); 1006 when the connection "
            "dropped without a close frame."
        ),
    ]
    close_reason: str = ""
    connected_seconds: Annotated[
        float, Meta(description="How long the connection lasted, in seconds.")
    ]


class RejectedPayload(Struct, frozen=True, kw_only=True):
    """The payload of a ``rejected`` event: a refused connection attempt of a known station."""

    remote_address: str
    reason: Annotated[
        str,
        Meta(
            description="Why, as a code: bad_credentials, missing_credentials, "
            "username_mismatch, profile_mismatch, certificate_mismatch (docs/security.md)."
        ),
    ]
    http_status: Annotated[
        int | None,
        Meta(description="The HTTP status of the refused upgrade; null when closed otherwise."),
    ] = None


# --- ocpp.commands.v1 ---------------------------------------------------------------------------

CommandKind = Literal["call", "call_result", "call_error"]


class StationCommand(Struct, frozen=True, kw_only=True):
    """A message for a station (ocpp.commands.v1): a call to send, or a reply to its call.

    ``kind`` says which OCPP-J message the gateway sends:

    - ``call``: a CALL of ``action`` with ``payload``; the station's answer
      comes back on ocpp.command-results.v1.
    - ``call_result``: the CALLRESULT to the station's call ``message_id``;
      ``payload`` is the response.
    - ``call_error``: the CALLERROR to the station's call ``message_id``, with
      ``error_code`` and ``error_description``; ``payload`` is the error
      details object (``{}`` when none).

    Every command ends in exactly one CommandResult with the same
    ``command_id``. One Struct rather than a tagged union so a producer in any
    language writes one shape, and so the gateway can always read the
    ``command_id`` it must answer, even when the rest is not valid (see
    :func:`command_problem`).
    """

    command_id: Annotated[
        str,
        Meta(
            description="Unique id chosen by the sender (a UUID is recommended); the result "
            "carries the same id."
        ),
    ]
    station_id: StationId
    kind: CommandKind
    action: Annotated[
        str,
        Meta(
            description="The OCPP action to call; for a reply, the action of the call being "
            "answered."
        ),
    ]
    message_id: Annotated[
        str | None,
        Meta(description="For call_result and call_error: the message id of the station's call."),
    ] = None
    error_code: Annotated[
        str | None,
        Meta(description="For call_error: the OCPP-J error code (in the station's version)."),
    ] = None
    error_description: str = ""
    ocpp_version: Annotated[
        OcppVersion | None,
        Meta(
            description="The version the payload was written for; when set, the gateway refuses "
            "(invalid) to send it on a connection that speaks another version."
        ),
    ] = None
    created_at: UtcTime
    expires_at: Annotated[
        UtcTime | None,
        Meta(description="Not delivered after this instant: the command then ends expired."),
    ] = None
    timeout_s: Annotated[
        float | None,
        Meta(
            description="For call: seconds to wait for the station's answer before the command "
            "ends timeout; null for the gateway's default."
        ),
    ] = None
    source: Annotated[
        str,
        Meta(
            description="Who sent the command, as a URI reference (also its ce_source header), "
            "e.g. /csms/workers/sessions/sessions-7d9f or /billing/api."
        ),
    ]
    payload: Annotated[
        Raw,
        Meta(
            description="The OCPP payload of the call or call_result, or the CALLERROR's "
            "errorDetails object; embedded as JSON.",
            extra_json_schema={"type": "object"},
        ),
    ]


def command_problem(command: StationCommand) -> str | None:
    """Why the gateway must refuse ``command`` (its result then ends ``invalid``), or ``None``.

    Checks what the shape alone cannot: the fields each kind needs. The gateway
    also checks the payload against the OCPP schema of ``action``; that needs
    the station's version, so it is not done here.
    """
    if command.kind != "call" and not command.message_id:
        return f"a {command.kind} needs the message_id of the station's call"
    if command.kind == "call_error" and not command.error_code:
        return "a call_error needs an error_code"
    if command.kind != "call_error" and command.error_code is not None:
        return f"a {command.kind} has no error_code"
    if command.timeout_s is not None and not command.timeout_s > 0:
        return "timeout_s must be a positive number of seconds"
    if not command.action:
        return "action is empty"
    return None


# --- ocpp.command-results.v1 --------------------------------------------------------------------

CommandStatus = Literal[
    "completed", "call_error", "timeout", "station_offline", "expired", "invalid"
]


class CommandError(Struct, frozen=True, kw_only=True):
    """Why a command did not complete."""

    code: Annotated[
        str,
        Meta(
            description="For call_error the station's OCPP-J error code; otherwise a code the "
            "gateway documents for the status (e.g. Timeout, StationOffline)."
        ),
    ]
    description: str = ""
    details: Annotated[
        Raw,
        Meta(
            description="For call_error the station's errorDetails object; {} otherwise.",
            extra_json_schema={"type": "object"},
        ),
    ] = msgspec.field(default_factory=_json_object)


class CommandResult(Struct, frozen=True, kw_only=True):
    """The one outcome of a command (ocpp.command-results.v1).

    ``completed``: a call was answered with a CALLRESULT (its payload is
    ``payload``), or a reply was written to the station. ``call_error``: the
    station answered the call with a CALLERROR. ``timeout``: no answer within
    the command's timeout. ``station_offline``: no gateway holds the station.
    ``expired``: past ``expires_at`` before it could be sent, or a reply to a
    call the gateway had already answered with its fallback. ``invalid``: the
    gateway refused the command (see ``error``).
    """

    command_id: str
    station_id: StationId
    action: Action
    status: CommandStatus
    message_id: Annotated[
        str | None,
        Meta(description="The OCPP-J message id the command went out with; null if it never did."),
    ] = None
    ocpp_version: Annotated[
        OcppVersion | None,
        Meta(description="The version of the connection the command went out on, if it did."),
    ] = None
    error: Annotated[
        CommandError | None, Meta(description="Set for every status but completed.")
    ] = None
    gateway_id: GatewayId
    completed_at: UtcTime
    payload: Annotated[
        Raw,
        Meta(
            description="For a completed call: the station's CALLRESULT payload as received. "
            "null otherwise.",
            extra_json_schema={"type": ["object", "null"]},
        ),
    ] = msgspec.field(default_factory=_json_null)


# --- ocpp.presence.v1 ---------------------------------------------------------------------------


class Presence(Struct, frozen=True, kw_only=True):
    """Which gateway instance holds the station now (ocpp.presence.v1, compacted).

    Written when a station's connection is accepted; a tombstone (null value)
    when it disconnects without being replaced by a newer connection.
    """

    station_id: StationId
    gateway_id: GatewayId
    connection_id: ConnectionId
    ocpp_version: OcppVersion
    connected_at: UtcTime


# --- csms.sessions.v1 ---------------------------------------------------------------------------

SessionState = Literal["active", "completed"]
SessionEvent = Literal["started", "updated", "completed"]
FieldValue = str | int | float | bool | None


class SessionCorrection(Struct, frozen=True, kw_only=True):
    """A field of a completed session that csms corrected, from what, to what, and why."""

    field: Annotated[str, Meta(description="The SessionRecord field, e.g. energy_wh.")]
    was: Annotated[FieldValue, Meta(description="Its value in the session's previous record.")] = (
        None
    )
    now: Annotated[FieldValue, Meta(description="Its value in this record.")] = None
    reason: Annotated[
        str,
        Meta(
            description="Why: late_stop (1.6: the lost StopTransaction of a superseded "
            "session turned up), late_event (2.x: an event from before the Ended arrived "
            "after it); docs/topics.md lists them."
        ),
    ]


class SessionRecord(Struct, frozen=True, kw_only=True):
    """A charging session as the sessions worker knows it (csms.sessions.v1).

    One record per change: ``event`` says what happened (started, updated,
    completed), ``state`` where the session stands. Energies are in Wh. A
    completed session is final: a record after its ``completed`` one is a
    correction (``updated``, state ``completed``) that lists its ``corrections``.
    """

    session_id: Annotated[str, Meta(description="csms's id of the session, stable across records.")]
    station_id: StationId
    transaction_id: Annotated[
        str,
        Meta(description="The OCPP transaction id (1.6 has integers: written as decimal strings)."),
    ]
    id_token: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    state: SessionState
    event: SessionEvent
    started_at: UtcTime
    stopped_at: UtcTime | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: Annotated[
        float | None, Meta(description="Energy delivered so far (active) or in total (completed).")
    ] = None
    stop_reason: str | None = None
    offline: Annotated[
        bool,
        Meta(description="True when the station reported the transaction after being offline."),
    ] = False
    ocpp_version: OcppVersion
    updated_at: UtcTime
    anomalies: Annotated[
        tuple[str, ...],
        Meta(
            description="What was odd about the session's messages, as codes (e.g. "
            "start_retried, stop_with_unknown_id, missing_events, meter_decreased; "
            "docs/workers.md lists them). Added after the first shape: absent in older records."
        ),
    ] = ()
    corrections: Annotated[
        tuple[SessionCorrection, ...],
        Meta(
            description="Set only on a record that corrects a completed session (event "
            "updated, state completed): each field that changed since its previous record. "
            "Added after the first shape: absent in older records."
        ),
    ] = ()


# --- csms.alerts.v1 -----------------------------------------------------------------------------

AlertSeverity = Literal["info", "warning", "critical"]
AlertState = Literal["raised", "cleared"]


class Alert(Struct, frozen=True, kw_only=True):
    """An alert about a station, raised and later cleared (csms.alerts.v1)."""

    alert_id: Annotated[
        str, Meta(description="Stable across the raised and the cleared record of one alert.")
    ]
    station_id: StationId
    kind: Annotated[
        str, Meta(description="What is wrong, e.g. station_offline, connector_faulted.")
    ]
    severity: AlertSeverity
    state: AlertState
    evse_id: int | None = None
    connector_id: int | None = None
    raised_at: UtcTime
    cleared_at: UtcTime | None = None
    summary: Annotated[str, Meta(description="One line for a human.")] = ""
    details: Annotated[dict[str, Any], Meta(description="Facts specific to the kind.")] = {}
    fingerprint: Annotated[
        str,
        Meta(
            description="What the alert is about: <station>/<evse>/<connector>/<kind>, with "
            "empty parts for the station as a whole. At most one alert per fingerprint is "
            "raised (not yet cleared) at a time."
        ),
    ] = ""
    gateway_id: Annotated[
        str | None, Meta(description="The gateway instance that held the station, when known.")
    ] = None
    flapping: Annotated[
        bool,
        Meta(
            description="Raised because its condition came and went too often: it stays raised "
            "until the condition has been gone for a while."
        ),
    ] = False


# --- csms.alert-silences.v1 ---------------------------------------------------------------------


class Silence(Struct, frozen=True, kw_only=True):
    """A silence: alerts it matches are not notified while it is active (csms.alert-silences.v1,
    compacted; key = the silence id; a tombstone ends it early)."""

    silence_id: str
    station_id: Annotated[
        str | None, Meta(description="The station whose alerts it silences; null: every station.")
    ] = None
    kind: Annotated[
        str | None,
        Meta(description="The rule (an alert's kind) it silences; null: every rule."),
    ] = None
    starts_at: UtcTime
    ends_at: Annotated[
        datetime,
        Meta(tz=True, description="The silence is active from starts_at until before ends_at."),
    ]
    created_by: Annotated[str, Meta(description="Who silenced, e.g. the operator's login.")]
    comment: str = ""
    created_at: UtcTime


# --- csms.station-status.v1 ---------------------------------------------------------------------


class ConnectorState(Struct, frozen=True, kw_only=True):
    """What a station last said about one of its EVSEs or connectors (StatusNotification)."""

    evse_id: Annotated[
        int,
        Meta(
            description="The EVSE (OCPP 1.6: the connector id; 0 is the station itself, in "
            "every version)."
        ),
    ]
    connector_id: Annotated[
        int | None, Meta(description="The connector of the EVSE (2.0.1, 2.1); null in 1.6.")
    ] = None
    status: Annotated[
        str, Meta(description="As the station said it: Available, Charging, Occupied, Faulted...")
    ]
    error_code: Annotated[
        str | None, Meta(description="OCPP 1.6 errorCode (NoError when all is well); null in 2.x.")
    ] = None
    vendor_error_code: str | None = None
    info: str | None = None
    since: Annotated[
        UtcTime, Meta(description="When the station reported this status first (its timestamp).")
    ]


class ActiveTransaction(Struct, frozen=True, kw_only=True):
    """A transaction going on on an EVSE."""

    evse_id: int
    connector_id: int | None = None
    transaction_id: Annotated[
        str | None,
        Meta(
            description="The transaction id (1.6 as decimal text); null for a 1.6 transaction "
            "until a message names it (its id is the sessions worker's answer)."
        ),
    ] = None
    started_at: Annotated[
        UtcTime | None, Meta(description="The station's start time; null when not seen.")
    ] = None


class MeterReading(Struct, frozen=True, kw_only=True):
    """The latest meter reading of an EVSE."""

    evse_id: int
    energy_wh: Annotated[float | None, Meta(description="The energy import register, Wh.")] = None
    power_w: Annotated[float | None, Meta(description="Active import power, W.")] = None
    at: Annotated[UtcTime, Meta(description="The reading's timestamp.")]


class BootInfo(Struct, frozen=True, kw_only=True):
    """What the station's last BootNotification said."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    reason: Annotated[
        str | None, Meta(description="2.0.1/2.1 boot reason (PowerUp, Watchdog...); null in 1.6.")
    ] = None
    booted_at: UtcTime


class OperationProgress(Struct, frozen=True, kw_only=True):
    """The last status of a firmware update or a diagnostics (log) upload."""

    status: str
    request_id: int | None = None
    at: UtcTime


class OpenProblem(Struct, frozen=True, kw_only=True):
    """A problem a 2.0.1/2.1 station reported (NotifyEvent) and has not cleared."""

    component: str
    variable: str
    evse_id: int | None = None
    connector_id: int | None = None
    value: Annotated[str, Meta(description="The variable's actual value the station reported.")]
    tech_code: str | None = None
    tech_info: str | None = None
    since: UtcTime


class StationStatus(Struct, frozen=True, kw_only=True):
    """A station's status as the status worker knows it (csms.station-status.v1, compacted).

    One record per change of what it shows; ``last_heard_at`` moves in coarse
    steps (the worker's ``CSMS_STATUS_HEARD_STEP``) and meter readings too
    (``CSMS_STATUS_METER_STEP``), so a heartbeat alone does not write a record.
    """

    station_id: StationId
    online: Annotated[
        bool,
        Meta(
            description="True while the connection below is open. A disconnect of another, "
            "older connection does not make the station offline."
        ),
    ] = False
    connection_id: Annotated[
        str | None, Meta(description="The connection that counts (the latest).")
    ] = None
    gateway_id: Annotated[
        str | None, Meta(description="The gateway instance of that connection.")
    ] = None
    ocpp_version: OcppVersion | None = None
    connected_since: Annotated[
        UtcTime | None,
        Meta(description="When that connection opened; null when its start was not seen."),
    ] = None
    disconnected_at: Annotated[UtcTime | None, Meta(description="When it ended, once offline.")] = (
        None
    )
    last_heard_at: Annotated[
        UtcTime | None,
        Meta(
            description="When the station last sent something, in coarse steps while nothing "
            "else changes (exact in a record written for another reason)."
        ),
    ] = None
    boot: BootInfo | None = None
    connectors: Annotated[
        tuple[ConnectorState, ...],
        Meta(description="Each EVSE and connector the station reported, by evse and connector."),
    ] = ()
    transactions: Annotated[
        tuple[ActiveTransaction, ...], Meta(description="The active transaction of each EVSE.")
    ] = ()
    meters: Annotated[
        tuple[MeterReading, ...], Meta(description="The latest meter reading of each EVSE.")
    ] = ()
    firmware: OperationProgress | None = None
    diagnostics: Annotated[
        OperationProgress | None,
        Meta(description="1.6 DiagnosticsStatusNotification, 2.x LogStatusNotification."),
    ] = None
    problems: Annotated[
        tuple[OpenProblem, ...],
        Meta(description="Open NotifyEvent problems, by component, EVSE, connector, variable."),
    ] = ()
    updated_at: Annotated[
        UtcTime, Meta(description="When the gateway received the event behind this record.")
    ]


# --- csms.stations.v1 ---------------------------------------------------------------------------


class StationRecord(Struct, frozen=True, kw_only=True):
    """A station in the registry (csms.stations.v1, compacted; a tombstone deletes it)."""

    station_id: StationId
    security_profile: SecurityProfile
    password_hash: Annotated[
        str | None,
        Meta(
            description="The salted hash of the station's Basic auth password, in the gateway's "
            "format (opaque to everyone else); null for security profile 3."
        ),
    ] = None
    site_id: str | None = None
    enabled: Annotated[bool, Meta(description="A disabled station is refused at connect.")] = True
    updated_at: UtcTime
    circuit_id: Annotated[
        str | None,
        Meta(
            description="The circuit of its site the station hangs on; null: the site's grid "
            "connection (or, for records written before this field, the circuit whose "
            "station_ids list it)."
        ),
    ] = None
    phase_rotation: Annotated[
        str,
        Meta(
            description="Which grid phase feeds the station's L1, L2, L3, in OCPP "
            'PhaseRotation letters read against the grid connection: "RST" (L1 on grid L1), '
            '"STR", "TRS", "RTS", "SRT", "TSR"; x for a phase not connected ("Rxx").'
        ),
    ] = "RST"
    max_current_a: Annotated[
        float | None,
        Meta(
            description="The hardware maximum of each of its EVSEs, A per phase; null: "
            "unknown (bounded by its circuits)."
        ),
    ] = None


# --- csms.id-tokens.v1 --------------------------------------------------------------------------

IdTokenStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]


class IdTokenRecord(Struct, frozen=True, kw_only=True):
    """An entry of the authorization list (csms.id-tokens.v1, compacted; key = the id token)."""

    id_token: str
    status: IdTokenStatus
    expires_at: UtcTime | None = None
    group_id: Annotated[
        str | None, Meta(description="The parent/group id token (OCPP parentIdTag, groupIdToken).")
    ] = None
    updated_at: UtcTime


# --- csms.sites.v1 ------------------------------------------------------------------------------


PHASE_ROTATIONS = frozenset(
    l1 + l2 + l3
    for l1 in "RST"
    for l2 in "RSTx"
    for l3 in "RSTx"
    if len({l1, l2, l3} - {"x"}) == sum(c != "x" for c in (l1, l2, l3))
)
"""Every valid ``phase_rotation``: three of R, S, T or x, each letter once, L1 connected."""


class Circuit(Struct, frozen=True, kw_only=True):
    """An electrical circuit of a site: its limits and where it hangs in the site's tree."""

    circuit_id: str
    max_current_a: Annotated[
        float | None,
        Meta(description="Per-phase current limit in A (its rating); null: none of its own."),
    ] = None
    max_power_w: float | None = None
    station_ids: Annotated[
        tuple[str, ...],
        Meta(
            description="Deprecated: stations placed on this circuit by records written before "
            "csms.stations.v1 had circuit_id, which takes precedence; csms writes []."
        ),
    ] = ()
    parent_id: Annotated[
        str | None,
        Meta(description="The circuit this one hangs on; null: the site's grid connection."),
    ] = None
    phases: Annotated[Literal[1, 3], Meta(description="Phases it carries: 1 or 3.")] = 3
    grid_phase: Annotated[
        Literal[1, 2, 3], Meta(description="The grid phase a single-phase circuit is on.")
    ] = 1
    nominal_voltage_v: Annotated[
        float, Meta(description="Nominal voltage, phase to neutral, V (for max_power_w).")
    ] = 230.0
    derating: Annotated[
        float, Meta(description="The share of max_current_a that may be used, in (0, 1].")
    ] = 1.0


class SiteRecord(Struct, frozen=True, kw_only=True):
    """A site's capacity and circuits (csms.sites.v1, compacted; key = the site id).

    The site's own fields describe its grid connection, the root of the tree;
    every station whose csms.stations.v1 record names the site hangs on it or
    on one of its circuits.
    """

    site_id: str
    max_current_a: Annotated[
        float | None, Meta(description="Per-phase current limit of the grid connection in A.")
    ] = None
    max_power_w: float | None = None
    circuits: tuple[Circuit, ...] = ()
    updated_at: UtcTime
    phases: Annotated[Literal[1, 3], Meta(description="Phases of the grid connection: 1 or 3.")] = 3
    nominal_voltage_v: Annotated[
        float, Meta(description="Nominal voltage of the grid connection, phase to neutral, V.")
    ] = 230.0
    derating: Annotated[
        float, Meta(description="The share of max_current_a that may be used, in (0, 1].")
    ] = 1.0


# --- csms.dead-letter.v1 ------------------------------------------------------------------------

BytesEncoding = Literal["utf-8", "base64"]


class OriginalHeader(Struct, frozen=True, kw_only=True):
    """One header of a dead-lettered record."""

    name: str
    value: str | None
    encoding: BytesEncoding = "utf-8"

    def value_bytes(self) -> bytes | None:
        return _from_text(self.value, self.encoding)


class OriginalRecord(Struct, frozen=True, kw_only=True):
    """The record a worker gave up on, as it was on its topic.

    Key, header values and value are text when they are UTF-8, base64 otherwise
    (``*_encoding`` says which); ``key_bytes()`` and ``value_bytes()`` give the
    original bytes back, for a replay.
    """

    topic: str
    partition: int
    offset: int
    timestamp: UtcTime | None = None
    key: str | None
    key_encoding: BytesEncoding = "utf-8"
    headers: tuple[OriginalHeader, ...] = ()
    value: str | None
    value_encoding: BytesEncoding = "utf-8"

    def key_bytes(self) -> bytes | None:
        return _from_text(self.key, self.key_encoding)

    def value_bytes(self) -> bytes | None:
        return _from_text(self.value, self.value_encoding)


class DeadLetter(Struct, frozen=True, kw_only=True):
    """A record a worker could not process (csms.dead-letter.v1; key = the original key)."""

    record: OriginalRecord
    worker: Annotated[str, Meta(description="The worker (consumer group) that gave up.")]
    reason: Annotated[str, Meta(description="Why, for a human: the error and its message.")]
    failures: Annotated[int, Meta(description="How many times processing the record failed.")]
    failed_at: UtcTime


def _to_text(data: bytes | None) -> tuple[str | None, BytesEncoding]:
    if data is None:
        return None, "utf-8"
    try:
        return data.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _from_text(text: str | None, encoding: BytesEncoding) -> bytes | None:
    if text is None:
        return None
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not base64: {text[:40]!r}") from exc
    return text.encode()


def original_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] = (),
    timestamp: datetime | None = None,
) -> OriginalRecord:
    """The :class:`OriginalRecord` for a consumed record's bytes (text when UTF-8, else base64)."""
    key_text, key_encoding = _to_text(key)
    value_text, value_encoding = _to_text(value)
    original_headers = []
    for name, raw in headers:
        text, encoding = _to_text(raw)
        original_headers.append(OriginalHeader(name=name, value=text, encoding=encoding))
    return OriginalRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        key=key_text,
        key_encoding=key_encoding,
        headers=tuple(original_headers),
        value=value_text,
        value_encoding=value_encoding,
    )


# --- codecs -------------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()

_EVENT = msgspec.json.Decoder(StationEvent)
_CONNECTED = msgspec.json.Decoder(ConnectedPayload)
_DISCONNECTED = msgspec.json.Decoder(DisconnectedPayload)
_REJECTED = msgspec.json.Decoder(RejectedPayload)
_COMMAND = msgspec.json.Decoder(StationCommand)
_COMMAND_RESULT = msgspec.json.Decoder(CommandResult)
_PRESENCE = msgspec.json.Decoder(Presence)
_SESSION = msgspec.json.Decoder(SessionRecord)
_ALERT = msgspec.json.Decoder(Alert)
_SILENCE = msgspec.json.Decoder(Silence)
_STATION = msgspec.json.Decoder(StationRecord)
_STATION_STATUS = msgspec.json.Decoder(StationStatus)
_ID_TOKEN = msgspec.json.Decoder(IdTokenRecord)
_SITE = msgspec.json.Decoder(SiteRecord)
_DEAD_LETTER = msgspec.json.Decoder(DeadLetter)

# Every decode_* raises msgspec.DecodeError (msgspec.ValidationError for a
# well-formed value of the wrong shape) when the value is not the envelope.


def encode_event(event: StationEvent) -> bytes:
    return _ENCODER.encode(event)


def decode_event(value: bytes) -> StationEvent:
    return _EVENT.decode(value)


def encode_connection_payload(
    payload: ConnectedPayload | DisconnectedPayload | RejectedPayload,
) -> Raw:
    """The ``payload`` of a connected, disconnected or rejected :class:`StationEvent`."""
    return Raw(_ENCODER.encode(payload))


def decode_connected_payload(payload: Raw | bytes) -> ConnectedPayload:
    return _CONNECTED.decode(payload)


def decode_disconnected_payload(payload: Raw | bytes) -> DisconnectedPayload:
    return _DISCONNECTED.decode(payload)


def decode_rejected_payload(payload: Raw | bytes) -> RejectedPayload:
    return _REJECTED.decode(payload)


def encode_command(command: StationCommand) -> bytes:
    return _ENCODER.encode(command)


def decode_command(value: bytes) -> StationCommand:
    return _COMMAND.decode(value)


def encode_command_result(result: CommandResult) -> bytes:
    return _ENCODER.encode(result)


def decode_command_result(value: bytes) -> CommandResult:
    return _COMMAND_RESULT.decode(value)


def encode_presence(presence: Presence | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) when the station is no longer held."""
    return None if presence is None else _ENCODER.encode(presence)


def decode_presence(value: bytes | None) -> Presence | None:
    return None if value is None else _PRESENCE.decode(value)


def encode_session(session: SessionRecord) -> bytes:
    return _ENCODER.encode(session)


def decode_session(value: bytes) -> SessionRecord:
    return _SESSION.decode(value)


def encode_alert(alert: Alert) -> bytes:
    return _ENCODER.encode(alert)


def decode_alert(value: bytes) -> Alert:
    return _ALERT.decode(value)


def encode_silence(silence: Silence | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) ends the silence."""
    return None if silence is None else _ENCODER.encode(silence)


def decode_silence(value: bytes | None) -> Silence | None:
    return None if value is None else _SILENCE.decode(value)


def encode_station_status(status: StationStatus | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) forgets the station."""
    return None if status is None else _ENCODER.encode(status)


def decode_station_status(value: bytes | None) -> StationStatus | None:
    return None if value is None else _STATION_STATUS.decode(value)


def encode_station(station: StationRecord | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) deletes the station."""
    return None if station is None else _ENCODER.encode(station)


def decode_station(value: bytes | None) -> StationRecord | None:
    return None if value is None else _STATION.decode(value)


def encode_id_token(id_token: IdTokenRecord | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) removes the id token from the list."""
    return None if id_token is None else _ENCODER.encode(id_token)


def decode_id_token(value: bytes | None) -> IdTokenRecord | None:
    return None if value is None else _ID_TOKEN.decode(value)


def encode_site(site: SiteRecord | None) -> bytes | None:
    """The record value; ``None`` (a tombstone) deletes the site."""
    return None if site is None else _ENCODER.encode(site)


def decode_site(value: bytes | None) -> SiteRecord | None:
    return None if value is None else _SITE.decode(value)


def encode_dead_letter(dead_letter: DeadLetter) -> bytes:
    return _ENCODER.encode(dead_letter)


def decode_dead_letter(value: bytes) -> DeadLetter:
    return _DEAD_LETTER.decode(value)
