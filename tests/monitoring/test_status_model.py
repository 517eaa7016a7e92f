"""The status record folded from events: what it shows, when it is written, and duplicates."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelopes import (
    ConnectedPayload,
    DisconnectedPayload,
    StationEvent,
    StationStatus,
    decode_station_status,
    encode_connection_payload,
)
from workers.runtime.logic import Position
from workers.status.logic import StatusLogic
from workers.status.model import StationState

T0 = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
STATION = "CP-1"


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def call(
    action: str,
    payload: dict[str, Any],
    at: float,
    *,
    version: str = "1.6",
    connection: str = "c-1",
) -> StationEvent:
    return StationEvent(
        station_id=STATION,
        kind="call",
        message_id=uuid.uuid4().hex,
        action=action,
        ocpp_version=version,  # type: ignore[arg-type]
        gateway_id="gw-1",
        connection_id=connection,
        received_at=T0 + timedelta(seconds=at),
        payload=msgspec.Raw(orjson.dumps(payload)),
    )


def lifecycle(
    kind: str, at: float, *, connection: str = "c-1", gateway: str = "gw-1"
) -> StationEvent:
    payload = (
        ConnectedPayload(remote_address="192.0.2.1", subprotocol="ocpp1.6", security_profile=0)
        if kind == "connected"
        else DisconnectedPayload(close_code=1006, connected_seconds=1.0)
    )
    return StationEvent(
        station_id=STATION,
        kind=kind,  # type: ignore[arg-type]
        message_id=uuid.uuid4().hex,
        ocpp_version="1.6",
        gateway_id=gateway,
        connection_id=connection,
        received_at=T0 + timedelta(seconds=at),
        payload=encode_connection_payload(payload),
    )


def status16(connector: int, status: str, at: float, error: str = "NoError") -> StationEvent:
    body = {"connectorId": connector, "errorCode": error, "status": status, "timestamp": stamp(at)}
    return call("StatusNotification", body, at)


def heartbeat(at: float, **kw: Any) -> StationEvent:
    return call("Heartbeat", {}, at, **kw)


class Fold:
    """One station's events through the logic, as the runtime would hand them."""

    def __init__(self, heard_step: float = 600.0, meter_step: float = 60.0) -> None:
        self.logic = StatusLogic(source="/test", heard_step=heard_step, meter_step=meter_step)
        self.state: StationState | None = None
        self.records: list[StationStatus] = []
        self.offset = 0

    def __call__(self, *events: StationEvent) -> Fold:
        for event in events:
            self.offset += 1
            decision = self.logic.decide(event, self.state, NO_PARTITION, Position(0, self.offset))
            self.state = decision.station
            for output in decision.outputs:
                record = decode_station_status(output.value)
                assert record is not None
                self.records.append(record)
        return self

    @property
    def last(self) -> StationStatus:
        return self.records[-1]


NO_PARTITION = StatusLogic(source="/test").initial_partition()


def test_connect_boot_fault_and_recover_each_write_one_record() -> None:
    fold = Fold()(lifecycle("connected", 0))
    assert (fold.last.online, fold.last.connection_id, fold.last.gateway_id) == (
        True,
        "c-1",
        "gw-1",
    )
    assert fold.last.connected_since == T0
    boot = {"chargePointVendor": "Alfen", "chargePointModel": "NG9", "firmwareVersion": "6.4"}
    fold(call("BootNotification", boot, 1))
    assert fold.last.boot is not None
    assert (fold.last.boot.vendor, fold.last.boot.firmware_version) == ("Alfen", "6.4")
    fold(status16(0, "Available", 2), status16(1, "Available", 2))
    fold(status16(1, "Faulted", 3, "GroundFailure"))
    faulted = fold.last.connectors[1]
    assert (faulted.evse_id, faulted.status, faulted.error_code) == (1, "Faulted", "GroundFailure")
    assert faulted.since == T0 + timedelta(seconds=3)
    fold(status16(1, "Available", 4))
    assert [c.status for c in fold.last.connectors] == ["Available", "Available"]
    assert len(fold.records) == 6
    fold(status16(1, "Available", 5))  # said again: nothing new
    assert len(fold.records) == 6


def test_heartbeats_move_last_heard_in_steps_and_a_disconnect_gives_the_exact_time() -> None:
    fold = Fold(heard_step=600)(lifecycle("connected", 0))
    for minute in range(1, 31):
        fold(heartbeat(minute * 60))
    # heard at 0; written again at 600, 1200, 1800 s
    assert [r.last_heard_at for r in fold.records] == [
        T0 + timedelta(seconds=s) for s in (0, 600, 1200, 1800)
    ]
    fold(heartbeat(1830), lifecycle("disconnected", 1850))
    assert (fold.last.online, fold.last.disconnected_at) == (False, T0 + timedelta(seconds=1850))
    assert fold.last.last_heard_at == T0 + timedelta(seconds=1830)
    assert fold.last.updated_at == T0 + timedelta(seconds=1850)


