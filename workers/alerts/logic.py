"""The alerts worker's decisions: one event (or a deadline), the station's alerts.

:class:`AlertsLogic` is the :class:`~workers.runtime.logic.Logic` the runtime
runs. For an event it reads the facts (:mod:`workers.status.facts`), folds
them into the station's :class:`~workers.alerts.watch.Watch`, asks the rules
what holds (:mod:`workers.alerts.rules`) and lets the lifecycle decide what
to raise and clear (:mod:`workers.alerts.lifecycle`). For a deadline it does
the same with the wall clock and no new fact; a connected station silent for
too long gets a TriggerMessage Heartbeat (a command on ``ocpp.commands.v1``)
before ``station_offline`` may fire.

The station's state is :class:`StationAlerts`; a decision that changes
nothing returns the very same object, so the runtime writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from contracts.envelopes import (
    EventKind,
    StationCommand,
    StationEvent,
    encode_alert,
    encode_command,
    record_key,
)
from contracts.headers import alert_headers, command_headers
from contracts.ocpp import VERSIONS, actions
from contracts.ocpp.validation import PayloadError, UnknownAction
from contracts.topics import ALERTS, COMMANDS
from workers.alerts.lifecycle import Fired, Lifecycle, Tracked, reconcile
from workers.alerts.rules import Thresholds, conditions, next_change, probe_due
from workers.alerts.watch import Watch, observe
from workers.runtime.logic import Decision, Output, Position, RecordRejected
from workers.status.facts import facts

__all__ = ["AlertsLogic", "AlertsPartition", "StationAlerts"]

_EVERY_ACTION = frozenset(name for version in VERSIONS for name in actions(version))


class StationAlerts(msgspec.Struct, frozen=True, kw_only=True):
    """A station's watch, its pending and firing alerts, and when to look again."""

    watch: Watch = Watch()
    alerts: tuple[Tracked, ...] = ()
    fired: tuple[Fired, ...] = ()
    due: datetime | None = None


class AlertsPartition(msgspec.Struct, frozen=True):
    """The alerts worker keeps nothing per partition."""


_NOTHING = StationAlerts()
_PARTITION = AlertsPartition()


class AlertsLogic:
    """Rules, alert lifecycles and probes, without I/O."""

    kinds: frozenset[EventKind] = frozenset({"call", "connected", "disconnected", "rejected"})
    actions = _EVERY_ACTION  # any call says the station is alive
    station_type = StationAlerts
    partition_type = AlertsPartition

    def __init__(
        self,
        *,
        source: str,
        thresholds: Thresholds,
        lifecycle: Lifecycle,
        on_transition: Callable[[str, str], None] = lambda rule, to: None,
    ) -> None:
        self.source = source
        self.thresholds = thresholds
        self.lifecycle = lifecycle
        self.on_transition = on_transition  # (rule, pending|firing|resolved): for metrics

    def initial_partition(self) -> AlertsPartition:
        return _PARTITION

    def decide(
        self,
        event: StationEvent,
        station: StationAlerts | None,
        partition: AlertsPartition,
        position: Position,
    ) -> Decision[StationAlerts, AlertsPartition]:
        try:
            told = facts(event)
        except (PayloadError, UnknownAction, msgspec.DecodeError) as exc:
            raise RecordRejected(str(exc)) from exc
        state = station or _NOTHING
        watch = state.watch
        where = f"{position.partition}:{position.offset}"
        for fact in told:
            watch = observe(watch, fact, where, self.thresholds.windows)
        return self._judge(event.station_id, station, state, watch, event.received_at, partition)

    def deadline(self, station: StationAlerts) -> datetime | None:
        return station.due

    def expire(
        self, station_id: str, station: StationAlerts, partition: AlertsPartition, now: datetime
    ) -> Decision[StationAlerts, AlertsPartition]:
        return self._judge(station_id, station, station, station.watch, now, partition)

    def _judge(
        self,
        station_id: str,
        given: StationAlerts | None,
        state: StationAlerts,
        watch: Watch,
        now: datetime,
        partition: AlertsPartition,
    ) -> Decision[StationAlerts, AlertsPartition]:
        outputs: list[Output] = []
        if probe_due(watch, now, self.thresholds):
            outputs.append(self._probe(station_id, watch, now))
            watch = msgspec.structs.replace(watch, probed_at=now)
        holding = conditions(station_id, watch, now, self.thresholds)
        result = reconcile(
            station_id, watch.gateway_id, state.alerts, state.fired, holding, now, self.lifecycle
        )
        changes = [at for at in (next_change(watch, now, self.thresholds), result.due) if at]
        new = StationAlerts(
            watch=watch,
            alerts=result.tracked,
            fired=result.fired,
            due=min(changes) if changes else None,
        )
        before = {tracked.fingerprint for tracked in state.alerts}
        for tracked in result.tracked:
            if tracked.fingerprint not in before:
                self.on_transition(tracked.rule, "pending")
        for alert in result.records:
            self.on_transition(alert.kind, "firing" if alert.state == "raised" else "resolved")
            outputs.append(
                Output(
                    ALERTS.name,
                    record_key(station_id),
                    encode_alert(alert),
                    alert_headers(alert, source=self.source),
                )
            )
        if new == state:
            return Decision("unchanged", given, partition, outputs=tuple(outputs))
        states = {alert.state for alert in result.records}
        outcome = (
            "raised"
            if "raised" in states
            else "cleared"
            if states
            else "probed"
            if outputs
            else "observed"
        )
        return Decision(outcome, new, partition, outputs=tuple(outputs))

    def _probe(self, station_id: str, watch: Watch, now: datetime) -> Output:
        """TriggerMessage Heartbeat: a silent station that still answers is not offline."""
        assert watch.heard is not None
        command = StationCommand(
            command_id=f"alerts:probe:{station_id}:{watch.heard.position}",
            station_id=station_id,
            kind="call",
            action="TriggerMessage",
            ocpp_version=watch.ocpp_version,  # type: ignore[arg-type]
            created_at=now,
            expires_at=now + self.thresholds.probe_wait,
            timeout_s=self.thresholds.probe_wait.total_seconds(),
            source=self.source,
            payload=msgspec.Raw(b'{"requestedMessage":"Heartbeat"}'),
        )
        return Output(
            COMMANDS.name, record_key(station_id), encode_command(command), command_headers(command)
        )
