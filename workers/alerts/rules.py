"""The alert rules: which conditions hold for a station at an instant.

:func:`conditions` reads a :class:`~workers.alerts.watch.Watch` at ``now`` and
returns every condition that holds, each with the fingerprint it would be
raised under, when it began (and the event that told it), and how long it
must hold before it fires (``hold``). :mod:`workers.alerts.lifecycle` turns
them into alerts. :func:`next_change` says when the passing of time alone
could change the answer, :func:`probe_due` when a silent station should be
asked for a heartbeat first.

The rules (docs/monitoring.md has the operator's view):

``station_offline``
    disconnected for ``offline_after``; or connected but silent for
    ``offline_after`` and still silent ``probe_wait`` after a TriggerMessage
    Heartbeat. Clears when the station is heard from.
``connector_faulted``
    a connector reporting Faulted or a 1.6 error code other than NoError
    (minus the vendor quirks in :data:`QUIRKS`), or a NotifyEvent problem
    not cleared, for ``fault_for``. One alert per EVSE and connector (1.6
    connector 0 and problems of no EVSE: the station).
``boot_loop``
    ``boot_loop_boots`` boots within ``boot_loop_window``, or a boot whose
    reason was Watchdog within it.
``connector_preparing_too_long``, ``session_not_started``,
``charging_without_energy``, ``transaction_on_available``
    the stuck sessions: Preparing for ``preparing_for``; an Authorize with no
    transaction for ``start_after``; charging with no meter value, or the
    energy register flat, for ``energy_flat_for``; a transaction open on a
    connector that reports Available for ``available_for``.
``firmware_failed``
    a failed firmware status, or none final ``firmware_timeout`` after the last.
``security_event``
    a critical security event received within ``security_hold``, or
    ``rejected_logins`` connection attempts the gateway refused within
    ``rejected_window``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from workers.alerts.watch import ConnectorWatch, Since, Watch, Windows

__all__ = [
    "QUIRKS",
    "RULES",
    "SEVERITY",
    "Condition",
    "Thresholds",
    "conditions",
    "fingerprint",
    "next_change",
    "probe_due",
]

SEVERITY: dict[str, str] = {
    "station_offline": "warning",
    "connector_faulted": "warning",
    "boot_loop": "critical",
    "connector_preparing_too_long": "info",
    "session_not_started": "info",
    "charging_without_energy": "warning",
    "transaction_on_available": "warning",
    "firmware_failed": "warning",
    "security_event": "critical",
}
RULES = tuple(SEVERITY)

QUIRKS: tuple[tuple[str, frozenset[str]], ...] = (
    # (1.6 errorCode, vendorErrorCode values that mean "no error" with it)
    ("OtherError", frozenset({"", "0", "NoError", "none"})),
)
"""Error codes some stations send when nothing is wrong: they raise nothing.

