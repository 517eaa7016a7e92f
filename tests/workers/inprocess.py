"""Workers run in this process on the session's broker; events written as the gateway does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from contracts.bus.publisher import partition_for
from contracts.envelopes import StationEvent, encode_event, record_key
from contracts.headers import event_headers
from contracts.service.runtime import ServiceSettings
from contracts.topics import EVENTS
from tests.support.kafka import TEST_PARTITIONS, KafkaUnderTest
from tests.workers.harness import station_event
from tests.workers.processes import commit_at_end, group_timeouts
from workers.runtime.settings import WorkerSettings
from workers.runtime.worker import Worker
from workers.sessions.service import build
from workers.sessions.settings import SessionsSettings


async def sessions_settings(kafka: KafkaUnderTest, **worker: Any) -> SessionsSettings:
    """Settings for workers of a new group (a changelog of its own) starting at the end."""
    fields: dict[str, Any] = {
        "kafka": kafka.settings,
        "service": ServiceSettings(instance=f"test-{uuid.uuid4().hex[:6]}", status_port=0),
        "group": f"test-sessions-{uuid.uuid4().hex[:8]}",
        "checkpoint_interval": 0.2,
        **group_timeouts(kafka),
    }
    fields.update(worker)
    await commit_at_end(kafka, fields["group"])
    return SessionsSettings(worker=WorkerSettings(**fields), allow_unknown_id_tokens=True)


@contextlib.asynccontextmanager
async def running(
    settings: SessionsSettings, *, partitions: int = 1
) -> AsyncIterator[Worker[Any, Any]]:
    """A started sessions worker that owns at least ``partitions`` partitions; stopped after."""
    worker = build(settings, CollectorRegistry())
    try:
        await worker.start()
    except BaseException:
        await worker.close()
        raise
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(30):
            while len(worker.owned) < partitions:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        yield worker
    finally:
        worker.request_stop()
        with contextlib.suppress(Exception):
            await task
        await worker.close()


def station_on(partition: int, prefix: str = "CP") -> str:
    """A new station id whose events land on ``partition`` of ocpp.events.v1."""
    while True:
        station = f"{prefix}-{uuid.uuid4().hex[:10]}"
        if partition_for(record_key(station), TEST_PARTITIONS) == partition:
            return station


def call(station: str, action: str, payload: dict[str, Any], **fields: Any) -> StationEvent:
    """The event the gateway writes for a station's call, received now."""
    return station_event(station, action, payload, received_at=datetime.now(UTC), **fields)


async def publish(
    kafka: KafkaUnderTest, *events: StationEvent, raw: list[tuple[str, bytes, str]] = ()
) -> None:
    """Write events to ocpp.events.v1 (and ``raw`` (station, value, action) records as they are)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                EVENTS.name,
                encode_event(event),
                key=record_key(event.station_id),
                headers=event_headers(event),
            )
        for station, value, action in raw:
            await producer.send_and_wait(
                EVENTS.name,
                value,
                key=record_key(station),
                headers=[("ocpp-action", action.encode())],
            )
    finally:
        await producer.stop()
