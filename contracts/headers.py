"""Record headers: what a consumer filters on without decoding the value.

Every record carries the CloudEvents attributes in the binary content mode of
the CloudEvents Kafka protocol binding (v1.0.2 §3.2): the value is the event
data, and the attributes are headers with the ``ce_`` prefix, UTF-8 encoded.

=================  =====================================================================
header             value
=================  =====================================================================
ce_specversion     ``1.0``
ce_id              unique per distinct record; built from the envelope's own identity, so
                   a record produced twice (an at-least-once retry) has the same id
ce_type            ``<topic's type prefix>.<variant>``, e.g. ``csms.ocpp.event.call``,
                   ``csms.ocpp.command-result.timeout``, ``csms.station.deleted``
                   (``contracts.topics``: ``Topic.ce_types``)
ce_source          who wrote it: ``/csms/gateway/<gateway id>``,
                   ``/csms/workers/<worker>/<instance>``, or a command's ``source``
ce_time            the envelope's own timestamp, RFC 3339 UTC (same text as in the value)
content-type       ``application/json`` (absent on a tombstone, which has no value)
ocpp-action        the OCPP action, on the topics and records it applies to
ocpp-version       ``1.6``, ``2.0.1`` or ``2.1``, likewise
=================  =====================================================================

One builder per use returns the header list aiokafka takes
(``list[tuple[str, bytes]]``); :func:`read_headers` and :func:`header` read
them back on the consumer side. The builders are pure: ids and times come from
the envelope (or, for a tombstone, from the caller), never from a clock here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from contracts.envelopes import (
    Alert,
    CommandResult,
    DeadLetter,
    IdTokenRecord,
    Presence,
    SessionRecord,
    Silence,
    SiteRecord,
    StationCommand,
    StationEvent,
    StationRecord,
    StationStatus,
)
from contracts.topics import (
    ALERTS,
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

__all__ = [
    "CE_ID",
    "CE_SOURCE",
    "CE_SPECVERSION",
    "CE_TIME",
    "CE_TYPE",
    "COMMANDS_HANDLED",
    "CONTENT_TYPE",
    "OCPP_ACTION",
    "OCPP_VERSION",
    "Headers",
    "RecordHeaders",
    "alert_headers",
    "command_headers",
    "command_result_headers",
    "dead_letter_headers",
    "event_headers",
    "gateway_source",
    "header",
    "id_token_headers",
    "presence_headers",
    "read_headers",
    "session_headers",
    "silence_headers",
    "site_headers",
    "station_headers",
    "station_status_headers",
    "tombstone_headers",
    "worker_source",
]

Headers = list[tuple[str, bytes]]

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_TYPE = "ce_type"
CE_SOURCE = "ce_source"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
OCPP_ACTION = "ocpp-action"
OCPP_VERSION = "ocpp-version"
# on a presence tombstone its holder wrote: the offset just past the last record of
# ocpp.commands.v1 for the station that the connection handled (gateway.offline)
COMMANDS_HANDLED = "csms-commands-handled"

_SPECVERSION = (CE_SPECVERSION, b"1.0")
_JSON = (CONTENT_TYPE, b"application/json")

# Encodes a datetime exactly as the envelopes do (RFC 3339, "Z" for UTC).
_ENCODER = msgspec.json.Encoder()


def _types(topic: Topic) -> dict[str, bytes]:
    return {
        variant: ce_type.encode()
        for variant, ce_type in zip(topic.ce_type_variants, topic.ce_types, strict=True)
    }


_EVENT_TYPES = _types(EVENTS)
_COMMAND_TYPES = _types(COMMANDS)
_RESULT_TYPES = _types(COMMAND_RESULTS)
_PRESENCE_TYPES = _types(PRESENCE)
_SESSION_TYPES = _types(SESSIONS)
_ALERT_TYPES = _types(ALERTS)
_STATION_TYPES = _types(STATIONS)
_STATION_STATUS_TYPES = _types(STATION_STATUS)
_ID_TOKEN_TYPES = _types(ID_TOKENS)
_SITE_TYPES = _types(SITES)
_SILENCE_TYPES = _types(SILENCES)
_DEAD_LETTER_TYPES = _types(DEAD_LETTER)
_TYPES_BY_TOPIC = {
    topic.name: types
    for topic, types in (
        (PRESENCE, _PRESENCE_TYPES),
        (STATION_STATUS, _STATION_STATUS_TYPES),
        (STATIONS, _STATION_TYPES),
        (ID_TOKENS, _ID_TOKEN_TYPES),
        (SITES, _SITE_TYPES),
        (SILENCES, _SILENCE_TYPES),
    )
}


def _time(at: datetime) -> bytes:
    return _ENCODER.encode(at)[1:-1]


def gateway_source(gateway_id: str) -> str:
    """The ``ce_source`` of what a gateway instance writes."""
    return f"/csms/gateway/{gateway_id}"


def worker_source(worker: str, instance: str) -> str:
    """The ``ce_source`` of what a worker instance writes, e.g. ``/csms/workers/sessions/pod-1``."""
    return f"/csms/workers/{worker}/{instance}"


def event_headers(event: StationEvent) -> Headers:
    """Headers of an ocpp.events.v1 record (``ce_id`` = connection id and message id)."""
    headers = [
        _SPECVERSION,
        (CE_ID, f"{event.connection_id}:{event.message_id}".encode()),
        (CE_TYPE, _EVENT_TYPES[event.kind]),
        (CE_SOURCE, gateway_source(event.gateway_id).encode()),
        (CE_TIME, _time(event.received_at)),
        _JSON,
        (OCPP_VERSION, event.ocpp_version.encode()),
    ]
    if event.action is not None:
        headers.append((OCPP_ACTION, event.action.encode()))
    return headers


def command_headers(command: StationCommand) -> Headers:
    """Headers of an ocpp.commands.v1 record (``ce_id`` = command id, ``ce_source`` = source)."""
    headers = [
        _SPECVERSION,
        (CE_ID, command.command_id.encode()),
        (CE_TYPE, _COMMAND_TYPES[command.kind]),
        (CE_SOURCE, command.source.encode()),
        (CE_TIME, _time(command.created_at)),
        _JSON,
        (OCPP_ACTION, command.action.encode()),
    ]
    if command.ocpp_version is not None:
        headers.append((OCPP_VERSION, command.ocpp_version.encode()))
    return headers


def command_result_headers(result: CommandResult) -> Headers:
    """Headers of an ocpp.command-results.v1 record (``ce_id`` = command id + ``:result``).

    A command has exactly one result, so two results with the same ``ce_id``
    are duplicates of one outcome.
    """
    headers = [
        _SPECVERSION,
        (CE_ID, f"{result.command_id}:result".encode()),
        (CE_TYPE, _RESULT_TYPES[result.status]),
        (CE_SOURCE, gateway_source(result.gateway_id).encode()),
        (CE_TIME, _time(result.completed_at)),
        _JSON,
        (OCPP_ACTION, result.action.encode()),
    ]
    if result.ocpp_version is not None:
        headers.append((OCPP_VERSION, result.ocpp_version.encode()))
    return headers


def presence_headers(presence: Presence) -> Headers:
    """Headers of an ocpp.presence.v1 record (``ce_id`` = the connection id)."""
    return [
        _SPECVERSION,
        (CE_ID, presence.connection_id.encode()),
        (CE_TYPE, _PRESENCE_TYPES["updated"]),
        (CE_SOURCE, gateway_source(presence.gateway_id).encode()),
        (CE_TIME, _time(presence.connected_at)),
        _JSON,
        (OCPP_VERSION, presence.ocpp_version.encode()),
    ]


def session_headers(session: SessionRecord, *, source: str) -> Headers:
    """Headers of a csms.sessions.v1 record (``ce_id`` = session, event and ``updated_at``)."""
    at = _time(session.updated_at)
    return [
        _SPECVERSION,
        (CE_ID, f"{session.session_id}:{session.event}:".encode() + at),
        (CE_TYPE, _SESSION_TYPES[session.event]),
        (CE_SOURCE, source.encode()),
        (CE_TIME, at),
        _JSON,
        (OCPP_VERSION, session.ocpp_version.encode()),
    ]


def alert_headers(alert: Alert, *, source: str) -> Headers:
    """Headers of a csms.alerts.v1 record (``ce_id`` = alert id and state)."""
    at = alert.cleared_at if alert.state == "cleared" and alert.cleared_at else alert.raised_at
    return [
        _SPECVERSION,
        (CE_ID, f"{alert.alert_id}:{alert.state}".encode()),
        (CE_TYPE, _ALERT_TYPES[alert.state]),
        (CE_SOURCE, source.encode()),
        (CE_TIME, _time(at)),
        _JSON,
    ]


def _registry_headers(types: dict[str, bytes], key: str, at: datetime, source: str) -> Headers:
    time = _time(at)
    return [
        _SPECVERSION,
        (CE_ID, f"{key}:".encode() + time),
        (CE_TYPE, types["updated"]),
        (CE_SOURCE, source.encode()),
        (CE_TIME, time),
        _JSON,
    ]


def station_headers(station: StationRecord, *, source: str) -> Headers:
    """Headers of a csms.stations.v1 record (``ce_id`` = station id and ``updated_at``)."""
    return _registry_headers(_STATION_TYPES, station.station_id, station.updated_at, source)


def station_status_headers(status: StationStatus, *, source: str) -> Headers:
    """Headers of a csms.station-status.v1 record (``ce_id`` = station id and ``updated_at``)."""
    return _registry_headers(_STATION_STATUS_TYPES, status.station_id, status.updated_at, source)


def id_token_headers(id_token: IdTokenRecord, *, source: str) -> Headers:
    """Headers of a csms.id-tokens.v1 record (``ce_id`` = id token and ``updated_at``)."""
    return _registry_headers(_ID_TOKEN_TYPES, id_token.id_token, id_token.updated_at, source)


def site_headers(site: SiteRecord, *, source: str) -> Headers:
    """Headers of a csms.sites.v1 record (``ce_id`` = site id and ``updated_at``)."""
    return _registry_headers(_SITE_TYPES, site.site_id, site.updated_at, source)


def silence_headers(silence: Silence, *, source: str) -> Headers:
    """Headers of a csms.alert-silences.v1 record (``ce_id`` = silence id and ``created_at``)."""
    return _registry_headers(_SILENCE_TYPES, silence.silence_id, silence.created_at, source)


def tombstone_headers(
    topic: Topic, key: str, *, source: str, at: datetime, commands_handled: int | None = None
) -> Headers:
    """Headers of a tombstone (null value) on a compacted topic: ``ce_type`` ``<prefix>.deleted``.

    ``key`` is the record key as text; ``at`` is when the deletion happened.
    A tombstone has no data, so it has no ``content-type``. ``commands_handled``
    (presence tombstones a station's holder writes) adds :data:`COMMANDS_HANDLED`.
    """
    if topic.name not in _TYPES_BY_TOPIC:
        raise ValueError(f"{topic.name} is not compacted: it has no tombstones")
    time = _time(at)
    headers = [
        _SPECVERSION,
        (CE_ID, f"{key}:deleted:".encode() + time),
        (CE_TYPE, _TYPES_BY_TOPIC[topic.name]["deleted"]),
        (CE_SOURCE, source.encode()),
        (CE_TIME, time),
    ]
    if commands_handled is not None:
        headers.append((COMMANDS_HANDLED, str(commands_handled).encode()))
    return headers


def dead_letter_headers(dead_letter: DeadLetter, *, source: str) -> Headers:
    """Headers of a csms.dead-letter.v1 record (``ce_id`` = worker and the record's position)."""
    record = dead_letter.record
    return [
        _SPECVERSION,
        (
            CE_ID,
            f"{dead_letter.worker}:{record.topic}:{record.partition}:{record.offset}".encode(),
        ),
        (CE_TYPE, _DEAD_LETTER_TYPES["recorded"]),
        (CE_SOURCE, source.encode()),
        (CE_TIME, _time(dead_letter.failed_at)),
        _JSON,
    ]


# --- consumer side ------------------------------------------------------------------------------


class RecordHeaders(msgspec.Struct, frozen=True, kw_only=True):
    """The csms headers of a consumed record; ``None`` for each one the record lacks."""

    ce_specversion: str | None = None
    ce_id: str | None = None
    ce_type: str | None = None
    ce_source: str | None = None
    ce_time: str | None = None
    content_type: str | None = None
    ocpp_action: str | None = None
    ocpp_version: str | None = None

    def time(self) -> datetime | None:
        """``ce_time`` as an aware datetime; ``ValueError`` when it is not RFC 3339."""
        return None if self.ce_time is None else datetime.fromisoformat(self.ce_time)


_FIELDS = {
    CE_SPECVERSION: "ce_specversion",
    CE_ID: "ce_id",
    CE_TYPE: "ce_type",
    CE_SOURCE: "ce_source",
    CE_TIME: "ce_time",
    CONTENT_TYPE: "content_type",
    OCPP_ACTION: "ocpp_action",
    OCPP_VERSION: "ocpp_version",
}


def read_headers(headers: Iterable[tuple[str, bytes | None]]) -> RecordHeaders:
    """The csms headers of a record (aiokafka's ``record.headers``); others are ignored.

    When a header appears more than once the last one counts, as in Kafka's
    ``Headers.lastHeader``.
    """
    found: dict[str, str] = {}
    for name, raw in headers:
        field = _FIELDS.get(name)
        if field is not None and raw is not None:
            found[field] = raw.decode("utf-8", "replace")
    return RecordHeaders(**found)


def header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    """The value of one header (the last one of that name), or ``None``: the cheap filter."""
    value: str | None = None
    for candidate, raw in headers:
        if candidate == name and raw is not None:
            value = raw.decode("utf-8", "replace")
    return value
