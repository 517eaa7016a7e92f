"""``csms up`` keeps its workers running: one killed is started again, the gateway stays up."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import pytest
from ocpp.v16 import call as call16

from contracts.bus.broker import free_port
from gateway.up import Restarts
from tests.support.processes import CsmsProcess, children, pid_alive, wait_until
from tests.support.stations import connect16, station_id


def test_a_worker_failing_at_once_is_started_again_later_each_time_then_given_up() -> None:
    restarts = Restarts(first=1, longest=8, steady=60, limit=5)
    assert [restarts.exited(ran_for=2) for _ in range(6)] == [1, 2, 4, 8, 8, None]


def test_a_steady_run_starts_the_count_again() -> None:
    restarts = Restarts(first=1, longest=30, steady=60, limit=3)
    assert [restarts.exited(ran_for=1) for _ in range(3)] == [1, 2, 4]
    assert restarts.exited(ran_for=600) == 1
    assert restarts.exited(ran_for=1) == 2


def _free_run(length: int = 4) -> int:
    """A free port followed by free ones (``csms up`` gives its workers the next ports)."""
    while True:
        port = free_port()
        try:
            for offset in range(1, length):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port


def _worker_pid(up: CsmsProcess) -> int | None:
    assert up.process is not None
    for pid in children(up.process.pid):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"worker" in command and b"sessions" in command:
            return pid
    return None


def _gateway_pid(up: CsmsProcess) -> int:
    assert up.process is not None
    for pid in children(up.process.pid):
        if b"gateway" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
            return pid
    raise AssertionError("no gateway process")


@pytest.mark.kafka
async def test_csms_up_starts_a_killed_worker_again() -> None:
    port, status = free_port(), _free_run()
    up = CsmsProcess(
        "up",
        *("--port", str(port), "--status-port", str(status)),
        *("--broker-port", str(free_port()), "--partitions", "2"),
        # a receiver makes csms up run the notifier too (nobody listens there: it retries)
        env={"CSMS_ALERTS_WEBHOOKS": f"nobody=http://127.0.0.1:{free_port()}/"},
    )
    with up:
        up.wait_for(r"csms up: connect chargers", 240)
        up.wait_for(
            r"running: gateway, worker alerts, worker sessions(, worker \w+)*, alerts notify", 5
        )
        gateway, first = _gateway_pid(up), _worker_pid(up)
        assert first is not None
        up.status_port = int(  # the sessions worker's
            up.wait_for(
                r"csms worker sessions: group \S+ on ocpp.events.v1; status on port (\d+)", 30
            )[1]
        )
        assert up.status("/readyz")[0] == 200
        os.kill(first, signal.SIGKILL)
        up.wait_for(r"csms up: worker sessions exited with -9; starting it again in 1 s", 30)
        assert wait_until(lambda: _worker_pid(up) not in (None, first), 30), up.output
        assert wait_until(lambda: _ready(up), 90), up.output
        assert pid_alive(gateway) and _gateway_pid(up) == gateway
        async with connect16(f"ws://127.0.0.1:{port}/ocpp/{station_id('UP')}") as station:
            await station.call(call16.Authorize(id_tag="ANYONE"))
        assert wait_until(
            lambda: up.metric("csms_worker_replies_total", {"outcome": "sent"}) >= 1, 30
        ), up.output
        assert up.returncode() is None
        assert not re.search(r"stopping", up.output)


def _ready(up: CsmsProcess) -> bool:
    try:
        return up.status("/readyz")[0] == 200
    except OSError:
        return False
