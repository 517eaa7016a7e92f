"""Many connections ending at once: state changes at once, reports go out a slice at a time.

A network outage resets thousands of sockets in one event-loop iteration. The
gateway forgets them at once (the connection table, presence), then writes their
``disconnected`` events and log lines a slice per loop iteration, so that the
stations coming back and the answers waiting for Kafka are served in between.
The gateway runs in this process (its publisher on the session's broker, a
listening socket), with real websocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import pytest
from prometheus_client import CollectorRegistry

from contracts.bus.clients import producer
from contracts.bus.publisher import Publisher
from contracts.envelopes import StationEvent, decode_disconnected_payload, decode_event
from contracts.service.runtime import ServiceSettings
from contracts.topics import EVENTS, PRESENCE
from gateway.auth import Authenticator, AuthSettings
from gateway.metrics import GatewayMetrics
from gateway.registry import StationRegistry
from gateway.server import DEPARTURES_PER_ITERATION, Gateway
from gateway.settings import GatewaySettings
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect_raw

STATIONS = 2 * DEPARTURES_PER_ITERATION + 50


async def test_a_mass_disconnect_is_reported_a_slice_per_loop_iteration(
    kafka: KafkaUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    settings = GatewaySettings(
        kafka=kafka.settings,
        service=ServiceSettings(instance=f"gw-{uuid.uuid4().hex[:6]}"),
        auth=AuthSettings(allow_unknown_stations=True, handshake_burst=10 * STATIONS),
    )
    client = producer(kafka.settings, "test-departures")
    await client.start()
    publisher = Publisher(client, linger=settings.linger)
    await publisher.start(EVENTS.name, PRESENCE.name)
    registry = StationRegistry(kafka.settings, client_id="test-departures-stations")
    await registry.start()
    assert await registry.wait_caught_up(30)
    gateway = Gateway(
        settings,
        publisher=publisher,
        authenticator=Authenticator(registry, settings.auth),
        metrics=GatewayMetrics(CollectorRegistry()),
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: gateway.new_connection(tls=False), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    names = [f"CP-{uuid.uuid4().hex[:8]}" for _ in range(STATIONS)]
    try:
        async with Collector(kafka, EVENTS.name) as events, contextlib.AsyncExitStack() as stack:
            for name in names:
                await stack.enter_async_context(
                    connect_raw(f"ws://127.0.0.1:{port}/ocpp/{name}", "ocpp1.6")
                )
            assert len(gateway.connections) == STATIONS
            caplog.set_level(logging.INFO, logger="gateway")

            def lines() -> int:
                return sum(1 for r in caplog.records if r.getMessage() == "station.disconnected")

            # what the gateway had done each time the loop came back to other work
            seen: list[tuple[int, int]] = []

            def look() -> None:
                seen.append((len(gateway.connections), lines()))
                if lines() < STATIONS and len(seen) < 10:
                    loop.call_soon(look)

            for connection in list(gateway.connections.values()):
                assert connection.transport is not None
                connection.transport.abort()  # their connection_lost all run in one iteration
            loop.call_soon(look)
            while lines() < STATIONS and len(seen) < 10:
                await asyncio.sleep(0.01)

            # forgotten at once, reported a slice per iteration with other work in between
            assert seen[:4] == [
                (0, 0),
                (0, DEPARTURES_PER_ITERATION),
                (0, 2 * DEPARTURES_PER_ITERATION),
                (0, STATIONS),
            ]
            # and nothing is lost: every station's disconnected event reaches Kafka, once
            mine = set(names)

            def ended() -> list[StationEvent]:
                return [
                    event
                    for event in (decode_event(r.value) for r in events.records)
                    if event.station_id in mine and event.kind == "disconnected"
                ]

            await events.wait_for(
                lambda rs: len(ended()) >= STATIONS, what="a disconnected event per station"
            )
            assert sorted(e.station_id for e in ended()) == sorted(names)
            assert {decode_disconnected_payload(e.payload).close_code for e in ended()} == {1006}
    finally:
        server.close()
        await publisher.stop()
        await registry.stop()
        await client.stop()
