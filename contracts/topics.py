"""The topic catalogue: every Kafka topic csms reads or writes, its key, value and headers.

This is the downstream contract (ARCHITECTURE.md, "Topics"; docs/topics.md);
the AsyncAPI document (contracts/asyncapi.yaml) is generated from it together
with the envelopes, and the header builders (contracts/headers.py) take each
topic's CloudEvents types from it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

import msgspec

from contracts.envelopes import (
    Alert,
    AlertState,
    CommandKind,
    CommandResult,
    CommandStatus,
    DeadLetter,
    EventKind,
    IdTokenRecord,
    Presence,
    SessionEvent,
    SessionRecord,
    Silence,
    SiteRecord,
    StationCommand,
    StationEvent,
    StationRecord,
    StationStatus,
)

__all__ = [
    "ALERTS",
    "CATALOGUE",
    "COMMANDS",
    "COMMAND_RESULTS",
    "COMPACTED_VARIANTS",
    "DEAD_LETTER",
    "EVENTS",
    "ID_TOKENS",
    "PRESENCE",
    "SESSIONS",
    "SILENCES",
    "SITES",
    "STATIONS",
    "STATION_STATUS",
    "OcppHeader",
    "Topic",
    "by_name",
]

OcppHeader = Literal["ocpp-action", "ocpp-version"]

# The roles that read and write topics; the AsyncAPI operations are named after them.
_GATEWAY = "gateway"
_SESSIONS_WORKER = "sessions worker"
_SMART_CHARGING_WORKER = "smart-charging worker"
_ALERTS_WORKER = "alerts worker"
_STATUS_WORKER = "status worker"
_WORKERS = "workers"
_OPERATORS = "operators"
_DOWNSTREAM = "downstream services"

# A compacted topic holds the latest record per key: "updated" records and
# "deleted" tombstones are its two CloudEvents types.
COMPACTED_VARIANTS = ("updated", "deleted")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Topic:
    """One topic: its name, key, value envelope, headers, and who writes and reads it.

    CloudEvents ``ce_type`` of a record: ``f"{ce_type_prefix}.{variant}"``,
    where the variant is the value of the envelope's discriminating field
    (event kind, command kind, result status, ...), or ``updated`` /
    ``deleted`` on a compacted topic.
    """

    name: str
    key: Literal["station id", "id token", "site id", "silence id"]
    compacted: bool = False
    summary: str
    value_type: type[msgspec.Struct]
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    ce_type_prefix: str
    ce_type_variants: tuple[str, ...]
    ocpp_headers: tuple[OcppHeader, ...] = ()

    @property
    def written_by(self) -> str:
        return ", ".join(self.writers)

    @property
    def ce_types(self) -> tuple[str, ...]:
        """Every ``ce_type`` a record of this topic can carry."""
        return tuple(f"{self.ce_type_prefix}.{variant}" for variant in self.ce_type_variants)


EVENTS = Topic(
    name="ocpp.events.v1",
    key="station id",
    summary="Every CALL (and OCPP 2.1 SEND) a station sends, plus connected/disconnected "
    "lifecycle events.",
    value_type=StationEvent,
    writers=(_GATEWAY,),
    readers=(
        _SESSIONS_WORKER,
        _SMART_CHARGING_WORKER,
        _ALERTS_WORKER,
        _STATUS_WORKER,
        _DOWNSTREAM,
    ),
    ce_type_prefix="csms.ocpp.event",
    ce_type_variants=get_args(EventKind),
    ocpp_headers=("ocpp-action", "ocpp-version"),
)
COMMANDS = Topic(
    name="ocpp.commands.v1",
    key="station id",
    summary="Calls to send to a station, and replies (CALLRESULT/CALLERROR) to a station's call.",
    value_type=StationCommand,
    writers=(_WORKERS, _OPERATORS, _DOWNSTREAM),
    readers=(_GATEWAY,),
    ce_type_prefix="csms.ocpp.command",
    ce_type_variants=get_args(CommandKind),
    ocpp_headers=("ocpp-action", "ocpp-version"),
)
COMMAND_RESULTS = Topic(
    name="ocpp.command-results.v1",
    key="station id",
    summary="Exactly one outcome per command: completed, call_error, timeout, "
    "station_offline, expired or invalid.",
    value_type=CommandResult,
    writers=(_GATEWAY,),
    readers=(_WORKERS, _OPERATORS, _DOWNSTREAM),
    ce_type_prefix="csms.ocpp.command-result",
    ce_type_variants=get_args(CommandStatus),
    ocpp_headers=("ocpp-action", "ocpp-version"),
)
PRESENCE = Topic(
    name="ocpp.presence.v1",
    key="station id",
    compacted=True,
    summary="Which gateway instance holds the station now; a tombstone on disconnect.",
    value_type=Presence,
    writers=(_GATEWAY,),
    readers=(_GATEWAY, _ALERTS_WORKER, _DOWNSTREAM),
    ce_type_prefix="csms.ocpp.presence",
    ce_type_variants=COMPACTED_VARIANTS,
    ocpp_headers=("ocpp-version",),
)
SESSIONS = Topic(
    name="csms.sessions.v1",
    key="station id",
    summary="Charging session records: started, updated, completed.",
    value_type=SessionRecord,
    writers=(_SESSIONS_WORKER,),
    readers=(_SMART_CHARGING_WORKER, _DOWNSTREAM),
    ce_type_prefix="csms.session",
    ce_type_variants=get_args(SessionEvent),
    ocpp_headers=("ocpp-version",),
)
STATION_STATUS = Topic(
    name="csms.station-status.v1",
    key="station id",
    compacted=True,
    summary="Each station's status: online, boot, connectors, transactions, meters, firmware, "
    "problems; written when it changes.",
    value_type=StationStatus,
    writers=(_STATUS_WORKER,),
    readers=(_OPERATORS, _DOWNSTREAM),
    ce_type_prefix="csms.station-status",
    ce_type_variants=COMPACTED_VARIANTS,
)
ALERTS = Topic(
    name="csms.alerts.v1",
    key="station id",
    summary="Raised and cleared alerts.",
    value_type=Alert,
    writers=(_ALERTS_WORKER,),
    readers=(_OPERATORS, _DOWNSTREAM),
    ce_type_prefix="csms.alert",
    ce_type_variants=get_args(AlertState),
)
SILENCES = Topic(
    name="csms.alert-silences.v1",
    key="silence id",
    compacted=True,
    summary="Alert silences: while one is active, alerts of its station and rule are not notified.",
    value_type=Silence,
    writers=(_OPERATORS,),
    readers=(_ALERTS_WORKER,),
    ce_type_prefix="csms.alert-silence",
    ce_type_variants=COMPACTED_VARIANTS,
)
STATIONS = Topic(
    name="csms.stations.v1",
    key="station id",
    compacted=True,
    summary="Station registry: credentials hash, security profile, site, enabled.",
    value_type=StationRecord,
    writers=(_OPERATORS,),
    readers=(_GATEWAY, _WORKERS, _DOWNSTREAM),
    ce_type_prefix="csms.station",
    ce_type_variants=COMPACTED_VARIANTS,
)
ID_TOKENS = Topic(
    name="csms.id-tokens.v1",
    key="id token",
    compacted=True,
    summary="Authorization list: status, expiry, group.",
    value_type=IdTokenRecord,
    writers=(_OPERATORS,),
    readers=(_SESSIONS_WORKER,),
    ce_type_prefix="csms.id-token",
    ce_type_variants=COMPACTED_VARIANTS,
)
SITES = Topic(
    name="csms.sites.v1",
    key="site id",
    compacted=True,
    summary="Site and circuit capacity and topology for smart charging.",
    value_type=SiteRecord,
    writers=(_OPERATORS,),
    readers=(_SMART_CHARGING_WORKER,),
    ce_type_prefix="csms.site",
    ce_type_variants=COMPACTED_VARIANTS,
)
DEAD_LETTER = Topic(
    name="csms.dead-letter.v1",
    key="station id",
    summary="Records a worker could not process, with the reason; never blocks a partition.",
    value_type=DeadLetter,
    writers=(_WORKERS,),
    readers=(_OPERATORS,),
    ce_type_prefix="csms.dead-letter",
    ce_type_variants=("recorded",),
)

CATALOGUE: tuple[Topic, ...] = (
    EVENTS,
    COMMANDS,
    COMMAND_RESULTS,
    PRESENCE,
    SESSIONS,
    STATION_STATUS,
    ALERTS,
    SILENCES,
    STATIONS,
    ID_TOKENS,
    SITES,
    DEAD_LETTER,
)


def by_name(name: str) -> Topic:
    """The catalogue entry for ``name``; ``KeyError`` when csms does not know the topic."""
    for topic in CATALOGUE:
        if topic.name == name:
            return topic
    raise KeyError(name)
