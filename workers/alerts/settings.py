"""The alerts worker's settings: the shared worker settings, the rules' and the lifecycle's."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from contracts.settings import setting
from workers.alerts.lifecycle import Lifecycle
from workers.alerts.rules import Thresholds
from workers.runtime.settings import WorkerSettings

__all__ = ["AlertsSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlertsSettings:
    worker: WorkerSettings = dataclasses.field(default_factory=WorkerSettings)

    offline_after: float = setting(
        300.0,
        "Seconds a station may be disconnected, or connected and silent, before station_offline "
        "fires (a silent one is first sent TriggerMessage Heartbeat)",
        env="CSMS_ALERTS_OFFLINE_AFTER",
    )
    probe_wait: float = setting(
        30.0,
        "Seconds a silent connected station has to answer the TriggerMessage Heartbeat",
        env="CSMS_ALERTS_PROBE_WAIT",
    )
    fault_for: float = setting(
        5.0,
        "Seconds a connector must report a fault before connector_faulted fires",
        env="CSMS_ALERTS_FAULT_FOR",
    )
    boot_loop_boots: int = setting(
        3,
        "Boots within CSMS_ALERTS_BOOT_LOOP_WINDOW that fire boot_loop",
        env="CSMS_ALERTS_BOOT_LOOP_BOOTS",
    )
    boot_loop_window: float = setting(
        900.0,
        "Seconds over which boots are counted for boot_loop (a Watchdog boot fires it alone)",
        env="CSMS_ALERTS_BOOT_LOOP_WINDOW",
    )
    preparing_for: float = setting(
        900.0,
        "Seconds a connector may stay Preparing before connector_preparing_too_long fires",
        env="CSMS_ALERTS_PREPARING_FOR",
    )
    start_after: float = setting(
        300.0,
        "Seconds after an Authorize without a transaction before session_not_started fires",
        env="CSMS_ALERTS_START_AFTER",
    )
    energy_flat_for: float = setting(
        900.0,
        "Seconds a charging transaction may go without its energy register moving (or without "
        "meter values) before charging_without_energy fires",
        env="CSMS_ALERTS_ENERGY_FLAT_FOR",
    )
    available_for: float = setting(
        120.0,
        "Seconds a transaction may stay open on a connector that reports Available before "
        "transaction_on_available fires",
        env="CSMS_ALERTS_AVAILABLE_FOR",
    )
    firmware_timeout: float = setting(
        7200.0,
        "Seconds after a firmware status that is not final (Downloading, Installing...) without "
        "a next one before firmware_failed fires",
        env="CSMS_ALERTS_FIRMWARE_TIMEOUT",
    )
    security_hold: float = setting(
        3600.0,
        "Seconds a critical security event keeps security_event firing after it was received",
        env="CSMS_ALERTS_SECURITY_HOLD",
    )
    rejected_logins: int = setting(
        5,
        "Connection attempts the gateway refused (wrong password, wrong profile...) within "
        "CSMS_ALERTS_REJECTED_WINDOW that fire security_event",
        env="CSMS_ALERTS_REJECTED_LOGINS",
    )
    rejected_window: float = setting(
        600.0,
        "Seconds over which refused connection attempts are counted",
        env="CSMS_ALERTS_REJECTED_WINDOW",
    )
    min_firing: float = setting(
        60.0,
        "Seconds an alert stays raised at least, however soon its condition is gone",
        env="CSMS_ALERTS_MIN_FIRING",
    )
    flap_count: int = setting(
        3,
        "Raises of one fingerprint within CSMS_ALERTS_FLAP_WINDOW that make it flapping",
        env="CSMS_ALERTS_FLAP_COUNT",
    )
    flap_window: float = setting(
        3600.0, "Seconds over which raises are counted for flapping", env="CSMS_ALERTS_FLAP_WINDOW"
    )
    flap_hold: float = setting(
        1800.0,
        "Seconds a flapping alert's condition must stay gone before it is cleared",
        env="CSMS_ALERTS_FLAP_HOLD",
    )

    def thresholds(self) -> Thresholds:
        return Thresholds(
            offline_after=timedelta(seconds=self.offline_after),
            probe_wait=timedelta(seconds=self.probe_wait),
            fault_for=timedelta(seconds=self.fault_for),
            boot_loop_boots=self.boot_loop_boots,
            boot_loop_window=timedelta(seconds=self.boot_loop_window),
            preparing_for=timedelta(seconds=self.preparing_for),
            start_after=timedelta(seconds=self.start_after),
            energy_flat_for=timedelta(seconds=self.energy_flat_for),
            available_for=timedelta(seconds=self.available_for),
            firmware_timeout=timedelta(seconds=self.firmware_timeout),
            security_hold=timedelta(seconds=self.security_hold),
            rejected_logins=self.rejected_logins,
            rejected_window=timedelta(seconds=self.rejected_window),
        )

    def lifecycle(self) -> Lifecycle:
        return Lifecycle(
            min_firing=timedelta(seconds=self.min_firing),
            flap_count=self.flap_count,
            flap_window=timedelta(seconds=self.flap_window),
            flap_hold=timedelta(seconds=self.flap_hold),
        )
