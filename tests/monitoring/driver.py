"""The alerts logic driven in memory the way the runtime drives it: events, then deadlines."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from contracts.envelopes import (
    Alert,
    ConnectedPayload,
    DisconnectedPayload,
    StationEvent,
    decode_alert,
    decode_command,
)
from contracts.topics import ALERTS, COMMANDS
from tests.workers.harness import T0
from workers.alerts.lifecycle import Lifecycle
from workers.alerts.logic import AlertsLogic, StationAlerts
from workers.alerts.rules import Thresholds
from workers.runtime.logic import Position

STATION = "CP-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(
    seconds: float, action: str, payload: dict[str, Any], version: str = "1.6"
) -> StationEvent:
    return StationEvent(
        station_id=STATION,
        kind="call",
        message_id=uuid.uuid4().hex,
        action=action,
        ocpp_version=version,  # type: ignore[arg-type]
        gateway_id="gw-1",
        connection_id="conn-1",
        received_at=at(seconds),
        payload=msgspec.Raw(orjson.dumps(payload)),
    )


def connection(
    seconds: float, connected: bool, connection_id: str = "conn-1", version: str = "1.6"
) -> StationEvent:
    payload: Any = (
        ConnectedPayload(
            remote_address="10.0.0.1", subprotocol=f"ocpp{version}", security_profile=1
        )
        if connected
        else DisconnectedPayload(close_code=1006, connected_seconds=1.0)
    )
    return StationEvent(
        station_id=STATION,
        kind="connected" if connected else "disconnected",
        message_id=uuid.uuid4().hex,
        ocpp_version=version,  # type: ignore[arg-type]
        gateway_id="gw-1",
        connection_id=connection_id,
        received_at=at(seconds),
        payload=msgspec.Raw(msgspec.json.encode(payload)),
    )


def status16(
    seconds: float, status: str, error: str = "NoError", connector: int = 1
) -> StationEvent:
    return call(
        seconds,
        "StatusNotification",
        {"connectorId": connector, "errorCode": error, "status": status},
    )


def boot(seconds: float) -> StationEvent:
    return call(seconds, "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})


def heartbeat(seconds: float) -> StationEvent:
    return call(seconds, "Heartbeat", {})


def quiet() -> Driver:
    """A driver whose station is never offline: for the rules that are not about it."""
    return Driver(thresholds=Thresholds(offline_after=timedelta(days=30)))


@dataclasses.dataclass
class Driver:
    """One station's alerts state, fed events at their offsets and deadlines as they pass."""

    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    lifecycle: Lifecycle = dataclasses.field(default_factory=Lifecycle)
    state: StationAlerts | None = None
    alerts: list[Alert] = dataclasses.field(default_factory=list)
    probes: list[datetime] = dataclasses.field(default_factory=list)
    offset: int = 0

    def __post_init__(self) -> None:
        self.logic = AlertsLogic(
            source="/csms/workers/alerts/test", thresholds=self.thresholds, lifecycle=self.lifecycle
        )

    def feed(self, *events: StationEvent, offsets: list[int] | None = None) -> None:
        """Handle ``events`` (each at its own offset, or those given), deadlines first."""
        for index, event in enumerate(events):
            self.until(event.received_at)
            offset = offsets[index] if offsets else self.offset
            self.offset = max(self.offset, offset) + 1
            decision = self.logic.decide(
                event, self.state, self.logic.initial_partition(), Position(0, offset)
            )
            self._take(decision)

    def until(self, now: datetime) -> None:
        """Let every deadline up to ``now`` pass."""
        while self.state is not None and self.state.due is not None and self.state.due <= now:
            self._take(
                self.logic.expire(
                    STATION, self.state, self.logic.initial_partition(), self.state.due
                )
            )

    def _take(self, decision: Any) -> None:
        self.state = decision.station
        for output in decision.outputs:
            if output.topic == ALERTS.name:
                self.alerts.append(decode_alert(output.value))
            elif output.topic == COMMANDS.name:
                self.probes.append(decode_command(output.value).created_at)

    def states(self) -> list[tuple[str, str]]:
        return [(a.kind, a.state) for a in self.alerts]

    def open(self) -> dict[str, Alert]:
        """The raised and not cleared alerts by fingerprint (at most one each: asserted)."""
        found: dict[str, Alert] = {}
        for alert in self.alerts:
            if alert.state == "raised":
                assert alert.fingerprint not in found, f"two open alerts for {alert.fingerprint}"
                found[alert.fingerprint] = alert
            else:
                assert found.pop(alert.fingerprint).alert_id == alert.alert_id
        return found
