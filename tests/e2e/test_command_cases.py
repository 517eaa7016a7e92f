"""Commands across gateway processes: RELIABILITY case 31, case 9 across pods, and issue point 7.

Two gateway processes on one broker behave as one: a station that reconnects to
the other keeps receiving its commands; a newer connection for a station on the
other process closes the older one; every command ends in exactly one result,
also for the stations of a gateway that was killed (SIGKILL) holding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from ocpp.exceptions import SecurityError as OcppSecurityError
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from contracts.envelopes import (
    GATEWAY_GONE,
    DisconnectedPayload,
    StationCommand,
    decode_command_result,
    decode_event,
)
from contracts.topics import EVENTS, PRESENCE
from gateway.offline import CLOCK_SKEW, GROUP, client_id
from tests.e2e.test_station_flows import command, publish_command, wait_result
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import Station16, Station201, connect16, connect201, station_id

pytestmark = pytest.mark.timeout(120)

GRACE = 0.5  # CSMS_OFFLINE_GRACE of these gateways
GONE_AFTER = 2.0  # CSMS_GONE_AFTER: a killed gateway is gone 2 s after the group lost it
ENV = {"CSMS_OFFLINE_GRACE": str(GRACE), "CSMS_GONE_AFTER": str(GONE_AFTER)}
# the group loses a killed member after its session timeout (10 s), then GONE_AFTER
GONE_WITHIN = 10 + GONE_AFTER + 10


@pytest.fixture(scope="module")
def pair(kafka: KafkaUnderTest) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    with GatewayProcess(kafka, env=ENV) as first, GatewayProcess(kafka, env=ENV) as second:
        yield first, second


def _results_for(results: Collector, command_id: str) -> list[Any]:
    return [
        decode_command_result(r.value) for r in results.records if command_id.encode() in r.value
    ]


async def _exactly_one(results: Collector, command_id: str, timeout: float = 20) -> Any:
    """Wait for the command's result, then long enough for any second one to show up."""
    first = await wait_result(results, command_id, timeout)
    await asyncio.sleep(GRACE + 2.5)
    assert len(_results_for(results, command_id)) == 1
    return first


class CountingStation(Station16):
    """Counts the GetConfiguration calls it answers."""

    calls = 0

    @on("GetConfiguration")  # type: ignore[misc]
    def get_configuration(self, **kwargs: Any) -> Any:
        type(self).calls += 1
        return super().get_configuration(**kwargs)


