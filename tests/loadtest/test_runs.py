"""Runs of the harness against real servers: the gateway, a deliberately failing server, and
the multi-process and multi-part paths with ``csms loadtest merge`` and SLO exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from loadtest.fleet import Fleet, Plan
from loadtest.report import merge
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CSMS, csms_env

SMALL_FLEET = """
name = "small"
duration = "4s"
call_timeout = "3s"
[stations]
ocpp = { "1.6" = 1, "2.0.1" = 1 }
connect_rate = 100
[heartbeat]
interval = "1s"
[calls]
rate = 60
mix = { MeterValues = 4, Heartbeat = 4, StatusNotification = 2 }
"""


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    # every simulated station comes from 127.0.0.1: lift the per-address handshake limit
    with GatewayProcess(kafka, env={"CSMS_HANDSHAKE_RATE": "0"}) as process:
        yield process


def plan(target: str, scenario: str, count: int, **kwargs: object) -> Plan:
    return Plan(
        target=target,
        scenario=scenario,
        scenario_source="test",
        first=0,
        count=count,
        fleet_stations=count,
        **kwargs,  # type: ignore[arg-type]
    )


async def csms_send(kafka: KafkaUnderTest, station: str, action: str, payload: str) -> int:
    child = await asyncio.create_subprocess_exec(
        *CSMS, "send", station, action, payload, "--timeout", "5", "--bootstrap", kafka.bootstrap,
        env=csms_env(kafka.env()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await child.wait()


@pytest.mark.kafka
async def test_a_small_fleet_against_the_gateway(
    kafka: KafkaUnderTest, gateway: GatewayProcess
) -> None:
    fleet = Fleet(plan(gateway.url("{station}"), SMALL_FLEET, 50, station_id="LT-SMALL-{n:04d}"))
    first = fleet.stations[0]
    command = (
        ("GetConfiguration", '{"key":["HeartbeatInterval"]}')
        if first.version == "1.6"
        else ("GetVariables", '{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},'
              '"variable":{"name":"HeartbeatInterval"}}]}')
    )  # fmt: skip

    async def send_later() -> int:
        await asyncio.sleep(1.5)
        return await csms_send(kafka, first.station_id, *command)

    report, send_status = await asyncio.gather(fleet.run(), send_later())
    report = merge([report])

    assert send_status == 0  # the command reached the station and its answer came back
    assert report.commands == {command[0]: 1}
    assert report.errors == {}
    assert report.connects.attempts == report.connects.connected == 50
    versions = {s.version for s in fleet.stations}
    assert versions == {"1.6", "2.0.1"}
    s = report.summary
    assert set(s["actions"]) == {
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
    assert s["actions"]["BootNotification"]["answered"] == 50
    # 2 connectors each, and the routine StatusNotifications on top
    assert s["actions"]["StatusNotification"]["answered"] > 100
    # 50 stations heartbeating every second for ~4 s, plus 40 % of 60 calls/s
    assert 150 < s["actions"]["Heartbeat"]["answered"] < 400
    assert s["all"]["calls"] == s["all"]["answered"]
    for figures in s["actions"].values():
        latency = figures["latency_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"] <= latency["max"] < 3000
    assert sum(b.answered for b in report.timeline) == s["all"]["answered"]
    assert max(b.connected for b in report.timeline) == 50
    # the gateway saw them all
    assert gateway.metric("csms_gateway_connections_opened_total", {"ocpp_version": "1.6"}) >= 1


# --------------------------------------------------------------------------- a failing server

FAILING = """
name = "failing"
duration = "3s"
call_timeout = "1s"
[stations]
connect_rate = 0
connectors = 1
[calls]
rate = 40
arrival = "uniform"
mix = { Heartbeat = 1, StatusNotification = 1, MeterValues = 1 }
"""


STATION_REPLIES: dict[str, list[object]] = {}


async def _failing_handler(connection: ServerConnection) -> None:
    """Boot: accepted. StatusNotification: CALLERROR. Heartbeat: never answered. MeterValues:
    the connection is closed. Once per connection it also calls the station three times."""
    await connection.send('[2,"c1","GetConfiguration",{}]')
    await connection.send('[2,"c2","FlyToTheMoon",{}]')
    await connection.send('[2,"c3","GetConfiguration",{"key":5}]')
    async for message in connection:
        frame = json.loads(message)
        if frame[0] != 2:
            STATION_REPLIES[frame[1]] = frame
            continue
        action = frame[2]
        if action == "BootNotification":
            await connection.send(
                json.dumps([3, frame[1], {"status": "Accepted", "currentTime":
                            "2026-01-01T00:00:00Z", "interval": 60}])
            )  # fmt: skip
        elif action == "StatusNotification":
            await connection.send(json.dumps([4, frame[1], "InternalError", "no", {}]))
        elif action == "MeterValues":
            await connection.close()
            return


def _refuse_some(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.endswith("-REFUSED"):
        return Response(503, "Service Unavailable", Headers({"Retry-After": "30"}), b"")
    if request.path.endswith("-UNKNOWN"):
        return connection.respond(404, "unknown station\n")
    return None


async def test_errors_are_classified_against_a_failing_server() -> None:
    async with serve(
        _failing_handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], process_request=_refuse_some
    ) as server:  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        ids = {0: "LT-OK", 1: "LT-REFUSED", 2: "LT-UNKNOWN"}

        fleet = Fleet(plan(f"ws://127.0.0.1:{port}/ocpp/", FAILING, 3, station_id="LT-{n}"))
        for station in fleet.stations:  # give the three stations their roles
            station.station_id = ids[station.number]
            station.url = f"ws://127.0.0.1:{port}/ocpp/{station.station_id}"
        report = merge([await fleet.run()])

    errors = report.errors
    assert errors["connect:http_503"] == 1  # Retry-After 30 s: not retried within the run
    assert errors["connect:http_404"] >= 1
    assert errors["callerror:InternalError"] >= 1
    assert errors["timeout"] >= 1
    assert errors["dropped"] >= 1  # the server closed the connection
    assert set(errors) <= {
        "connect:http_503", "connect:http_404", "callerror:InternalError", "timeout",
        "dropped", "disconnect",
    }  # fmt: skip
    actions = report.actions
    assert actions["StatusNotification"].errors >= 1
    assert actions["Heartbeat"].errors >= 1
    assert actions["BootNotification"].answered >= 1
    # the station answered the server's calls: GetConfiguration validly, the unknown one with
    # NotImplemented; both counted
    assert report.commands["GetConfiguration"] >= 2
    assert report.commands["FlyToTheMoon"] >= 1
    assert STATION_REPLIES["c1"][0] == 3
    assert "configurationKey" in STATION_REPLIES["c1"][2]  # type: ignore[operator]
    assert STATION_REPLIES["c2"][:3] == [4, "c2", "NotImplemented"]
    assert STATION_REPLIES["c3"][:3] == [4, "c3", "FormationViolation"]  # the 1.6 spelling
    # the station reconnected after the server dropped it
    assert report.connects.connected >= 2


async def test_a_refused_tcp_connection() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fleet = Fleet(
        plan(f"ws://127.0.0.1:{port}/ocpp/", FAILING, 2, duration=1.0, reconnect_backoff=10.0)
    )
    report = merge([await fleet.run()])
    assert report.errors == {"connect:refused": 2}
    assert report.connects.connected == 0
    assert report.summary["all"]["calls"] == 0


IDLE = """
name = "idle"
duration = "2s"
call_timeout = "0.2s"  # the server answers no heartbeat: the run ends without waiting for one
[stations]
connect_rate = 10
boot = false
[heartbeat]
interval = "60s"
"""


async def _hold(connection: ServerConnection) -> None:
    await connection.wait_closed()


async def test_a_late_generator_does_not_fail_its_stations_for_its_own_lateness() -> None:
    """Connections due while the generator's loop was held up start late; each attempt still
    has the whole connect timeout, from its start, against a server that answers at once."""
    async with serve(_hold, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        fleet = Fleet(plan(f"ws://127.0.0.1:{port}/ocpp/", IDLE, 5, connect_timeout=0.3))
        # held for 0.6 s from 0.05 s in: the stations due at 0.1 to 0.4 s start up to 0.5 s late
        asyncio.get_running_loop().call_later(0.05, time.sleep, 0.6)
        report = merge([await fleet.run()])
    assert set(report.errors) <= {"timeout"}  # the unanswered heartbeats, nothing else
    assert report.connects.connected == 5


# --------------------------------------------------------------------------- processes and parts


async def _csms(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        *CSMS, *args, env=csms_env(env), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await child.communicate()
    return child.returncode or 0, out.decode()


@pytest.mark.kafka
async def test_parts_in_worker_processes_merge_into_one_report(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL_FLEET.replace('"4s"', '"3s"'))
    common = [
        "loadtest", "run", gateway.url(""), "--scenario", str(scenario), "--stations", "40",
        "--parts", "2", "--processes", "2", "--station-id", "LT-PARTS-{n:03d}", "--no-progress",
        "--slo", "errors<=0",
    ]  # fmt: skip
    (status0, out0), (status1, out1) = await asyncio.gather(
        _csms(*common, "--part", "0", "--report", str(tmp_path / "part-{part}.json"), "--html", ""),
        # the part index from the environment, as in a Kubernetes indexed Job
        _csms(*common, "--report", str(tmp_path / "part-{part}.json"), "--html", "",
              env={"JOB_COMPLETION_INDEX": "1"}),
    )  # fmt: skip
    assert status0 == 0, out0
    assert status1 == 0, out1
    assert "PASS errors<=0" in out0

    parts = [str(tmp_path / "part-0.json"), str(tmp_path / "part-1.json")]
    status, out = await _csms(
        "loadtest", "merge", *parts, "--report", str(tmp_path / "all.json"),
        "--html", str(tmp_path / "all.html"), "--slo", "p99<5s", "--slo", "errors<=0",
    )  # fmt: skip
    assert status == 0, out
    merged = json.loads((tmp_path / "all.json").read_text())
    assert merged["stations"] == 40
    assert merged["parts"] == [f"part {k}/2 process {j}/2" for k in (0, 1) for j in (0, 1)]
    assert merged["connects"]["connected"] == 40
    assert merged["errors"] == {}
    assert merged["summary"]["actions"]["BootNotification"]["answered"] == 40
    assert merged["generator"]["processes"] == 4
    assert (tmp_path / "all.html").read_text().count("<svg") == 4

    status, out = await _csms("loadtest", "merge", *parts, "--report", str(tmp_path / "x.json"),
                              "--html", "", "--slo", "p50<1us")  # fmt: skip
    assert status == 1, out
    assert "FAIL p50<1us" in out


async def test_a_mistake_in_the_command_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[calls]\nrate = -1\n")
    status, out = await _csms("loadtest", "run", "ws://127.0.0.1:1/", "--scenario", str(bad))
    assert status == 2
    assert "bad.toml: calls.rate: expected a number >= 0, got -1" in out
    status, out = await _csms("loadtest", "run", "ws://127.0.0.1:1/", "--slo", "p99 50ms")
    assert status == 2
    assert "expected [ACTION:]METRIC OP VALUE" in out


@pytest.mark.kafka
async def test_sigterm_ends_the_run_early_with_a_report(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    scenario = tmp_path / "long.toml"
    scenario.write_text(SMALL_FLEET.replace('"4s"', '"10m"'))
    child = await asyncio.create_subprocess_exec(
        *CSMS, "loadtest", "run", gateway.url(""), "--scenario", str(scenario),
        "--stations", "20", "--processes", "2", "--station-id", "LT-TERM-{n:03d}",
        "--report", str(tmp_path / "r.json"), "--html", "", "--no-progress",
        env=csms_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    await asyncio.sleep(6)  # the workers start in 3 s, then run a while
    child.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, out.decode()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["generator"]["processes"] == 2
    assert report["summary"]["actions"]["BootNotification"]["answered"] == 20
    assert report["errors"] == {}
    assert report["summary"]["duration_s"] < 30


async def test_a_connect_that_hangs_is_abandoned_with_its_socket() -> None:
    """A CSMS whose accept queue is full drops SYNs: the connect hangs, times out, and is
    retried; the abandoned attempt's socket must be closed, or retries pile up to EMFILE."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        fleet = Fleet(
            plan(f"ws://127.0.0.1:{port}/ocpp/", FAILING, 5, duration=2.5,
                 connect_timeout=0.2, reconnect_backoff=0.1, reconnect_backoff_max=0.1)
        )  # fmt: skip

        async def open_files_late() -> int:
            await asyncio.sleep(2.0)
            return len(os.listdir("/proc/self/fd"))

        before = len(os.listdir("/proc/self/fd"))
        report, during = await asyncio.gather(fleet.run(), open_files_late())
        for s in fillers:
            s.close()
    timeouts = report.errors.get("connect:timeout", 0)
    assert timeouts >= 20  # 5 stations, an attempt every ~0.3 s
    assert during - before <= 10  # at most one socket per station, not one per attempt
