"""The status worker end to end: real gateway and worker processes, the ``ocpp`` charge points.

A 1.6 and a 2.0.1 station connect, boot, report a fault, recover and leave; the
station's csms.station-status.v1 record follows each step, and
``csms stations status`` shows it. The worker is SIGKILLed and restarted: the
record is still right and the events it had checkpointed write nothing again.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from contracts.bus.clients import admin_client, assign_all, consumer
from contracts.envelopes import StationStatus, decode_station_status
from contracts.topics import EVENTS, STATION_STATUS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import run_csms
from tests.support.records import Collector
from tests.support.stations import connect16, connect201, station_id
from tests.workers.processes import WorkerProcess, commit_at_end

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    with GatewayProcess(kafka) as process:
        yield process


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def records_of(collector: Collector, station: str) -> list[StationStatus]:
    found = [decode_station_status(r.value) for r in collector.keyed(station)]
    return [r for r in found if r is not None]


async def follows(
    collector: Collector, station: str, what: str, check: Callable[[StationStatus], bool]
) -> StationStatus:
    """The station's latest record, once ``check`` holds for it."""
    await collector.wait_for(
        lambda _: (
            bool(records_of(collector, station)) and check(records_of(collector, station)[-1])
        ),
        what=f"{station}: {what}",
    )
    return records_of(collector, station)[-1]


async def committed_to_end(kafka: KafkaUnderTest, group: str) -> bool:
    """Whether ``group`` committed every partition of ocpp.events.v1 at its end."""
    admin = admin_client(kafka.settings, "test-status-offsets")
    reader = consumer(kafka.settings, "test-status-offsets")
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await assign_all(reader, EVENTS.name)
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
        await admin.close()
    return all(tp in committed and committed[tp].offset >= ends[tp] for tp in partitions)


def connectors(status: StationStatus) -> dict[tuple[int, int | None], tuple[str, str | None]]:
    return {(c.evse_id, c.connector_id): (c.status, c.error_code) for c in status.connectors}


async def test_the_record_follows_a_16_and_a_201_station_and_the_cli_shows_it(
    kafka: KafkaUnderTest, gateway: GatewayProcess
) -> None:
    old, new = station_id("S16"), station_id("S201")
    group = f"test-status-{old[-8:]}"
    await commit_at_end(kafka, group)
    with WorkerProcess(kafka, group=group, worker="status") as worker:
        worker.wait_assigned()
        async with Collector(kafka, STATION_STATUS.name) as status:
            async with connect16(gateway.url(old)) as cp:
                record = await follows(status, old, "online", lambda r: r.online)
                assert (record.ocpp_version, record.connected_since is not None) == ("1.6", True)
                await cp.call(
                    call16.BootNotification(
                        charge_point_vendor="Alfen",
                        charge_point_model="NG9",
                        firmware_version="6.4",
                    )
                )
                record = await follows(status, old, "booted", lambda r: r.boot is not None)
                assert record.boot is not None and record.boot.firmware_version == "6.4"
                await cp.call(
                    call16.StatusNotification(
                        connector_id=1,
                        error_code="GroundFailure",
                        status="Faulted",
                        timestamp=now(),
                    )
                )
                await follows(
                    status,
                    old,
                    "faulted",
                    lambda r: connectors(r) == {(1, None): ("Faulted", "GroundFailure")},
                )
                shown = await asyncio.to_thread(run_csms, "stations", "status", env=kafka.env())
                assert shown.returncode == 0, shown.stderr
                line = next(line for line in shown.stdout.splitlines() if line.startswith(old))
                assert (
                    "online" in line and "1:Faulted(GroundFailure)" in line and "Alfen/NG9" in line
                )
                await cp.call(
                    call16.StatusNotification(
                        connector_id=1, error_code="NoError", status="Available", timestamp=now()
                    )
                )
                await follows(
                    status,
                    old,
                    "available",
                    lambda r: connectors(r) == {(1, None): ("Available", "NoError")},
                )
            record = await follows(status, old, "offline", lambda r: not r.online)
            assert record.disconnected_at is not None and record.last_heard_at is not None

            async with connect201(gateway.url(new)) as cp2:
                await cp2.call(
                    call201.BootNotification(
                        charging_station={"vendor_name": "Kempower", "model": "S"},
                        reason="PowerUp",
                    )
                )
                record = await follows(status, new, "booted", lambda r: r.boot is not None)
                assert record.boot is not None and record.boot.reason == "PowerUp"
                assert (record.online, record.ocpp_version) == (True, "2.0.1")
                for state in ("Faulted", "Available"):
                    await cp2.call(
                        call201.StatusNotification(
                            timestamp=now(), connector_status=state, evse_id=1, connector_id=1
                        )
                    )
                    await follows(
                        status, new, state, lambda r, s=state: connectors(r) == {(1, 1): (s, None)}
                    )
            await follows(status, new, "offline", lambda r: not r.online)
            # nothing but changes: connect, boot, fault, recover, disconnect
            assert len(records_of(status, old)) == 5
            assert len(records_of(status, new)) == 5

    detail = await asyncio.to_thread(run_csms, "stations", "status", new, env=kafka.env())
    assert detail.returncode == 0, detail.stderr
    assert "offline since" in detail.stdout and "Kempower S" in detail.stdout
    as_json = await asyncio.to_thread(
        run_csms, "stations", "status", new, "--json", env=kafka.env()
    )
    assert json.loads(as_json.stdout)["station_id"] == new
    unknown = await asyncio.to_thread(run_csms, "stations", "status", "NEVER-SEEN", env=kafka.env())
    assert unknown.returncode == 1
    assert "no status record for station 'NEVER-SEEN'" in unknown.stderr