async def test_case_31_redelivered_command_is_executed_once_and_ends_once(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    first, _ = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    CountingStation.calls = 0
    async with connect16(first.url(station), CountingStation) as cp:
        await cp.call(call16.Heartbeat())
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        await publish_command(kafka, get_configuration)  # a producer retry, a replay...
        result = await _exactly_one(results, get_configuration.command_id)
    assert result.status == "completed"
    assert CountingStation.calls == 1


async def test_case_31_command_for_a_station_on_another_gateway_ends_once(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    _, second = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with connect16(second.url(station)) as cp:
        await cp.call(call16.Heartbeat())
        await asyncio.sleep(1.0)  # presence reaches the other gateway
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        result = await _exactly_one(results, get_configuration.command_id)
    assert result.status == "completed"
    assert result.gateway_id == second.instance


async def test_case_31_command_for_an_offline_station_ends_station_offline_once(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    nobody = command(f"CP-{uuid.uuid4().hex[:8]}", "GetConfiguration", {})
    await publish_command(kafka, nobody)
    result = await _exactly_one(results, nobody.command_id)
    assert result.status == "station_offline"
    assert result.error is not None
    assert result.error.code == "StationOffline"
    assert result.gateway_id in {g.instance for g in pair}


@pytest.mark.parametrize("holder", [0, 1])
async def test_case_31_a_command_answered_just_before_the_station_leaves_ends_once(
    kafka: KafkaUnderTest,
    pair: tuple[GatewayProcess, GatewayProcess],
    results: Collector,
    holder: int,
) -> None:
    """As a station that accepts a Reset and reboots: it leaves within CSMS_OFFLINE_GRACE
    of the command, before the offline responder (on either gateway) decides."""
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with connect16(pair[holder].url(station)) as cp:
        await cp.call(call16.Heartbeat())
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        await wait_result(results, get_configuration.command_id, 20)
    await asyncio.sleep(GRACE + 2.5)
    statuses = [r.status for r in _results_for(results, get_configuration.command_id)]
    assert statuses == ["completed"]


async def test_case_31_expired_command_is_not_sent_and_ends_expired_once(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    first, _ = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    CountingStation.calls = 0
    async with connect16(first.url(station), CountingStation) as cp:
        await cp.call(call16.Heartbeat())
        stale = command(
            station,
            "GetConfiguration",
            {},
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        await publish_command(kafka, stale)
        result = await _exactly_one(results, stale.command_id)
    assert result.status == "expired"
    assert CountingStation.calls == 0


async def test_point_7_a_station_that_moves_to_the_other_gateway_keeps_its_commands(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    first, second = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with connect16(first.url(station)) as cp:
        await cp.call(call16.Heartbeat())
    async with connect16(second.url(station)) as cp:
        await cp.call(call16.Heartbeat())
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        result = await _exactly_one(results, get_configuration.command_id)
    assert result.status == "completed"
    assert result.gateway_id == second.instance


async def test_case_9_a_newer_connection_on_the_other_gateway_closes_the_older_one(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    first, second = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with connect16(first.url(station)) as old:
        await old.call(call16.Heartbeat())
        async with connect16(second.url(station)) as new:
            await new.call(call16.Heartbeat())
            await asyncio.wait_for(old._connection.wait_closed(), 15)
            assert old._connection.close_code == 1000
            # commands now reach the new connection
            get_configuration = command(station, "GetConfiguration", {})
            await publish_command(kafka, get_configuration)
            result = await _exactly_one(results, get_configuration.command_id)
    assert result.status == "completed"
    assert result.gateway_id == second.instance
    assert first.metric("csms_gateway_connections_closed_total", {"reason": "replaced"}) >= 1


async def _group_settled_with(kafka: KafkaUnderTest, instance: str) -> None:
    """Until the gateways' group is stable with ``instance`` in it, and its members have
    committed where they start (a gateway that crashes has been running a while)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(30):
            while True:
                (response,) = await admin.describe_consumer_groups([GROUP])
                (group,) = response.groups
                members = [member[0] for member in group[5]]
                if group[2] == "Stable" and any(client_id(instance) in m for m in members):
                    break
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await asyncio.sleep(1.5)  # the offline responders commit once a second


async def _killed_holding(
    kafka: KafkaUnderTest, station: str, presence: Collector, **kw: Any
) -> str:
    """A gateway that accepts ``station`` and is then killed (no tombstone); its instance id."""
    with GatewayProcess(kafka, env=ENV, **kw) as doomed:
        await _group_settled_with(kafka, doomed.instance)
        async with connect16(doomed.url(station)) as cp:
            await cp.call(call16.Heartbeat())
            await presence.wait_for(
                lambda rs: any(r.key == station.encode() and r.value for r in rs),
                what=f"{station}'s presence record",
            )
            doomed.signal(signal.SIGKILL)
            doomed.wait()
    return doomed.instance


async def _tombstoned(presence: Collector, station: str, timeout: float) -> Any:
    await presence.wait_for(
        lambda rs: any(r.key == station.encode() and r.value is None for r in rs),
        timeout=timeout,
        what=f"a presence tombstone for {station}",
    )
    return next(r for r in presence.keyed(station) if r.value is None)


async def test_a_killed_gateways_stations_end_station_offline_and_are_tombstoned(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with Collector(kafka, PRESENCE.name) as presence, Collector(kafka, EVENTS.name) as events:
        killed = await _killed_holding(kafka, station, presence)
        # sent while the other gateways still see the killed one holding the station
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        tombstone = await _tombstoned(presence, station, GONE_WITHIN)
        await events.wait_for(
            lambda rs: any(
                decode_event(r.value).kind == "disconnected"
                for r in rs
                if r.key == station.encode()
            ),
            what=f"the disconnected event of {station}",
        )
    written_by = dict(tombstone.headers)["ce_source"].decode().rsplit("/", 1)[-1]
    assert written_by in {g.instance for g in pair}
    seen = [decode_event(r.value) for r in events.keyed(station)]
    (connected,) = [e for e in seen if e.kind == "connected"]
    ended = {
        (e.gateway_id, e.connection_id, e.message_id) for e in seen if e.kind == "disconnected"
    }
    assert ended == {(killed, connected.connection_id, f"gone-{connected.connection_id}")}
    payload = msgspec.json.decode(
        next(e for e in seen if e.kind == "disconnected").payload, type=DisconnectedPayload
    )
    assert (payload.close_code, payload.close_reason) == (1006, GATEWAY_GONE)
    result = await _exactly_one(results, get_configuration.command_id)
    assert result.status == "station_offline"
    later = command(station, "GetConfiguration", {})
    await publish_command(kafka, later)
    assert (await _exactly_one(results, later.command_id)).status == "station_offline"


async def test_a_command_for_a_killed_gateways_station_ends_once_it_reconnected_elsewhere(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    first, _ = pair
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with Collector(kafka, PRESENCE.name) as presence:
        await _killed_holding(kafka, station, presence)
        get_configuration = command(station, "GetConfiguration", {})
        await publish_command(kafka, get_configuration)
        # left to the killed gateway; by the time the station is back, too old to be replayed
        await asyncio.sleep(GRACE + CLOCK_SKEW + 1.0)
        async with connect16(first.url(station)) as cp:  # the station is back, elsewhere
            await cp.call(call16.Heartbeat())
            result = await _exactly_one(results, get_configuration.command_id, GONE_WITHIN)
    assert result.status == "station_offline"


async def test_a_gateway_restarted_under_its_instance_id_clears_what_the_killed_one_held(
    kafka: KafkaUnderTest, pair: tuple[GatewayProcess, GatewayProcess], results: Collector
) -> None:
    station = f"CP-{uuid.uuid4().hex[:8]}"
    instance = f"gw-{uuid.uuid4().hex[:6]}"  # as a restarted container keeps its pod's name
    async with Collector(kafka, PRESENCE.name) as presence:
        await _killed_holding(kafka, station, presence, instance=instance)
        with GatewayProcess(kafka, env=ENV, instance=instance) as restarted:
            tombstone = await _tombstoned(presence, station, 10)  # at its start, not minutes later
            assert "gateway.presence_left_behind" in restarted.output
    assert dict(tombstone.headers)["ce_source"].decode().endswith(f"/{instance}")
    get_configuration = command(station, "GetConfiguration", {})
    await publish_command(kafka, get_configuration)
    # the killed gateway's partitions of the command stream wait for the group to lose it
    result = await _exactly_one(results, get_configuration.command_id, GONE_WITHIN + 10)
    assert result.status == "station_offline"


# --- issue 18 §2: commands wait for the station's boot ----------------------------------

BOOT_GRACE = 2.0  # CSMS_BOOT_GRACE of the booting gateway
GET_VARIABLES = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}


class BootingStation(Station201):
    """A 2.0.1 station that notes the commands it receives, and answers Reset."""

    received: ClassVar[list[str]] = []

    @on("GetVariables")  # type: ignore[misc]
    def get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        self.received.append("GetVariables")
        return super().get_variables(get_variable_data, **kwargs)

    @on("Reset")  # type: ignore[misc]
    def reset(self, **kwargs: Any) -> Any:
        self.received.append("Reset")
        return result201.Reset(status="Accepted")


@pytest.fixture(scope="module")
def booting(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    """A gateway whose BootNotifications a worker answers: here, the test."""
    env = {"CSMS_BOOT_POLICY": "workers", "CSMS_BOOT_GRACE": str(BOOT_GRACE)}
    with GatewayProcess(kafka, env=env) as gateway:
        yield gateway


async def _boot_call(events: Collector, station: str) -> str:
    """The message id of the station's BootNotification, once it is on ocpp.events.v1."""
    await events.wait_for(
        lambda rs: any(r.key == station.encode() and b'"BootNotification"' in r.value for r in rs),
        what=f"the BootNotification of {station}",
    )
    for record in events.keyed(station):
        event = decode_event(record.value)
        if event.action == "BootNotification":
            assert event.message_id is not None
            return event.message_id
    raise AssertionError("no BootNotification")


async def _answer_boot(kafka: KafkaUnderTest, station: str, message_id: str, status: str) -> None:
    """Answer the station's BootNotification as a worker does, on ocpp.commands.v1."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await publish_command(
        kafka,
        StationCommand(
            command_id=str(uuid.uuid4()),
            station_id=station,
            kind="call_result",
            action="BootNotification",
            message_id=message_id,
            created_at=datetime.now(UTC),
            source="/tests",
            payload=msgspec.Raw(
                b'{"currentTime":"%s","interval":60,"status":"%s"}'
                % (now.encode(), status.encode())
            ),
        ),
    )


@contextlib.asynccontextmanager
async def _booting_station(
    gateway: GatewayProcess, events: Collector
) -> AsyncIterator[tuple[str, Any, asyncio.Task[Any], str]]:
    """A 2.0.1 station whose BootNotification waits for its answer: its id, its charge
    point, the task awaiting the answer, and the call's message id."""
    station = station_id()
    BootingStation.received = []
    async with connect201(gateway.url(station), BootingStation) as cp:
        boot = call201.BootNotification(
            charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
        )
        answer = asyncio.create_task(cp.call(boot))
        yield station, cp, answer, await _boot_call(events, station)


async def test_a_command_waits_until_the_boot_is_accepted(
    kafka: KafkaUnderTest, booting: GatewayProcess, events: Collector, results: Collector
) -> None:
    async with _booting_station(booting, events) as (station, _, boot, message_id):
        get_variables = command(station, "GetVariables", GET_VARIABLES)
        await publish_command(kafka, get_variables)
        await asyncio.sleep(BOOT_GRACE + 1.5)  # longer than the grace: booting is not silence
        assert BootingStation.received == []
        assert _results_for(results, get_variables.command_id) == []
        await _answer_boot(kafka, station, message_id, "Accepted")
        assert (await boot).status == "Accepted"
        result = await wait_result(results, get_variables.command_id)
    assert result.status == "completed"
    assert BootingStation.received == ["GetVariables"]


async def test_a_pending_station_gets_reads_not_resets_and_may_not_call(
    kafka: KafkaUnderTest, booting: GatewayProcess, events: Collector, results: Collector
) -> None:
    async with _booting_station(booting, events) as (station, cp, boot, message_id):
        await _answer_boot(kafka, station, message_id, "Pending")
        assert (await boot).status == "Pending"
        expires = datetime.now(UTC) + timedelta(seconds=3)
        reset = command(station, "Reset", {"type": "Immediate"}, expires_at=expires)
        get_variables = command(station, "GetVariables", GET_VARIABLES)
        await publish_command(kafka, reset)
        await publish_command(kafka, get_variables)
        read = await wait_result(results, get_variables.command_id)
        with pytest.raises(OcppSecurityError):  # B02.FR.09: not while Pending
            await cp.call(call201.Heartbeat(), suppress=False)
        held = await wait_result(results, reset.command_id)
    assert read.status == "completed"
    assert held.status == "expired"
    assert BootingStation.received == ["GetVariables"]


async def test_a_silent_station_gets_its_command_after_the_grace(
    kafka: KafkaUnderTest, booting: GatewayProcess, results: Collector
) -> None:
    station = station_id()
    BootingStation.received = []
    async with connect201(booting.url(station), BootingStation):
        await asyncio.sleep(0.5)  # connected, and says nothing
        get_variables = command(station, "GetVariables", GET_VARIABLES)
        sent_at = asyncio.get_running_loop().time()
        await publish_command(kafka, get_variables)
        result = await wait_result(results, get_variables.command_id)
        waited = asyncio.get_running_loop().time() - sent_at
    assert result.status == "completed"
    assert waited >= BOOT_GRACE - 0.5 - 0.1  # the grace counts from the connection
    assert BootingStation.received == ["GetVariables"]


async def test_a_16_station_that_heartbeats_first_gets_commands_at_once(
    kafka: KafkaUnderTest, booting: GatewayProcess, results: Collector
) -> None:
    station = f"CP-{uuid.uuid4().hex[:8]}"
    async with connect16(booting.url(station)) as cp:
        await cp.call(call16.Heartbeat())  # a reconnect without a reboot
        get_configuration = command(station, "GetConfiguration", {})
        sent_at = asyncio.get_running_loop().time()
        await publish_command(kafka, get_configuration)
        result = await wait_result(results, get_configuration.command_id)
        waited = asyncio.get_running_loop().time() - sent_at
    assert result.status == "completed"
    assert waited < BOOT_GRACE  # not held for the grace
