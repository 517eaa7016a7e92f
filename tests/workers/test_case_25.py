"""RELIABILITY 25: a worker killed before committing, or while partitions move, changes nothing.

Real processes: a gateway, and ``csms worker sessions`` killed with SIGKILL in
the middle of two sessions (one OCPP 1.6, one 2.0.1), then started again in the
same group. Either nothing was checkpointed yet (everything is handled again
from where the group started) or some was (the rest is handled again from the last
checkpoint). Afterwards every session completes with the right energy, the 1.6
transaction keeps the id the station was given, and every record written twice
is the same record.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ocpp.v16 import call as call16

from contracts.envelopes import decode_session
from contracts.headers import read_headers
from contracts.topics import SESSIONS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect16, connect201, station_id
from tests.workers.calls import at, register, transaction_event
from tests.workers.flow import Charging, assert_exact, flowing
from tests.workers.inprocess import station_on
from tests.workers.processes import WorkerProcess, commit_at_end

pytestmark = pytest.mark.kafka


def _resumed_at(output: str) -> list[int | None]:
    """Where the worker resumed each partition, from its partitions_assigned log line."""
    for line in output.splitlines():
        if '"msg":"worker.partitions_assigned"' in line:
            return list(json.loads(line)["resume_at"].values())
    raise AssertionError(f"no partitions_assigned line in:\n{output}")


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    with GatewayProcess(kafka) as process:
        yield process


@pytest.mark.parametrize("checkpoint_interval", ["3600", "0.2"], ids=["none", "some"])
async def test_case_25_a_worker_killed_before_committing_changes_nothing(
    kafka: KafkaUnderTest, gateway: GatewayProcess, checkpoint_interval: str
) -> None:
    group = f"test-case-25-{uuid.uuid4().hex[:8]}"
    await commit_at_end(kafka, group)  # not the earlier tests' events: only this test's
    old, new = station_id("K16"), station_id("K201")
    transaction = str(uuid.uuid4())
    tag = "ANYONE"  # unknown tokens are accepted by these workers
    id_token = {"id_token": tag, "type": "ISO14443"}

    def event(event_type: str, seq_no: int, minutes: float, wh: float, **fields: Any) -> Any:
        meter = register(minutes, wh)
        return transaction_event(
            event_type, seq_no, minutes, transaction, meter_value=meter, **fields
        )

    def meter(minutes: float, wh: int) -> call16.MeterValues:
        readings = register(minutes, str(wh))
        return call16.MeterValues(connector_id=1, transaction_id=number, meter_value=readings)

    async with (
        Collector(kafka, SESSIONS.name) as sessions,
        connect16(gateway.url(old)) as cp16,
        connect201(gateway.url(new)) as cp201,
    ):
        # static members: the second takes the killed one's place without waiting out its session
        member = {"CSMS_INSTANCE": "case-25", "CSMS_WORKER_STATIC_MEMBERSHIP": "true"}
        first = WorkerProcess(
            kafka,
            group=group,
            CSMS_ALLOW_UNKNOWN_ID_TOKENS="true",
            CSMS_WORKER_CHECKPOINT_INTERVAL=checkpoint_interval,
            **member,
        ).start()
        try:
            first.wait_assigned()
            started = await cp16.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=tag, meter_start=1000, timestamp=at(0)
                )
            )
            number = started.transaction_id
            answered = await cp201.call(
                event("Started", 0, 0, 50_000, id_token=id_token, evse={"id": 1})
            )
            assert answered.id_token_info["status"] == "Accepted"
            await cp16.call(meter(5, 1400))
            await cp201.call(event("Updated", 1, 5, 51_000))
            await sessions.wait_for(
                lambda rs: len(sessions.keyed(old)) >= 2 and len(sessions.keyed(new)) >= 2,
                what="both sessions started and updated",
            )
            if checkpoint_interval == "0.2":  # the variant killed after it checkpointed
                await _until(lambda: first.metric("csms_worker_checkpoints_total") > 0)
        finally:
            first.signal(signal.SIGKILL)
            first.wait()
            first.stop()
        # the gateway answers these itself: the station does not notice the dead worker
        await cp16.call(meter(10, 1800))
        await cp201.call(event("Updated", 2, 10, 52_000))
        with WorkerProcess(
            kafka, group=group, CSMS_ALLOW_UNKNOWN_ID_TOKENS="true", **member
        ) as second:
            second.wait_assigned()
            stopped = await cp16.call(
                call16.StopTransaction(meter_stop=2000, timestamp=at(15), transaction_id=number)
            )
            assert stopped.id_tag_info is None
            await cp201.call(event("Ended", 3, 15, 53_500))
            await sessions.wait_for(
                lambda rs: all(
                    any(decode_session(r.value).event == "completed" for r in sessions.keyed(s))
                    for s in (old, new)
                ),
                what="both sessions completed",
            )
            resumed = _resumed_at(second.output)
    # the second worker restored the first one's checkpoints, if it wrote any
    assert any(offset is not None for offset in resumed) == (checkpoint_interval == "0.2")
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for record in sessions.keyed(old) + sessions.keyed(new):
        by_id[read_headers(record.headers).ce_id or ""].add(record.value)
    assert all(len(values) == 1 for values in by_id.values()), "a record changed on replay"
    written = len(sessions.keyed(old) + sessions.keyed(new))
    if checkpoint_interval == "3600":
        assert written > len(by_id)  # records were written again, identical
    distinct = [decode_session(next(iter(values))) for values in by_id.values()]
    assert sorted((r.station_id, r.event, r.energy_wh) for r in distinct) == sorted(
        [
            (old, "started", 0.0),
            (old, "updated", 400.0),
            (old, "updated", 800.0),
            (old, "completed", 1000.0),
            (new, "started", 0.0),
            (new, "updated", 1000.0),
            (new, "updated", 2000.0),
            (new, "completed", 3500.0),
        ]
    )
    assert {r.transaction_id for r in distinct if r.station_id == old} == {str(number)}


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_case_25_a_worker_killed_while_partitions_move_changes_nothing(
    kafka: KafkaUnderTest,
) -> None:
    """Two workers in a group: the first is killed while it hands partitions to the second.

    Stations charge session after session throughout. The second worker joins;
    while the first checkpoints the partitions it lets go, it is SIGKILLed. The
    survivor ends up with every partition, restored from the changelog: every
    call is answered once, every session has its exact energy, no record is
    written twice with different contents.
    """
    group = f"test-case-25-{uuid.uuid4().hex[:8]}"
    await commit_at_end(kafka, group)
    stations = [station_on(p, f"R{p}") for p in range(TEST_PARTITIONS) for _ in range(2)]
    env = {"CSMS_ALLOW_UNKNOWN_ID_TOKENS": "true"}
    async with flowing(kafka) as (calls, _, sessions):
        with WorkerProcess(kafka, group=group, **env) as first:
            first.wait_assigned()
            charging = Charging(calls, stations).start()
            await asyncio.sleep(3)
            with WorkerProcess(kafka, group=group, **env) as second:
                # the second joined: the group rebalances, the first checkpoints what it lets go
                await asyncio.to_thread(second.wait_for, r'"msg":"worker.started"', 60)
                first.signal(signal.SIGKILL)
                first.wait()
                await asyncio.to_thread(second.wait_assigned, 1, 60)
                await asyncio.sleep(5)
                expected = await charging.finish()
                await assert_exact(sessions, stations, expected)
                assert second.returncode() is None, second.output
                owned = await _until_owned(second)
        replies = calls.replies()
    assert owned == TEST_PARTITIONS
    assert all(len(runs) >= 2 for runs in charging.done.values())  # before and after the kill
    assert all(len(found) == 1 for found in replies.values()), "a call got two answers"


async def _until_owned(worker: WorkerProcess) -> int:
    """The partitions ``worker`` owns once it owns them all (its csms_worker_partitions)."""
    await _until(lambda: worker.metric("csms_worker_partitions") == TEST_PARTITIONS, 60)
    return int(worker.metric("csms_worker_partitions"))
