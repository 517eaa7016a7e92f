"""The topic catalogue: every Kafka topic csms reads or writes, its key and its retention.

This is the downstream contract (ARCHITECTURE.md, "Topics"); the AsyncAPI
document is generated from it together with the envelopes.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "ALERTS",
    "CATALOGUE",
    "COMMANDS",
    "COMMAND_RESULTS",
    "DEAD_LETTER",
    "EVENTS",
    "ID_TOKENS",
    "PRESENCE",
    "SESSIONS",
    "SITES",
    "STATIONS",
    "Topic",
    "by_name",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Topic:
    name: str
    key: Literal["station id", "id token", "site id"]
    compacted: bool = False
    written_by: str
    summary: str


EVENTS = Topic(
    name="ocpp.events.v1",
    key="station id",
    written_by="gateway",
    summary="Every CALL a station sends, plus connected/disconnected lifecycle events.",
)
COMMANDS = Topic(
    name="ocpp.commands.v1",
    key="station id",
    written_by="workers, operators, downstream services",
    summary="Calls to send to a station, and replies (CALLRESULT/CALLERROR) to a station's call.",
)
COMMAND_RESULTS = Topic(
    name="ocpp.command-results.v1",
    key="station id",
    written_by="gateway",
    summary="Exactly one outcome per command: completed, call_error, timeout, "
    "station_offline, expired or invalid.",
)
PRESENCE = Topic(
    name="ocpp.presence.v1",
    key="station id",
    compacted=True,
    written_by="gateway",
    summary="Which gateway instance holds the station now; a tombstone on disconnect.",
)
SESSIONS = Topic(
    name="csms.sessions.v1",
    key="station id",
    written_by="sessions worker",
    summary="Charging session records: started, updated, completed.",
)
ALERTS = Topic(
    name="csms.alerts.v1",
    key="station id",
    written_by="alerts worker",
    summary="Raised and cleared alerts.",
)
STATIONS = Topic(
    name="csms.stations.v1",
    key="station id",
    compacted=True,
    written_by="operators (csms stations)",
    summary="Station registry: credentials hash, security profile, site, enabled.",
)
ID_TOKENS = Topic(
    name="csms.id-tokens.v1",
    key="id token",
    compacted=True,
    written_by="operators (csms id-tokens)",
    summary="Authorization list: status, expiry, group.",
)
SITES = Topic(
    name="csms.sites.v1",
    key="site id",
    compacted=True,
    written_by="operators",
    summary="Site and circuit capacity and topology for smart charging.",
)
DEAD_LETTER = Topic(
    name="csms.dead-letter.v1",
    key="station id",
    written_by="workers",
    summary="Records a worker could not process, with the reason; never blocks a partition.",
)

CATALOGUE: tuple[Topic, ...] = (
    EVENTS,
    COMMANDS,
    COMMAND_RESULTS,
    PRESENCE,
    SESSIONS,
    ALERTS,
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
