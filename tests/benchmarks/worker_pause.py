"""The pause after a sessions worker dies: SIGKILL to the next reply, per way of coming back.

    .venv/bin/python -m tests.benchmarks.worker_pause [--runs 3] [--json out.json]

On one local Kafka node, a prober sends an Authorize call for a station on
each partition of ocpp.events.v1 every 200 ms and reads the replies on
ocpp.commands.v1. A worker (``csms worker sessions``) is SIGKILLed; the pause
is from the kill to the first reply to a call sent after it, on the partition
that comes back last. Ways of coming back:

- ``restarted, dynamic``: a new process in the same group 1 s after the kill
  (as ``csms up`` does), a new member: the group waits for the dead member's
  session timeout (CSMS_WORKER_SESSION_TIMEOUT) before it gives the partitions;
- ``restarted, static``: the same with CSMS_WORKER_STATIC_MEMBERSHIP and the
  same instance name: the new process takes the dead member's place at once;
- ``survivor``: two workers in the group, one killed and not restarted: its
  partitions go to the other after the session timeout.

Each with the default session timeout (10 s) and with 6 s (Kafka's minimum
by default, group.min.session.timeout.ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import time
import uuid
from typing import Any

from contracts.envelopes import StationEvent, decode_command
from contracts.topics import COMMANDS
from tests.benchmarks import _support as support
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest
from tests.support.records import Collector
from tests.workers.flow import Calls, ask_call
from tests.workers.inprocess import station_on
from tests.workers.processes import WorkerProcess, commit_at_end

PROBE_EVERY = 0.2  # seconds between two rounds of calls
RESTART_AFTER = 1.0  # seconds, as csms up


class Prober:
    """Authorize calls for a station per partition, every PROBE_EVERY seconds, and their replies."""

    def __init__(self, calls: Calls, commands: Collector) -> None:
        self.calls = calls
        self.commands = commands
        self.stations = [station_on(p, "PAUSE") for p in range(TEST_PARTITIONS)]
        self.sent: dict[str, tuple[int, float]] = {}  # message id: partition, time sent
        self.answered: dict[str, float] = {}  # message id: time its reply was read
        self.stored: dict[str, float] = {}  # message id: time Kafka acknowledged the call's event
        self._seen = 0

    async def run(self) -> None:
        sending: set[asyncio.Task[None]] = set()  # a send waits while its leader is away
        try:
            while True:
                for partition, station in enumerate(self.stations):
                    event = ask_call(station, "Authorize", {"idTag": "ANYONE"})
                    self.sent[event.message_id] = (partition, time.monotonic())
                    task = asyncio.create_task(self._send(event))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                self._read()
                await asyncio.sleep(PROBE_EVERY)
        finally:
            for task in sending:
                task.cancel()

    async def _send(self, event: StationEvent) -> None:
        await self.calls.send(event)
        self.stored[event.message_id] = time.monotonic()

    def longest_by_partition(self, start: float, end: float) -> dict[int, float]:
        """Per partition, the longest time from an event stored to its reply read, of the calls
        sent between ``start`` and ``end`` (the wait of the worker's side alone)."""
        found: dict[int, float] = {}
        for message_id, (partition, sent) in self.sent.items():
            if start <= sent <= end and message_id in self.answered:
                wait = self.answered[message_id] - self.stored.get(message_id, sent)
                found[partition] = max(found.get(partition, 0.0), wait)
        return found

    def latencies(self, start: float, end: float) -> tuple[list[float], int]:
        """Reply times of the calls sent between ``start`` and ``end``, and how many got none."""
        self._read()
        sent = [(m, t) for m, (_, t) in self.sent.items() if start <= t <= end]
        found = [self.answered[m] - t for m, t in sent if m in self.answered]
        return found, len(sent) - len(found)

    def _read(self) -> None:
        now = time.monotonic()
        records = self.commands.records
        for record in records[self._seen :]:
            message_id = decode_command(record.value).message_id
            if message_id in self.sent:
                self.answered.setdefault(message_id, now)
        self._seen = len(records)

    def back_after(self, killed: float) -> float | None:
        """Seconds from ``killed`` until every partition answered a call sent after it."""
        self._read()
        first: dict[int, float] = {}
        for message_id, (partition, sent) in self.sent.items():
            answered = self.answered.get(message_id)
            if sent > killed and answered is not None:
                first[partition] = min(first.get(partition, answered), answered)
        if len(first) < TEST_PARTITIONS:
            return None
        return max(first.values()) - killed


def _worker(kafka: KafkaUnderTest, group: str, instance: str, env: dict[str, str]) -> WorkerProcess:
    return WorkerProcess(
        kafka, group=group, CSMS_INSTANCE=instance, CSMS_ALLOW_UNKNOWN_ID_TOKENS="true", **env
    )


async def _started(stack: contextlib.ExitStack, worker: WorkerProcess) -> WorkerProcess:
    """Start ``worker`` in a thread (the prober goes on meanwhile); stopped with ``stack``."""
    return await asyncio.to_thread(stack.enter_context, worker)


async def one_run(kafka: KafkaUnderTest, prober: Prober, way: str, session_timeout: float) -> float:
    group = f"bench-pause-{uuid.uuid4().hex[:8]}"
    await commit_at_end(kafka, group)
    env = {
        "CSMS_WORKER_SESSION_TIMEOUT": str(session_timeout),
        "CSMS_WORKER_HEARTBEAT_INTERVAL": "1",
        "CSMS_WORKER_STATIC_MEMBERSHIP": "true" if way == "restarted, static" else "false",
    }
    with contextlib.ExitStack() as stack:
        first = await _started(stack, _worker(kafka, group, "pause-a", env))
        await asyncio.to_thread(first.wait_assigned, 1, 60)
        if way == "survivor":
            other = await _started(stack, _worker(kafka, group, "pause-b", env))
            await asyncio.to_thread(other.wait_assigned, 1, 60)
            await asyncio.to_thread(first.wait_assigned, 2, 60)  # the partitions were shared
        await asyncio.sleep(3)
        killed = time.monotonic()
        first.signal(signal.SIGKILL)
        if way != "survivor":
            await asyncio.sleep(RESTART_AFTER)
            await _started(stack, _worker(kafka, group, "pause-a", env))
        async with asyncio.timeout(120):
            while (pause := prober.back_after(killed)) is None:
                await asyncio.sleep(0.05)
        return pause


async def measure(kafka: KafkaUnderTest, runs: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Calls(kafka, commands) as calls,
    ):
        prober = Prober(calls, commands)
        probing = asyncio.create_task(prober.run())
        try:
            for session_timeout in (10.0, 6.0):
                for way in ("restarted, dynamic", "restarted, static", "survivor"):
                    name = f"{way}, session timeout {session_timeout:g} s"
                    found[name] = [
                        await one_run(kafka, prober, way, session_timeout) for _ in range(runs)
                    ]
                    print(name, [round(p, 2) for p in found[name]], flush=True)
        finally:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kills per way of coming back")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with support.broker() as (kafka, _):
        pauses = asyncio.run(measure(kafka, args.runs))
    results["pause_seconds"] = pauses
    support.finish(
        [
            [name, f"{statistics.median(p):.1f}", f"{min(p):.1f} - {max(p):.1f}"]
            for name, p in pauses.items()
        ],
        results,
        args.json,
        headers=("worker killed, then", "pause median (s)", "range (s)"),
    )


if __name__ == "__main__":
    main()