Seen in the field: a vendor-specific "OtherError" whose vendor code says no
error. A fault counts as such only without a matching entry.
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The rules' durations and counts (from :class:`~workers.alerts.settings.AlertsSettings`)."""

    offline_after: timedelta = timedelta(seconds=300)
    probe_wait: timedelta = timedelta(seconds=30)
    fault_for: timedelta = timedelta(seconds=5)
    boot_loop_boots: int = 3
    boot_loop_window: timedelta = timedelta(seconds=900)
    preparing_for: timedelta = timedelta(seconds=900)
    start_after: timedelta = timedelta(seconds=300)
    energy_flat_for: timedelta = timedelta(seconds=900)
    available_for: timedelta = timedelta(seconds=120)
    firmware_timeout: timedelta = timedelta(hours=2)
    security_hold: timedelta = timedelta(hours=1)
    rejected_logins: int = 5
    rejected_window: timedelta = timedelta(seconds=600)

    @property
    def windows(self) -> Windows:
        return Windows(
            boots=self.boot_loop_window, security=self.security_hold, logins=self.rejected_window
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """A rule's condition holding for a station (or one of its EVSEs or connectors)."""

    rule: str
    evse_id: int | None
    connector_id: int | None
    began: Since  # when the condition began, and the event that told it
    hold: timedelta  # how long it must hold before the alert fires
    summary: str
    details: dict[str, Any]

    def fingerprint(self, station_id: str) -> str:
        return fingerprint(station_id, self.evse_id, self.connector_id, self.rule)


def fingerprint(station_id: str, evse_id: int | None, connector_id: int | None, rule: str) -> str:
    """``<station>/<evse>/<connector>/<rule>``, empty parts for the station as a whole."""
    evse = "" if evse_id is None else str(evse_id)
    connector = "" if connector_id is None else str(connector_id)
    return f"{station_id}/{evse}/{connector}/{rule}"


def probe_due(watch: Watch, now: datetime, limits: Thresholds) -> bool:
    """A connected station silent for ``offline_after`` and not asked since: probe it now."""
    return (
        watch.online
        and watch.heard is not None
        and now >= watch.heard.at + limits.offline_after
        and (watch.probed_at is None or watch.probed_at < watch.heard.at)
    )


def conditions(station_id: str, watch: Watch, now: datetime, limits: Thresholds) -> list[Condition]:
    """Every condition that holds for the station at ``now``."""
    found: list[Condition] = []
    found.extend(_offline(station_id, watch, now, limits))
    found.extend(_faults(watch, limits))
    found.extend(_boot_loop(watch, now, limits))
    found.extend(_stuck(watch, limits))
    found.extend(_firmware(watch, now, limits))
    found.extend(_security(watch, now, limits))
    return found


def next_change(watch: Watch, now: datetime, limits: Thresholds) -> datetime | None:
    """The first instant after ``now`` at which time alone may change :func:`conditions`.

    (A condition's ``hold`` is the lifecycle's to time, not counted here.)
    """
    instants: list[datetime] = []
    if watch.online and watch.heard is not None:
        if watch.probed_at is None or watch.probed_at < watch.heard.at:
            instants.append(watch.heard.at + limits.offline_after)
        else:
            instants.append(watch.probed_at + limits.probe_wait)
    instants.extend(boot.at + limits.boot_loop_window for boot in watch.boots)
    if watch.watchdog is not None:
        instants.append(watch.watchdog.at + limits.boot_loop_window)
    for event in watch.security:
        window = limits.rejected_window if event.type == "LoginRejected" else limits.security_hold
        instants.append(event.since.at + window)
    if watch.firmware is not None and not watch.firmware.final:
        instants.append(watch.firmware.since.at + limits.firmware_timeout)
    later = [at for at in instants if at > now]
    return min(later) if later else None


def _offline(station_id: str, watch: Watch, now: datetime, limits: Thresholds) -> list[Condition]:
    heard, probed = watch.heard, watch.probed_at
    silent = heard is not None and probed is not None and probed >= heard.at
    if not watch.online and watch.offline is not None:
        # silent and probed before the connection ended: unreachable since it was last heard
        began = heard if silent and heard is not None else watch.offline
        return [
            Condition(
                "station_offline",
                None,
                None,
                began,
                limits.offline_after,
                f"{station_id} is offline",
                {"last_seen_at": _text(watch.heard.at if watch.heard else watch.offline.at)},
            )
        ]
    if (
        watch.online
        and silent
        and heard is not None
        and probed is not None
        and now >= probed + limits.probe_wait
    ):
        return [
            Condition(
                "station_offline",
                None,
                None,
                heard,
                timedelta(0),
                f"{station_id} is connected but silent",
                {"last_seen_at": _text(heard.at), "probed_at": _text(probed), "connected": True},
            )
        ]
    return []


def _quirk(connector: ConnectorWatch) -> bool:
    return connector.status != "Faulted" and any(
        connector.error_code == code and (connector.vendor_error_code or "") in harmless
        for code, harmless in QUIRKS
    )


def _place(evse_id: int | None, connector_id: int | None) -> tuple[int | None, int | None]:
    """1.6 connector 0 and problems of no EVSE are the station's own."""
    return (None, None) if not evse_id else (evse_id, connector_id)


def _faults(watch: Watch, limits: Thresholds) -> list[Condition]:
    places: dict[tuple[int | None, int | None], tuple[Since, list[dict[str, Any]]]] = {}

    def add(place: tuple[int | None, int | None], since: Since, what: dict[str, Any]) -> None:
        began, causes = places.get(place, (since, []))
        causes.append(what)
        places[place] = (min(began, since, key=lambda s: s.at), causes)

    for connector in watch.connectors:
        if connector.fault is not None and not _quirk(connector):
            what = {"status": connector.status, "error_code": connector.error_code}
            if connector.vendor_error_code:
                what["vendor_error_code"] = connector.vendor_error_code
            if connector.info:
                what["info"] = connector.info
            add(_place(connector.evse_id, connector.connector_id), connector.fault, what)
    for problem in watch.problems:
        what = {"component": problem.component, "variable": problem.variable}
        if problem.tech_code:
            what["tech_code"] = problem.tech_code
        if problem.tech_info:
            what["tech_info"] = problem.tech_info
        add(_place(problem.evse_id, problem.connector_id), problem.since, what)
    return [
        Condition(
            "connector_faulted",
            evse,
            connector,
            began,
            limits.fault_for,
            "the station reports a fault"
            if evse is None
            else f"EVSE {evse}"
            + ("" if connector is None else f" connector {connector}")
            + " reports a fault",
            {"causes": causes},
        )
        for (evse, connector), (began, causes) in sorted(
            places.items(), key=lambda item: (item[0][0] or 0, item[0][1] or 0)
        )
    ]


def _boot_loop(watch: Watch, now: datetime, limits: Thresholds) -> list[Condition]:
    window_start = now - limits.boot_loop_window
    boots = [boot for boot in watch.boots if boot.at > window_start]
    watchdog = watch.watchdog if watch.watchdog and watch.watchdog.at > window_start else None
    if len(boots) < limits.boot_loop_boots and watchdog is None:
        return []
    began = boots[-limits.boot_loop_boots] if len(boots) >= limits.boot_loop_boots else watchdog
    assert began is not None
    return [
        Condition(
            "boot_loop",
            None,
            None,
            began,
            timedelta(0),
            "the station keeps rebooting"
            if watchdog is None
            else "the station rebooted after a watchdog reset",
            {"boots": len(boots), "watchdog": watchdog is not None},
        )
    ]


def _stuck(watch: Watch, limits: Thresholds) -> list[Condition]:
    found: list[Condition] = []
    status = {c.evse_id: c for c in watch.connectors}
    for connector in watch.connectors:
        if connector.status == "Preparing":
            found.append(
                Condition(
                    "connector_preparing_too_long",
                    connector.evse_id,
                    connector.connector_id,
                    connector.since,
                    limits.preparing_for,
                    "a connector has been Preparing for long",
                    {"since": _text(connector.since.at)},
                )
            )
    if watch.authorized is not None and not watch.transactions:
        found.append(
            Condition(
                "session_not_started",
                None,
                None,
                watch.authorized,
                limits.start_after,
                "a driver was authorized but no transaction started",
                {"authorized_at": _text(watch.authorized.at)},
            )
        )
    for transaction in watch.transactions:
        plug = None if transaction.evse_id is None else status.get(transaction.evse_id)
        charging = transaction.charging_state == "Charging" or (
            transaction.charging_state is None and plug is not None and plug.status == "Charging"
        )
        if charging:
            moved = transaction.energy_moved_at or transaction.started.at
            if plug is not None and plug.status == "Charging":
                moved = max(moved, plug.since.at)
            found.append(
                Condition(
                    "charging_without_energy",
                    transaction.evse_id,
                    None,
                    Since(moved, transaction.started.position),
                    limits.energy_flat_for,
                    "a transaction charges but its energy does not move",
                    {
                        "transaction_id": transaction.transaction_id,
                        "energy_wh": transaction.energy_wh,
                    },
                )
            )
        if plug is not None and plug.status == "Available":
            found.append(
                Condition(
                    "transaction_on_available",
                    transaction.evse_id,
                    None,
                    max(plug.since, transaction.started, key=lambda s: s.at),
                    limits.available_for,
                    "a transaction is open on an Available connector",
                    {"transaction_id": transaction.transaction_id},
                )
            )
    return found


def _firmware(watch: Watch, now: datetime, limits: Thresholds) -> list[Condition]:
    firmware = watch.firmware
    if firmware is None:
        return []
    if firmware.failed:
        summary, details = f"a firmware update failed: {firmware.status}", {}
    elif not firmware.final and now >= firmware.since.at + limits.firmware_timeout:
        summary, details = f"a firmware update is stuck at {firmware.status}", {"timed_out": True}
    else:
        return []
    return [
        Condition(
            "firmware_failed",
            None,
            None,
            firmware.since,
            timedelta(0),
            summary,
            {"status": firmware.status, **details},
        )
    ]


def _security(watch: Watch, now: datetime, limits: Thresholds) -> list[Condition]:
    critical = [
        s
        for s in watch.security
        if s.type != "LoginRejected" and s.since.at > now - limits.security_hold
    ]
    logins = [
        s
        for s in watch.security
        if s.type == "LoginRejected" and s.since.at > now - limits.rejected_window
    ]
    causes = list(critical)
    if len(logins) >= limits.rejected_logins:
        causes.extend(logins)
    if not causes:
        return []
    types = sorted({s.type for s in causes})
    return [
        Condition(
            "security_event",
            None,
            None,
            min((s.since for s in causes), key=lambda s: s.at),
            timedelta(0),
            "security events: " + ", ".join(types),
            {"types": types, "rejected_logins": len(logins)},
        )
    ]


def _text(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
