"""The alerts worker end to end: real gateway and worker processes, the ``ocpp`` charge points.

Thresholds are seconds instead of minutes; each rule raises on csms.alerts.v1
and clears when its cause is gone, once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201

from contracts.envelopes import Alert, decode_alert
from contracts.topics import ALERTS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import Station16, connect16, connect201, station_id
from tests.workers.processes import WorkerProcess

pytestmark = pytest.mark.kafka

FAST = {
    "CSMS_ALERTS_OFFLINE_AFTER": "3",
    "CSMS_ALERTS_PROBE_WAIT": "2",
    "CSMS_ALERTS_FAULT_FOR": "0.5",
    "CSMS_ALERTS_MIN_FIRING": "0.5",
}


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    with GatewayProcess(kafka) as process:
        yield process


@pytest.fixture
def alerts_worker(kafka: KafkaUnderTest) -> Iterator[WorkerProcess]:
    with WorkerProcess(kafka, worker="alerts", **FAST) as worker:
        worker.wait_assigned()
        yield worker


def alerts_of(collector: Collector, station: str) -> list[Alert]:
    return [decode_alert(r.value) for r in collector.keyed(station)]


async def until_alerts(collector: Collector, station: str, count: int) -> list[Alert]:
    await collector.wait_for(
        lambda rs: len([r for r in rs if r.key == station.encode()]) >= count,
        what=f"{count} alert records of {station}",
    )
    return alerts_of(collector, station)


def boot16() -> Any:
    return call16.BootNotification(charge_point_vendor="V", charge_point_model="M")


async def test_a_faulted_connector_raises_and_available_clears_it(
    kafka: KafkaUnderTest, gateway: GatewayProcess, alerts_worker: WorkerProcess
) -> None:
    station = station_id("AF")
    async with Collector(kafka, ALERTS.name) as alerts, connect16(gateway.url(station)) as cp:
        await cp.call(boot16())
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="GroundFailure", status="Faulted")
        )
        (raised,) = await until_alerts(alerts, station, 1)
        assert (raised.kind, raised.state, raised.evse_id) == ("connector_faulted", "raised", 1)
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )
        records = await until_alerts(alerts, station, 2)
    assert [(a.alert_id, a.state) for a in records] == [
        (raised.alert_id, "raised"),
        (raised.alert_id, "cleared"),
    ]
    assert raised.gateway_id == gateway.instance


async def test_a_dropped_201_station_raises_offline_and_its_return_clears_it(
    kafka: KafkaUnderTest, gateway: GatewayProcess, alerts_worker: WorkerProcess
) -> None:
    station = station_id("AO")
    boot = call201.BootNotification(
        charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
    )
    async with Collector(kafka, ALERTS.name) as alerts:
        async with connect201(gateway.url(station)) as cp:
            await cp.call(boot)
        (raised,) = await until_alerts(alerts, station, 1)
        assert (raised.kind, raised.state) == ("station_offline", "raised")
        async with connect201(gateway.url(station)) as cp:
            await cp.call(boot)
            records = await until_alerts(alerts, station, 2)
    assert [(a.kind, a.state) for a in records] == [
        ("station_offline", "raised"),
        ("station_offline", "cleared"),
    ]


async def test_three_quick_boots_raise_a_boot_loop(
    kafka: KafkaUnderTest, gateway: GatewayProcess, alerts_worker: WorkerProcess
) -> None:
    station = station_id("AB")
    async with Collector(kafka, ALERTS.name) as alerts, connect16(gateway.url(station)) as cp:
        for _ in range(3):
            await cp.call(boot16())
        (raised,) = await until_alerts(alerts, station, 1)
    assert (raised.kind, raised.severity, raised.details["boots"]) == ("boot_loop", "critical", 3)


class _Answering(Station16):
    """Answers TriggerMessage Heartbeat with a heartbeat, as a healthy station does."""

    triggered = 0

    @on("TriggerMessage")  # type: ignore[misc]
    def trigger(self, requested_message: str, **kwargs: Any) -> Any:
        type(self).triggered += 1
        asyncio.get_running_loop().create_task(self.call(call16.Heartbeat()))
        return result16.TriggerMessage(status="Accepted")


async def test_a_silent_station_is_probed_and_only_one_that_does_not_answer_is_offline(
    kafka: KafkaUnderTest, gateway: GatewayProcess, alerts_worker: WorkerProcess
) -> None:
    healthy, mute = station_id("AH"), station_id("AM")
    async with (
        Collector(kafka, ALERTS.name) as alerts,
        connect16(gateway.url(healthy), _Answering) as answering,
        connect16(gateway.url(mute)) as silent,  # answers TriggerMessage NotImplemented
    ):
        await answering.call(boot16())
        await silent.call(boot16())
        (raised,) = await until_alerts(alerts, mute, 1)
        assert (raised.kind, raised.details["connected"]) == ("station_offline", True)
        await silent.call(call16.Heartbeat())
        await until_alerts(alerts, mute, 2)
        assert _Answering.triggered >= 1
        assert alerts_of(alerts, healthy) == []


async def test_the_worker_killed_and_restarted_loses_nothing_and_raises_nothing_twice(
    kafka: KafkaUnderTest, gateway: GatewayProcess
) -> None:
    station = station_id("AK")
    async with Collector(kafka, ALERTS.name) as alerts, connect16(gateway.url(station)) as cp:
        first = await asyncio.to_thread(WorkerProcess, kafka, worker="alerts", **FAST)
        with first:
            await asyncio.to_thread(first.wait_assigned)
            group = first.group
            await cp.call(boot16())
            await cp.call(
                call16.StatusNotification(connector_id=2, error_code="NoError", status="Faulted")
            )
            await until_alerts(alerts, station, 1)
            await asyncio.sleep(1)  # a checkpoint (every 0.2 s) covers the raise
            first.signal(signal.SIGKILL)
            first.wait()
        # while no worker runs, the connector recovers
        await cp.call(
            call16.StatusNotification(connector_id=2, error_code="NoError", status="Available")
        )
        second = WorkerProcess(kafka, worker="alerts", group=group, **FAST)
        with second:
            await asyncio.to_thread(second.wait_assigned)
            await until_alerts(alerts, station, 2)
            await cp.call(call16.Heartbeat())
            await asyncio.sleep(2)  # anything written twice would be here by now
    records = alerts_of(alerts, station)
    assert [(a.kind, a.state) for a in records] == [
        ("connector_faulted", "raised"),
        ("connector_faulted", "cleared"),
    ]
    assert records[0].alert_id == records[1].alert_id