def test_a_disconnect_of_an_older_connection_keeps_the_station_online() -> None:
    fold = Fold()(lifecycle("connected", 0, connection="old"))
    fold(lifecycle("connected", 10, connection="new", gateway="gw-2"))
    fold(heartbeat(11, connection="old"))  # a late call of the old connection
    fold(lifecycle("disconnected", 12, connection="old"))
    assert (fold.last.online, fold.last.connection_id, fold.last.gateway_id) == (
        True,
        "new",
        "gw-2",
    )
    fold(lifecycle("disconnected", 20, connection="new"))
    assert not fold.last.online


def test_a_call_on_an_unseen_connection_makes_an_unknown_station_online() -> None:
    fold = Fold()(heartbeat(0, connection="c-9"))
    assert (fold.last.online, fold.last.connection_id, fold.last.connected_since) == (
        True,
        "c-9",
        None,
    )
    assert fold.last.last_heard_at == T0


def test_a_16_transaction_is_named_by_its_meter_values_and_ended_by_its_stop() -> None:
    fold = Fold()(lifecycle("connected", 0))
    start = {"connectorId": 2, "idTag": "TAG", "meterStart": 0, "timestamp": stamp(10)}
    fold(call("StartTransaction", start, 10))
    assert [(t.evse_id, t.transaction_id) for t in fold.last.transactions] == [(2, None)]
    sampled = {"value": "1500", "measurand": "Energy.Active.Import.Register"}
    meter = {
        "connectorId": 2,
        "transactionId": 77,
        "meterValue": [{"timestamp": stamp(70), "sampledValue": [sampled]}],
    }
    fold(call("MeterValues", meter, 70))
    assert [(t.evse_id, t.transaction_id) for t in fold.last.transactions] == [(2, "77")]
    assert [(m.evse_id, m.energy_wh) for m in fold.last.meters] == [(2, 1500.0)]
    stop = {"transactionId": 77, "meterStop": 2000, "timestamp": stamp(90)}
    fold(call("StopTransaction", stop, 90))
    assert fold.last.transactions == ()


def test_a_201_transaction_problem_and_firmware() -> None:
    fold = Fold()(lifecycle("connected", 0))
    event = {
        "eventType": "Started",
        "timestamp": stamp(5),
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "T-1"},
        "evse": {"id": 1, "connectorId": 1},
    }
    fold(call("TransactionEvent", event, 5, version="2.0.1"))
    assert [(t.evse_id, t.connector_id, t.transaction_id) for t in fold.last.transactions] == [
        (1, 1, "T-1")
    ]
    problem = {
        "eventId": 3,
        "timestamp": stamp(6),
        "trigger": "Delta",
        "actualValue": "true",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
        "variable": {"name": "Problem"},
    }
    notify = {"generatedAt": stamp(6), "seqNo": 0, "eventData": [problem]}
    fold(call("NotifyEvent", notify, 6, version="2.0.1"))
    assert [(p.component, p.evse_id, p.since) for p in fold.last.problems] == [
        ("Connector", 1, T0 + timedelta(seconds=6))
    ]
    cleared = {**notify, "eventData": [{**problem, "eventId": 4, "cleared": True}]}
    fold(call("NotifyEvent", cleared, 7, version="2.0.1"))
    assert fold.last.problems == ()
    ended = {**event, "eventType": "Ended", "seqNo": 1, "triggerReason": "EVDeparted"}
    fold(call("TransactionEvent", ended, 8, version="2.0.1"))
    assert fold.last.transactions == ()
    firmware = {"status": "Downloading", "requestId": 5}
    fold(call("FirmwareStatusNotification", firmware, 9, version="2.0.1"))
    assert fold.last.firmware is not None
    assert (fold.last.firmware.status, fold.last.firmware.request_id) == ("Downloading", 5)
    count = len(fold.records)
    fold(call("FirmwareStatusNotification", firmware, 10, version="2.0.1"))
    assert len(fold.records) == count


