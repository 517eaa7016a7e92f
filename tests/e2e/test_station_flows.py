"""Whole flows through a real gateway process and the session broker, with real charge points.

A station boots, heartbeats, reports status and meter values: the events arrive
on ocpp.events.v1 in order, with the documented envelope and headers. A command
published on ocpp.commands.v1 reaches the station, and its answer comes back on
ocpp.command-results.v1.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from contracts.envelopes import (
    StationCommand,
    decode_command_result,
    decode_event,
    encode_command,
    record_key,
)
from contracts.headers import command_headers, read_headers
from contracts.topics import COMMANDS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import run_csms
from tests.support.records import Collector
from tests.support.stations import connect16, connect201, connect_raw, station_id

METER_VALUE_16 = [
    {
        "timestamp": "2026-03-01T12:00:00Z",
        "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        ],
    }
]


def _events_of(collector: Collector, station: str) -> list[Any]:
    return [decode_event(r.value) for r in collector.keyed(station)]


async def _wait_events(collector: Collector, station: str, count: int) -> list[Any]:
    await collector.wait_for(
        lambda rs: len([r for r in rs if r.key == station.encode()]) >= count,
        what=f"{count} events of {station}",
    )
    return _events_of(collector, station)


async def publish_command(kafka: KafkaUnderTest, command: StationCommand) -> None:
    """Write a command the way a downstream service does: a plain Kafka producer."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            COMMANDS.name,
            encode_command(command),
            key=record_key(command.station_id),
            headers=command_headers(command),
        )
    finally:
        await producer.stop()


def command(station: str, action: str, payload: dict[str, Any], **fields: Any) -> StationCommand:
    return StationCommand(
        command_id=str(uuid.uuid4()),
        station_id=station,
        kind="call",
        action=action,
        created_at=datetime.now(UTC),
        source="/tests",
        payload=msgspec.Raw(orjson.dumps(payload)),
        **fields,
    )


async def wait_result(results: Collector, command_id: str, timeout: float = 20) -> Any:
    await results.wait_for(
        lambda rs: any(command_id.encode() in r.value for r in rs),
        timeout=timeout,
        what=f"the result of {command_id}",
    )
    (record,) = [r for r in results.records if command_id.encode() in r.value]
    return decode_command_result(record.value)


async def test_ocpp16_station_flow_events_in_order_with_envelope(
    gateway: GatewayProcess, events: Collector
) -> None:
    station = station_id()
    async with connect16(gateway.url(station)) as cp:
        boot = await cp.call(
            call16.BootNotification(charge_point_model="M1", charge_point_vendor="V")
        )
        assert boot.status == "Accepted"
        assert boot.interval == 300
        heartbeat = await cp.call(call16.Heartbeat())
        assert heartbeat.current_time.endswith("Z")
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
        )
        await cp.call(call16.MeterValues(connector_id=1, meter_value=METER_VALUE_16))
        await cp.call(call16.Heartbeat())
        received = await _wait_events(events, station, 6)

    assert [(e.kind, e.action) for e in received[:6]] == [
        ("connected", None),
        ("call", "BootNotification"),
        ("call", "Heartbeat"),
        ("call", "StatusNotification"),
        ("call", "MeterValues"),
        ("call", "Heartbeat"),
    ]
    meter = received[4]
    assert orjson.loads(bytes(meter.payload)) == {"connectorId": 1, "meterValue": METER_VALUE_16}
    assert meter.ocpp_version == "1.6"
    assert meter.gateway_id == gateway.instance
    assert meter.reply_expected is False
    assert meter.received_at.tzinfo is not None
    assert len({e.connection_id for e in received}) == 1
    # one partition per station, offsets strictly increasing: order kept end to end
    records = events.keyed(station)
    assert len({r.partition for r in records}) == 1
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    headers = read_headers(records[4].headers)
    assert headers.ocpp_action == "MeterValues"
    assert headers.ocpp_version == "1.6"
    assert headers.ce_specversion == "1.0"
    assert headers.ce_type == "csms.ocpp.event.call"
    assert headers.ce_source == f"/csms/gateway/{gateway.instance}"


async def test_ocpp16_command_reaches_station_and_result_comes_back(
    kafka: KafkaUnderTest, gateway: GatewayProcess, events: Collector, results: Collector
) -> None:
    station = station_id()
    async with connect16(gateway.url(station)) as cp:
        await cp.call(call16.BootNotification(charge_point_model="M1", charge_point_vendor="V"))
        await _wait_events(events, station, 2)
        get_configuration = command(station, "GetConfiguration", {"key": ["HeartbeatInterval"]})
        await publish_command(kafka, get_configuration)
        result = await wait_result(results, get_configuration.command_id)
    assert result.status == "completed"
    assert result.station_id == station
    assert result.ocpp_version == "1.6"
    assert result.error is None
    assert orjson.loads(bytes(result.payload)) == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
    }


