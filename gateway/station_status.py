"""``csms stations status``: the stations' status records, read and shown.

The records are the compacted topic csms.station-status.v1, kept by the status
worker (docs/monitoring.md). The command reads the topic to its end and shows
the fleet at a glance (counts, then one line per station), one station in
detail, or the records as JSON lines (``--json``). Pure rendering lives here
next to the reading, so the text can be tested without Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from contracts.bus.follower import read_to_end
from contracts.envelopes import (
    ConnectorState,
    StationStatus,
    decode_station_status,
    encode_station_status,
)
from contracts.settings import KafkaSettings
from contracts.topics import STATION_STATUS

__all__ = [
    "UnknownStation",
    "charging",
    "describe_fleet",
    "describe_station",
    "faulted",
    "read_statuses",
    "status_lines",
]

log = logging.getLogger(__name__)

READ_TIMEOUT = 30.0


class UnknownStation(Exception):
    """No status record names the station (exit status 1); the message says so."""


async def read_statuses(
    kafka: KafkaSettings, *, within: float = READ_TIMEOUT
) -> dict[str, StationStatus]:
    """Every station's status: csms.station-status.v1 read from its beginning to its end."""
    statuses: dict[str, StationStatus] = {}

    def apply(records: list[Any]) -> None:
        for record in records:
            if record.key is None:
                continue
            station_id = record.key.decode("utf-8", "replace")
            try:
                status = decode_station_status(record.value)
            except msgspec.DecodeError as exc:
                log.warning(
                    "stations.status_skipped",
                    extra={"station_id": station_id, "offset": record.offset, "why": str(exc)},
                )
                continue
            if status is None:
                statuses.pop(station_id, None)
            else:
                statuses[station_id] = status

    await read_to_end(
        kafka, STATION_STATUS.name, apply, client_id="csms-stations-status-cli", within=within
    )
    return statuses


# --- judging a record ---------------------------------------------------------------------------


def _connector_faulted(connector: ConnectorState) -> bool:
    return connector.status == "Faulted" or connector.error_code not in (None, "NoError")


def faulted(status: StationStatus) -> bool:
    """A connector says Faulted (or a 1.6 error code), or a problem is open."""
    return bool(status.problems) or any(_connector_faulted(c) for c in status.connectors)


def charging(status: StationStatus) -> bool:
    """A transaction is going on."""
    return bool(status.transactions)


# --- text ---------------------------------------------------------------------------------------


def _time(at: datetime | None) -> str:
    if at is None:
        return "-"
    return msgspec.json.encode(at).decode()[1:-1]


def _where(connector: ConnectorState) -> str:
    if connector.connector_id is None:
        return str(connector.evse_id)
    return f"{connector.evse_id}/{connector.connector_id}"


def _said(connector: ConnectorState) -> str:
    if connector.error_code in (None, "NoError"):
        return connector.status
    return f"{connector.status}({connector.error_code})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def describe_fleet(statuses: Mapping[str, StationStatus]) -> list[str]:
    """The counts, then one line per station (sorted by id)."""
    values = list(statuses.values())
    online = sum(s.online for s in values)
    lines = [
        f"{len(values)} stations: {online} online, {len(values) - online} offline, "
        f"{sum(charging(s) for s in values)} charging, {sum(faulted(s) for s in values)} faulted"
    ]
    if not values:
        return lines
    rows = [["station", "state", "ocpp", "vendor/model", "connectors", "last heard"]]
    for station_id in sorted(statuses):
        status = statuses[station_id]
        boot = status.boot
        rows.append(
            [
                station_id,
                "online" if status.online else "offline",
                status.ocpp_version or "-",
                "-" if boot is None else f"{boot.vendor}/{boot.model}",
                " ".join(f"{_where(c)}:{_said(c)}" for c in status.connectors) or "-",
                _time(status.last_heard_at),
            ]
        )
    return [*lines, *_table(rows)]


def describe_station(status: StationStatus) -> list[str]:
    """One station in detail, a fact per line."""
    rows = [["station", status.station_id]]
    if status.online:
        state = f"online since {_time(status.connected_since)}"
    else:
        state = f"offline since {_time(status.disconnected_at)}"
    if status.connection_id is not None:
        state += f" (connection {status.connection_id} on {status.gateway_id or '-'})"
    rows += [
        ["state", state],
        ["ocpp", status.ocpp_version or "-"],
        ["last heard", _time(status.last_heard_at)],
    ]
    boot = status.boot
    if boot is not None:
        rows.append(
            [
                "boot",
                f"{boot.vendor} {boot.model}, serial {boot.serial_number or '-'}, firmware "
                f"{boot.firmware_version or '-'}, at {_time(boot.booted_at)}"
                + (f" ({boot.reason})" if boot.reason else ""),
            ]
        )
    for c in status.connectors:
        details = ", ".join(d for d in (c.vendor_error_code, c.info) if d)
        text = _said(c) + (f" [{details}]" if details else "")
        rows.append([f"connector {_where(c)}", f"{text} since {_time(c.since)}"])
    for t in status.transactions:
        rows.append(
            [
                f"transaction {t.evse_id}",
                f"{t.transaction_id or '(id not yet known)'} started {_time(t.started_at)}",
            ]
        )
    for m in status.meters:
        energy = "-" if m.energy_wh is None else f"{m.energy_wh:g} Wh"
        power = "-" if m.power_w is None else f"{m.power_w:g} W"
        rows.append([f"meter {m.evse_id}", f"{energy}, {power} at {_time(m.at)}"])
    for name, progress in (("firmware", status.firmware), ("diagnostics", status.diagnostics)):
        if progress is not None:
            request = "" if progress.request_id is None else f" (request {progress.request_id})"
            rows.append([name, f"{progress.status}{request} at {_time(progress.at)}"])
    for p in status.problems:
        where = "" if p.evse_id is None else f" evse {p.evse_id}"
        where += "" if p.connector_id is None else f"/{p.connector_id}"
        tech = ", ".join(d for d in (p.tech_code, p.tech_info) if d)
        rows.append(
            [
                "problem",
                f"{p.component}{where} {p.variable}={p.value}"
                + (f" [{tech}]" if tech else "")
                + f" since {_time(p.since)}",
            ]
        )
    rows.append(["updated", _time(status.updated_at)])
    return _table(rows)


def status_lines(
    statuses: Mapping[str, StationStatus], station_id: str | None, *, as_json: bool
) -> list[str]:
    """What ``csms stations status [ID] [--json]`` prints; raises :class:`UnknownStation`."""
    if station_id is not None:
        status = statuses.get(station_id)
        if status is None:
            raise UnknownStation(
                f"no status record for station {station_id!r} on {STATION_STATUS.name} "
                f"({len(statuses)} stations have one): the status worker has not seen it "
                "connect or send anything"
            )
        chosen = [status]
    else:
        chosen = [statuses[s] for s in sorted(statuses)]
    if as_json:
        return [(encode_station_status(s) or b"").decode() for s in chosen]
    if station_id is not None:
        return describe_station(chosen[0])
    return describe_fleet(statuses)