def test_meter_readings_are_written_in_steps_and_a_late_one_is_ignored() -> None:
    fold = Fold(meter_step=60)(lifecycle("connected", 0))

    def meter(at: float, wh: float) -> StationEvent:
        sampled = {"value": str(wh), "measurand": "Energy.Active.Import.Register"}
        body = {
            "connectorId": 1,
            "meterValue": [{"timestamp": stamp(at), "sampledValue": [sampled]}],
        }
        return call("MeterValues", body, at)

    for second in range(10, 200, 10):
        fold(meter(second, second * 10.0))
    assert [m.meters[0].energy_wh for m in fold.records[1:]] == [100.0, 700.0, 1300.0, 1900.0]
    assert fold.state is not None
    assert fold.state.meters[0].energy_wh == 1900.0
    written = len(fold.records)
    fold(meter(100, 5.0))  # late
    assert len(fold.records) == written
    assert fold.state.meters[0].energy_wh == 1900.0


def test_the_same_event_again_writes_nothing_and_keeps_the_state() -> None:
    fault = status16(1, "Faulted", 3, "GroundFailure")
    fold = Fold()(lifecycle("connected", 0), status16(1, "Available", 1), fault)
    state, written = fold.state, len(fold.records)
    decision = fold.logic.decide(fault, state, NO_PARTITION, Position(0, 99))
    assert decision.station is state
    assert (decision.outcome, decision.outputs) == ("duplicate", ())
    # a copy after a later event is recognised too: the connector stays Available
    fold(status16(1, "Available", 4), fault)
    assert len(fold.records) == written + 1
    assert fold.last.connectors[0].status == "Available"


# --- properties ---------------------------------------------------------------------------------

_STATUSES = ("Available", "Preparing", "Charging", "Faulted", "Unavailable")


@st.composite
def streams(draw: st.DrawFn) -> list[StationEvent]:
    """A station's events: connections, heartbeats, statuses, meters, boots; times increasing."""
    events: list[StationEvent] = []
    at = 0.0
    connection = 0
    for _ in range(draw(st.integers(1, 40))):
        at += draw(st.floats(0.5, 400))
        kind = draw(st.sampled_from(("hb", "hb", "status", "meter", "connect", "drop", "boot")))
        if kind == "connect":
            connection += 1
            events.append(lifecycle("connected", at, connection=f"c-{connection}"))
        elif kind == "drop":
            which = draw(st.integers(max(0, connection - 1), connection))
            events.append(lifecycle("disconnected", at, connection=f"c-{which}"))
        elif kind == "hb":
            events.append(heartbeat(at, connection=f"c-{connection}"))
        elif kind == "status":
            status = draw(st.sampled_from(_STATUSES))
            events.append(status16(draw(st.integers(0, 2)), status, at))
        elif kind == "meter":
            sampled = {
                "value": str(draw(st.integers(0, 10**6))),
                "measurand": "Energy.Active.Import.Register",
            }
            body = {
                "connectorId": 1,
                "meterValue": [{"timestamp": stamp(at), "sampledValue": [sampled]}],
            }
            events.append(call("MeterValues", body, at))
        else:
            body = {"chargePointVendor": "V", "chargePointModel": draw(st.sampled_from("AB"))}
            events.append(call("BootNotification", body, at))
    return events


@st.composite
def with_copies(draw: st.DrawFn) -> tuple[list[StationEvent], list[StationEvent]]:
    """A stream, and the same with copies of some events up to RECENT - 1 events later."""
    events = draw(streams())
    copied = list(events)
    for _ in range(draw(st.integers(0, len(events)))):
        index = draw(st.integers(0, len(events) - 1))
        original = events[index]
        where = copied.index(original) + 1 + draw(st.integers(0, 3))
        copied.insert(min(where, len(copied)), original)
    return events, copied


@settings(max_examples=200, deadline=None)
@given(with_copies())
def test_copies_of_events_change_neither_the_status_nor_the_records(
    pair: tuple[list[StationEvent], list[StationEvent]],
) -> None:
    events, copied = pair
    once, twice = Fold()(*events), Fold()(*copied)
    assert twice.records == once.records
    assert twice.state is not None and once.state is not None
    assert twice.state.published == once.state.published
    assert (twice.state.heard_at, twice.state.meters) == (once.state.heard_at, once.state.meters)


@settings(max_examples=100, deadline=None)
@given(
    intervals=st.lists(st.floats(1, 300), min_size=1, max_size=200),
    step=st.sampled_from((60.0, 300.0, 600.0)),
)
def test_heartbeats_alone_write_at_most_one_record_per_step(
    intervals: list[float], step: float
) -> None:
    fold = Fold(heard_step=step)(lifecycle("connected", 0))
    at = 0.0
    for interval in intervals:
        at += interval
        fold(heartbeat(at))
    assert fold.state is not None and fold.state.heard_at is not None
    elapsed = (fold.state.heard_at - T0).total_seconds()  # at, to the microsecond
    assert len(fold.records) <= 1 + elapsed // step
    assert fold.last.last_heard_at is not None
    assert elapsed - (fold.last.last_heard_at - T0).total_seconds() < step