async def test_csms_send_prints_the_result(kafka: KafkaUnderTest, gateway: GatewayProcess) -> None:
    station = station_id()
    async with connect16(gateway.url(station)) as cp:
        await cp.call(call16.Heartbeat())
        completed = await asyncio.to_thread(
            run_csms,
            "send", station, "GetConfiguration", "{}", "--timeout", "10",
            "--bootstrap", kafka.bootstrap,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    result = decode_command_result(completed.stdout.strip().encode())
    assert result.status == "completed"
    assert b"HeartbeatInterval" in bytes(result.payload)


async def test_ocpp201_station_flow_and_get_variables(
    kafka: KafkaUnderTest, gateway: GatewayProcess, events: Collector, results: Collector
) -> None:
    station = station_id()
    async with connect201(gateway.url(station)) as cp:
        boot = await cp.call(
            call201.BootNotification(
                charging_station={"model": "M2", "vendor_name": "V"}, reason="PowerUp"
            )
        )
        assert boot.status == "Accepted"
        await cp.call(call201.Heartbeat())
        await cp.call(
            call201.StatusNotification(
                timestamp="2026-03-01T12:00:00Z",
                connector_status="Available",
                evse_id=1,
                connector_id=1,
            )
        )
        await cp.call(
            call201.MeterValues(
                evse_id=1,
                meter_value=[
                    {
                        "timestamp": "2026-03-01T12:00:00Z",
                        "sampled_value": [{"value": 1234.5}],
                    }
                ],
            )
        )
        received = await _wait_events(events, station, 5)
        get_variables = command(
            station,
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        )
        await publish_command(kafka, get_variables)
        result = await wait_result(results, get_variables.command_id)
    assert [e.action for e in received[1:5]] == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "MeterValues",
    ]
    assert all(e.ocpp_version == "2.0.1" for e in received)
    assert result.status == "completed"
    (variable,) = orjson.loads(bytes(result.payload))["getVariableResult"]
    assert variable["attributeStatus"] == "Accepted"
    assert variable["attributeValue"] == "300"


async def test_ocpp21_raw_frames_call_and_send(gateway: GatewayProcess, events: Collector) -> None:
    station = station_id()
    async with connect_raw(gateway.url(station), "ocpp2.1") as raw:
        boot = await raw.call(
            "BootNotification",
            {"chargingStation": {"model": "M3", "vendorName": "V"}, "reason": "PowerUp"},
            message_id="boot-1",
        )
        assert boot[:2] == [3, "boot-1"]
        assert boot[2]["status"] == "Accepted"
        heartbeat = await raw.call("Heartbeat", {}, message_id="hb-1")
        assert heartbeat[0] == 3
        # SEND (OCPP 2.1 part 4): published, never answered
        await raw.send(
            [
                6,
                "send-1",
                "NotifyPeriodicEventStream",
                {
                    "id": 1,
                    "pending": 0,
                    "basetime": "2026-03-01T12:00:00Z",
                    "data": [{"t": 0, "v": "1"}],
                },
            ]
        )
        # the next answer is the heartbeat's, not an answer to the SEND
        assert (await raw.call("Heartbeat", {}, message_id="hb-2"))[:2] == [3, "hb-2"]
        received = await _wait_events(events, station, 5)
    kinds = [(e.kind, e.action, e.message_id) for e in received[1:5]]
    assert kinds == [
        ("call", "BootNotification", "boot-1"),
        ("call", "Heartbeat", "hb-1"),
        ("send", "NotifyPeriodicEventStream", "send-1"),
        ("call", "Heartbeat", "hb-2"),
    ]
    assert received[1].ocpp_version == "2.1"


@pytest.mark.parametrize(
    ("subprotocol", "code"), [("ocpp1.6", "FormationViolation"), ("ocpp2.0.1", "RpcFrameworkError")]
)
async def test_malformed_input_is_answered_and_nothing_published(
    gateway: GatewayProcess, events: Collector, subprotocol: str, code: str
) -> None:
    station = station_id()
    async with connect_raw(gateway.url(station), subprotocol) as raw:
        await raw.send("this is not json")
        answer = await raw.receive()
        assert answer[:3] == [4, "-1", code]
        assert (await raw.call("Heartbeat", {}, message_id="hb"))[:2] == [3, "hb"]
        await _wait_events(events, station, 2)
    assert [e.action for e in _events_of(events, station)] == [None, "Heartbeat"]
