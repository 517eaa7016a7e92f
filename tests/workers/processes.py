"""``csms worker NAME`` as a real process, and a new group placed at the end of the events."""

from __future__ import annotations

import asyncio
import time
import uuid

from contracts.bus.clients import assign_all, consumer, seek_to_end
from contracts.topics import EVENTS
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CsmsProcess


async def commit_at_end(kafka: KafkaUnderTest, group: str) -> None:
    """Commit ``group``'s offsets at the end of ocpp.events.v1, as if it had read it all.

    A new group starts at the earliest event; on the session's broker that is
    everything every earlier test wrote. A test's group starts after it instead
    (a partition with no checkpoint resumes at the committed offset).
    """
    client = consumer(kafka.settings, f"{group}-placer", group_id=group)
    await client.start()
    try:
        partitions = await assign_all(client, EVENTS.name)
        await seek_to_end(client, partitions)
        await client.commit({tp: await client.position(tp) for tp in partitions})
    finally:
        await client.stop()


def group_timeouts(kafka: KafkaUnderTest) -> dict[str, float]:
    """The shortest group timeouts Kafka accepts (group.min.session.timeout.ms is 6 s)."""
    return {"session_timeout": 6.0, "heartbeat_interval": 1.0}


class WorkerProcess(CsmsProcess):
    """``csms worker NAME`` (sessions unless told) on the session's broker, a group of its own."""

    def __init__(
        self,
        kafka: KafkaUnderTest,
        *,
        group: str | None = None,
        worker: str = "sessions",
        **env: str,
    ) -> None:
        """A worker in ``group``, or in a new group that starts at the end of the events."""
        if group is None:
            group = f"test-{worker}-{uuid.uuid4().hex[:8]}"
            asyncio.run(commit_at_end(kafka, group))
        self.group = group
        timeouts = group_timeouts(kafka)
        environment = kafka.env() | {
            "CSMS_WORKER_GROUP": self.group,
            "CSMS_INSTANCE": f"worker-{uuid.uuid4().hex[:6]}",
            "CSMS_WORKER_CHECKPOINT_INTERVAL": "0.2",
            "CSMS_WORKER_SESSION_TIMEOUT": str(timeouts["session_timeout"]),
            "CSMS_WORKER_HEARTBEAT_INTERVAL": str(timeouts["heartbeat_interval"]),
        }
        environment.update(env)
        super().__init__("worker", worker, "--status-port", "0", env=environment)

    def start(self) -> WorkerProcess:
        super().start()
        self.status_port = int(self.wait_for(r"status on port (\d+)", 60)[1])
        return self

    def wait_assigned(self, count: int = 1, timeout: float = 30) -> None:
        """Wait until the worker restored its ``count``-th partition assignment."""
        deadline = time.monotonic() + timeout
        while self.output.count('"msg":"worker.partitions_assigned"') < count:
            assert time.monotonic() < deadline, f"no partitions assigned; output:\n{self.output}"
            assert self.returncode() is None, f"the worker exited; output:\n{self.output}"
            time.sleep(0.05)
