"""The alerts logic in memory: each rule raises once, clears once, and never storms."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelopes import StationEvent
from tests.monitoring.driver import (
    STATION,
    Driver,
    at,
    boot,
    call,
    connection,
    heartbeat,
    quiet,
    status16,
)


def test_a_faulted_connector_raises_after_its_hold_and_clears_when_available() -> None:
    driver = quiet()
    driver.feed(connection(0, True), status16(10, "Faulted", "GroundFailure"))
    assert driver.alerts == []  # pending for fault_for (5 s)
    driver.feed(status16(12, "Faulted", "GroundFailure"))  # the station says it again
    driver.until(at(20))
    ((raised),) = driver.alerts
    assert (raised.kind, raised.state, raised.evse_id, raised.raised_at) == (
        "connector_faulted",
        "raised",
        1,
        at(15),
    )
    assert raised.fingerprint == f"{STATION}/1//connector_faulted"
    assert raised.details["causes"][0]["error_code"] == "GroundFailure"
    driver.feed(status16(100, "Available"))
    assert driver.states() == [("connector_faulted", "raised"), ("connector_faulted", "cleared")]
    assert driver.alerts[1].alert_id == raised.alert_id
    assert driver.alerts[1].cleared_at == at(100)


def test_a_fault_gone_before_its_hold_leaves_no_trace() -> None:
    driver = quiet()
    driver.feed(status16(0, "Faulted"), status16(2, "Available"))
    driver.until(at(100))
    assert driver.alerts == []


def test_a_vendor_quirk_is_not_a_fault() -> None:
    driver = quiet()
    driver.feed(
        call(
            0,
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "OtherError",
                "status": "Available",
                "vendorErrorCode": "0",
            },
        )
    )
    driver.until(at(100))
    assert driver.alerts == []


def test_a_disconnected_station_raises_after_offline_after_and_clears_when_back() -> None:
    driver = Driver()
    driver.feed(connection(0, True), connection(50, False))
    driver.until(at(349))
    assert driver.alerts == []
    driver.until(at(350))
    assert driver.states() == [("station_offline", "raised")]
    driver.feed(connection(400, True, "conn-2"))
    assert driver.states() == [("station_offline", "raised")]  # firing for 60 s at least
    driver.until(at(410))
    assert driver.states() == [("station_offline", "raised"), ("station_offline", "cleared")]
    assert driver.alerts[1].cleared_at == at(410)  # firing for min_firing at least


def test_a_reconnect_within_offline_after_raises_nothing() -> None:
    driver = Driver()
    driver.feed(connection(0, True), connection(50, False), connection(60, True, "conn-2"))
    driver.until(at(355))  # past 50 + offline_after: the reconnect counted
    assert driver.alerts == []


def test_a_silent_connected_station_is_probed_before_it_is_offline() -> None:
    driver = Driver()
    driver.feed(connection(0, True), heartbeat(10))
    driver.until(at(309))
    assert driver.probes == []
    driver.until(at(310))
    assert driver.probes == [at(310)]
    driver.until(at(339))
    assert driver.alerts == []
    driver.until(at(340))
    assert driver.states() == [("station_offline", "raised")]
    assert driver.alerts[0].details["connected"] is True
    driver.feed(heartbeat(500))
    assert driver.states()[-1] == ("station_offline", "cleared")


def test_a_probe_answered_raises_nothing() -> None:
    driver = Driver()
    driver.feed(connection(0, True), heartbeat(10))
    driver.until(at(310))
    driver.feed(heartbeat(312))  # the TriggerMessage's heartbeat
    driver.until(at(500))
    assert driver.alerts == [] and driver.probes == [at(310)]


def test_a_late_disconnect_of_a_replaced_connection_changes_nothing() -> None:
    driver = Driver()
    driver.feed(connection(0, True, "old"), connection(5, True, "new"), connection(6, False, "old"))
    driver.feed(heartbeat(7))  # on conn-1: not the one that counts
    assert driver.state is not None and driver.state.watch.online


def test_three_boots_in_the_window_raise_a_boot_loop_that_clears_as_they_age() -> None:
    driver = quiet()
    driver.feed(boot(0), boot(100), boot(200))
    assert driver.states() == [("boot_loop", "raised")]
    driver.until(at(900))  # the first boot leaves the window
    assert driver.states() == [("boot_loop", "raised"), ("boot_loop", "cleared")]


def test_a_watchdog_boot_raises_at_once() -> None:
    driver = quiet()
    driver.feed(
        call(
            0,
            "BootNotification",
            {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "Watchdog"},
            "2.0.1",
        )
    )
    assert driver.states() == [("boot_loop", "raised")]
    assert driver.alerts[0].severity == "critical"


def test_a_failed_firmware_update_raises_and_a_good_one_clears() -> None:
    driver = quiet()
    driver.feed(call(0, "FirmwareStatusNotification", {"status": "Downloading"}))
    driver.feed(call(10, "FirmwareStatusNotification", {"status": "DownloadFailed"}))
    assert driver.states() == [("firmware_failed", "raised")]
    driver.feed(call(100, "FirmwareStatusNotification", {"status": "Installed"}))
    assert driver.states()[-1] == ("firmware_failed", "cleared")


def test_a_firmware_update_with_no_final_status_times_out() -> None:
    driver = quiet()
    driver.feed(call(0, "FirmwareStatusNotification", {"status": "Installing"}))
    driver.until(at(7200))
    assert driver.states() == [("firmware_failed", "raised")]
    assert driver.alerts[0].details["timed_out"] is True


def test_critical_security_events_raise_and_clear_after_the_hold() -> None:
    driver = quiet()
    stamp = "2026-03-01T11:00:00Z"  # queued while offline: received now, happened before
    driver.feed(
        call(0, "SecurityEventNotification", {"type": "InvalidMessages", "timestamp": stamp})
    )
    assert driver.alerts == []  # not critical
    driver.feed(
        call(
            1, "SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": stamp}
        )
    )
    assert driver.states() == [("security_event", "raised")]
    driver.until(at(1 + 3600 + 1))
    assert driver.states()[-1] == ("security_event", "cleared")


def test_rejected_logins_above_the_rate_raise_a_security_event() -> None:
    import uuid

    import msgspec

    from contracts.envelopes import RejectedPayload, StationEvent

    def rejected(seconds: float) -> StationEvent:
        return StationEvent(
            station_id=STATION,
            kind="rejected",
            message_id=uuid.uuid4().hex,
            ocpp_version="1.6",
            gateway_id="gw-1",
            connection_id=uuid.uuid4().hex,
            received_at=at(seconds),
            payload=msgspec.Raw(
                msgspec.json.encode(
                    RejectedPayload(
                        remote_address="10.0.0.9", reason="bad_password", http_status=401
                    )
                )
            ),
        )

    driver = quiet()
    driver.feed(*[rejected(i) for i in range(4)])
    assert driver.alerts == []
    driver.feed(rejected(5))
    assert driver.states() == [("security_event", "raised")]
    assert driver.alerts[0].details["rejected_logins"] == 5


def test_stuck_sessions_preparing_and_charging_without_energy() -> None:
    driver = quiet()
    driver.feed(status16(0, "Preparing"))
    driver.until(at(900))
    assert driver.states() == [("connector_preparing_too_long", "raised")]
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-03-01T12:15:00Z"}
    driver.feed(call(901, "StartTransaction", start), status16(902, "Charging"))
    driver.until(at(960))  # firing for min_firing at least
    assert driver.states()[-1] == ("connector_preparing_too_long", "cleared")
    driver.until(at(902 + 900))
    assert driver.states()[-1] == ("charging_without_energy", "raised")
    meter = {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [{"timestamp": "2026-03-01T12:45:00Z", "sampledValue": [{"value": "500"}]}],
    }
    driver.feed(call(1900, "MeterValues", meter))
    assert driver.states()[-1] == ("charging_without_energy", "cleared")
    driver.feed(status16(1950, "Available"))  # the transaction never stopped
    driver.until(at(1950 + 120))
    assert driver.states()[-1] == ("transaction_on_available", "raised")
    driver.feed(
        call(
            2100,
            "StopTransaction",
            {"transactionId": 1, "meterStop": 600, "timestamp": "2026-03-01T12:35:00Z"},
        )
    )
    driver.until(at(2130))  # firing for min_firing at least
    assert driver.states()[-1] == ("transaction_on_available", "cleared")


def test_a_flapping_connector_is_held_as_one_alert() -> None:
    driver = quiet()
    t = 0.0
    for _ in range(3):  # raised and cleared twice, the third raise is flapping
        driver.feed(status16(t, "Faulted"))
        driver.until(at(t + 10))
        driver.feed(status16(t + 100, "Available"))
        t += 200
    assert [a.flapping for a in driver.alerts if a.state == "raised"] == [False, False, True]
    assert driver.states()[-1] == ("connector_faulted", "raised")  # held: gone only 100 s
    for _ in range(5):  # it keeps flapping: nothing new is written
        driver.feed(status16(t, "Faulted"), status16(t + 100, "Available"))
        t += 200
    assert len(driver.alerts) == 5
    driver.until(at(t + 1800))
    assert driver.states()[-1] == ("connector_faulted", "cleared")


def test_events_handled_again_after_a_crash_write_the_same_alerts() -> None:
    """A crash after a checkpoint: its states come back and the events after it are redone."""
    events = [
        connection(0, True),
        status16(10, "Faulted"),
        status16(20, "Faulted"),
        status16(200, "Available"),
    ]
    driver = quiet()
    driver.feed(*events[:2], offsets=[0, 1])
    checkpoint, written = driver.state, len(driver.alerts)
    driver.feed(*events[2:], offsets=[2, 3])
    before_crash = driver.alerts[written:]
    driver.state, driver.alerts = checkpoint, []
    driver.feed(*events[2:], offsets=[2, 3])
    assert [a.state for a in before_crash] == ["raised", "cleared"]
    assert driver.alerts == before_crash  # byte for byte: ids and instants from the events


_steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400),
        st.sampled_from(
            ["faulted", "available", "disconnect", "connect", "heartbeat", "boot", "preparing"]
        ),
        st.booleans(),  # delivered twice
    ),
    max_size=30,
)


def _event(t: float, what: str, connection_id: str) -> StationEvent:
    if what in ("connect", "disconnect"):
        return connection(t, what == "connect", connection_id)
    event = {
        "faulted": lambda: status16(t, "Faulted", "GroundFailure"),
        "available": lambda: status16(t, "Available"),
        "heartbeat": lambda: heartbeat(t),
        "boot": lambda: boot(t),
        "preparing": lambda: status16(t, "Preparing"),
    }[what]()
    return msgspec.structs.replace(event, connection_id=connection_id)  # the one that counts


def _events(steps: list[tuple[int, str, bool]]) -> list[tuple[StationEvent, bool]]:
    events, t, connection_number = [], 0, 0
    for gap, what, twice in steps:
        t += gap
        connection_number += what == "connect"
        events.append((_event(t, what, f"conn-{connection_number}"), twice))
    return events


@settings(max_examples=150, deadline=None)
@given(_steps)
def test_duplicates_change_nothing_and_every_open_alert_clears_when_all_is_well(
    steps: list,
) -> None:
    events = _events(steps)
    once, twice = Driver(), Driver()
    for offset, (event, again) in enumerate(events):
        once.feed(event, offsets=[offset])
        twice.feed(event, offsets=[offset])
        if again:  # the station repeats itself: the same message, later offset, same content
            twice.feed(event, offsets=[10_000 + offset])
    strip = lambda d: [(a.fingerprint, a.state, a.raised_at) for a in d.alerts]  # noqa: E731
    assert strip(once) == strip(twice)
    once.open()  # at most one open per fingerprint, every clear matches its raise
    end = (events[-1][0].received_at if events else at(0)) - at(0)
    seconds = end.total_seconds()
    once.feed(connection(seconds + 1, True, "conn-final"))
    well = [status16(seconds + 2, "Available")]
    well += [heartbeat(seconds + beat) for beat in range(3, 3 * 3600, 200)]
    for event in well:  # all is well for three hours
        once.feed(msgspec.structs.replace(event, connection_id="conn-final"))
    assert once.open() == {}


@settings(max_examples=150, deadline=None)
@given(_steps, st.integers(min_value=0, max_value=30))
def test_a_crash_anywhere_replays_into_the_same_alerts(steps: list, cut: int) -> None:
    """Restored at any checkpoint, the events after it are handled into the same records."""
    events = [event for event, _ in _events(steps)]
    cut = min(cut, len(events))
    driver = Driver()
    driver.feed(*events[:cut], offsets=list(range(cut)))
    checkpoint, written = driver.state, len(driver.alerts)
    rest = list(range(cut, len(events)))
    driver.feed(*events[cut:], offsets=rest)
    before_crash = driver.alerts[written:]
    driver.state, driver.alerts = checkpoint, []
    driver.feed(*events[cut:], offsets=rest)
    assert driver.alerts == before_crash
