"""A sessions worker killed during a rebalance, under steady load on a three-node Kafka.

Two workers share the sessions group; a third joins, and one of the first two is
killed (SIGKILL) the moment it has released its partitions for the rebalance the
join started. Authorize keeps flowing: calls answered before the survivors own
every partition get the gateway's fallback (CALLERROR after its reply timeout),
never a CALLRESULT for an event that is not on ocpp.events.v1.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid

import pytest

from tests.faults.conftest import Cluster
from tests.faults.harness import (
    WITH_AUTHORIZE,
    Recorder,
    authorize_stall,
    station_ids,
    steady_load,
    verify,
)
from tests.support.gateway import GatewayProcess
from tests.support.kafka import TEST_PARTITIONS
from tests.support.processes import wait_until
from tests.workers.processes import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

RELEASED = '"msg":"worker.partitions_released"'
ASSIGNED = '"msg":"worker.partitions_assigned"'


async def test_worker_killed_during_a_rebalance(
    cluster: Cluster, record_property: Recorder
) -> None:
    names = station_ids(30, TEST_PARTITIONS)
    group = f"faults-sessions-{uuid.uuid4().hex[:6]}"
    env = {"CSMS_ALLOW_UNKNOWN_ID_TOKENS": "true"}
    joiner = WorkerProcess(cluster.kafka, group=group, **env)  # started during the load
    with (
        contextlib.ExitStack() as stack,
        GatewayProcess(cluster.kafka) as gateway,
        WorkerProcess(cluster.kafka, group=group, **env) as first,
        WorkerProcess(cluster.kafka, group=group, **env) as victim,
    ):
        stack.push(joiner)  # stopped and removed at the end, like the others
        first.wait_assigned()
        victim.wait_assigned()
        assert wait_until(lambda: first.output.count(ASSIGNED) >= 2, timeout=30), first.output
        async with steady_load(
            cluster.kafka, gateway, names, commands=True, actions=WITH_AUTHORIZE
        ) as (fleet, cmds, _):
            await asyncio.sleep(5.0)
            released = victim.output.count(RELEASED)
            await asyncio.to_thread(joiner.start)  # its join starts a rebalance
            assert await asyncio.to_thread(
                wait_until, lambda: victim.output.count(RELEASED) > released, 60, 0.01
            ), victim.output
            victim.signal(signal.SIGKILL)
            killed = time.monotonic()
            # the survivors own every partition once the group has dropped the victim
            await asyncio.to_thread(joiner.wait_assigned, 1, 60)
            await asyncio.sleep(20.0)
        assert gateway.returncode() is None, gateway.output
        assert first.returncode() is None, first.output
        assert joiner.returncode() is None, joiner.output
    assert victim.returncode() == -signal.SIGKILL
    assert fleet.ledger.answered_between(killed + 15.0, time.monotonic(), "Authorize") > 0
    await verify(
        cluster.kafka,
        "worker killed in a rebalance",
        fleet,
        cmds,
        record=record_property,
        extra={
            "Authorize answered": len(fleet.ledger.results("Authorize")),
            "longest Authorize stall (s)": round(authorize_stall(fleet), 2),
            "Authorize refused (fallback)": sum(
                1 for c in fleet.ledger.calls if c.action == "Authorize" and c.kind == "error"
            ),
        },
    )