async def test_a_worker_killed_and_restarted_keeps_the_record_right_and_writes_nothing_twice(
    kafka: KafkaUnderTest, gateway: GatewayProcess
) -> None:
    station = station_id("SK")
    group = f"test-status-kill-{station[-8:]}"
    await commit_at_end(kafka, group)
    member = {"CSMS_INSTANCE": f"status-{station[-8:]}", "CSMS_WORKER_STATIC_MEMBERSHIP": "true"}
    async with (
        Collector(kafka, STATION_STATUS.name) as status,
        connect16(gateway.url(station)) as cp,
    ):
        first = WorkerProcess(kafka, group=group, worker="status", **member).start()
        try:
            first.wait_assigned()
            await cp.call(
                call16.StatusNotification(
                    connector_id=1, error_code="NoError", status="Faulted", timestamp=now()
                )
            )
            await follows(
                status, station, "faulted", lambda r: connectors(r)[(1, None)][0] == "Faulted"
            )
            await cp.call(call16.Heartbeat())  # between steps: no record
            # checkpointed and committed: the restart resumes after these events
            async with asyncio.timeout(15):
                while not await committed_to_end(kafka, group):
                    await asyncio.sleep(0.1)
        finally:
            first.signal(signal.SIGKILL)
            first.wait()
            first.stop()
        before = records_of(status, station)
        # the gateway answers these itself while no worker runs
        await cp.call(
            call16.StatusNotification(
                connector_id=1, error_code="NoError", status="Available", timestamp=now()
            )
        )
        with WorkerProcess(kafka, group=group, worker="status", **member) as second:
            second.wait_assigned()
            await follows(
                status, station, "available", lambda r: connectors(r)[(1, None)][0] == "Available"
            )
            await asyncio.sleep(1.0)  # a replayed record would come now
        after = records_of(status, station)
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1  # only the event it had not handled
    # restored, not begun again: the connect seen by the first worker is still there
    assert after[-1].online and after[-1].connection_id == before[-1].connection_id
    assert after[-1].connected_since is not None
    assert after[-1].connected_since == before[-1].connected_since
