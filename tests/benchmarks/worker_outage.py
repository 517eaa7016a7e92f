"""A Kafka broker lost for 25 s under a sessions worker: how long calls wait for their replies.

    .venv/bin/python -m tests.benchmarks.worker_outage [--down 25] [--json out.json]

A local Apache Kafka of three nodes (replication factor 3, min.insync.replicas
2), every csms topic and one ``csms worker sessions``; the prober of
``tests.benchmarks.worker_pause`` sends an Authorize call for a station on
each partition every 200 ms. After 5 s the broker leading the worker's
changelog partition 0 is SIGKILLed (or SIGSTOPped) for ``--down`` seconds,
then restarted (or thawed); 15 s later the calls stop. Reported for the calls
sent from 1 s before the fault to the end: the longest wait for a reply, the
median, the calls never answered, and whether the worker process is still
running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from typing import Any

from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import LocalKafka
from contracts.bus.clients import admin_client, assign_all, consumer, seek_to_end
from contracts.topics import COMMANDS
from tests.benchmarks import _support as support
from tests.benchmarks.worker_pause import Prober
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest
from tests.workers.flow import Calls
from tests.workers.processes import WorkerProcess, commit_at_end
from workers.runtime.changelog import changelog_topic

BEFORE, AFTER = 5.0, 15.0  # seconds of calls before the fault and after the broker is back


class Replies:
    """Every record on ocpp.commands.v1 from now on, read by a consumer that asks for metadata
    every 3 s (the test Collector's consumer would wait for the lost broker's return)."""

    def __init__(self, kafka: KafkaUnderTest) -> None:
        self.records: list[Any] = []
        self._consumer = consumer(kafka.settings, "bench-replies")
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Replies:
        await self._consumer.start()
        await seek_to_end(self._consumer, await assign_all(self._consumer, COMMANDS.name))
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()


async def _leader(kafka: KafkaUnderTest, topic: str, partition: int) -> int:
    admin = admin_client(kafka.settings, "bench-admin")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    (leader,) = [p["leader"] for p in described["partitions"] if p["partition"] == partition]
    return int(leader)


async def one_fault(broker: LocalKafka, kafka: KafkaUnderTest, fault: str, down: float) -> Any:
    group = f"bench-outage-{uuid.uuid4().hex[:8]}"
    await commit_at_end(kafka, group)
    worker = WorkerProcess(kafka, group=group, CSMS_ALLOW_UNKNOWN_ID_TOKENS="true")
    with worker:
        await asyncio.to_thread(worker.wait_assigned, 1, 60)
        leader = await _leader(kafka, changelog_topic(group), 0)
        (node,) = [n for n in broker.brokers if n.node_id == leader]
        async with Replies(kafka) as commands, Calls(kafka, commands) as calls:  # type: ignore[arg-type]
            prober = Prober(calls, commands)
            probing = asyncio.create_task(prober.run())
            await asyncio.sleep(BEFORE)
            start = time.monotonic()
            if fault == "SIGKILL":
                node.kill()
                await asyncio.sleep(down)
                node.restart()
            else:
                node.freeze()
                await asyncio.sleep(down)
                node.thaw()
            await asyncio.sleep(AFTER)
            end = time.monotonic()
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
            with contextlib.suppress(TimeoutError):  # the last calls' replies
                async with asyncio.timeout(60):
                    while prober.latencies(start - 1, end)[1]:
                        await asyncio.sleep(0.2)
            waits, unanswered = prober.latencies(start - 1, end)
            by_partition = prober.longest_by_partition(start - 1, end)
        alive = worker.returncode() is None
    return {
        "fault": f"broker {leader} {fault}ed for {down:g} s",
        "longest_wait_s": max(waits),
        "median_wait_s": statistics.median(waits),
        "calls": len(waits) + unanswered,
        "unanswered": unanswered,
        "worker_alive": alive,
        "longest_wait_by_partition_s": by_partition,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=25.0, help="seconds the broker is away")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with LocalKafka(0, nodes=3) as broker:
        kafka = KafkaUnderTest("local", broker.kafka_settings())
        topics = TopicSettings(
            kafka=kafka.settings, partitions=TEST_PARTITIONS, replication_factor=3
        )
        asyncio.run(create_topics(topics))
        runs = [asyncio.run(one_fault(broker, kafka, f, args.down)) for f in ("SIGKILL", "SIGSTOP")]
    results["runs"] = runs
    support.finish(
        [
            [
                r["fault"],
                f"{r['longest_wait_s']:.1f}",
                f"{r['median_wait_s']:.2f}",
                f"{r['unanswered']} of {r['calls']}",
                "yes" if r["worker_alive"] else "no",
            ]
            for r in runs
        ],
        results,
        args.json,
        headers=("fault", "longest wait (s)", "median (s)", "unanswered", "worker running"),
    )


if __name__ == "__main__":
    main()
