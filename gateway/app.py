"""The gateway process: start everything in order, serve until SIGTERM, drain, stop in order.

Start: the Kafka producer and publisher, one consumer following the station
registry and presence (both caught up) and the command stream (from the end),
the offline responder, then the listeners, last, so that no station is accepted
before the gateway can serve it.

Drain on SIGTERM (ARCHITECTURE.md, "Guarantees"; RELIABILITY 28): readiness
turns false, the listeners stop accepting, in-flight calls are answered (or time
out), every socket is closed with 1001 spread over ``drain_close_period`` so the
stations do not all reconnect elsewhere at once, the disconnect events and
presence tombstones are published, and the producer is flushed, all within
``drain_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from contracts.bus.clients import publisher
from contracts.bus.follower import Follower
from contracts.envelopes import Presence, encode_presence, record_key
from contracts.headers import presence_headers
from contracts.service.runtime import ServiceRuntime, Stopping
from contracts.topics import COMMAND_RESULTS, COMMANDS, EVENTS, PRESENCE
from gateway.auth import Authenticator
from gateway.commands import CommandDelivery
from gateway.connection import CloseCode
from gateway.metrics import GatewayMetrics
from gateway.offline import OfflineResponder
from gateway.peers import Peers
from gateway.presence import PresenceView
from gateway.registry import StationRegistry
from gateway.server import Gateway
from gateway.settings import GatewaySettings
from gateway.tls import server_context

__all__ = ["GatewayApp", "serve"]

log = logging.getLogger("gateway")

HOUSEKEEPING_INTERVAL = 0.25
PING_SWEEP_SLICES = 10
KAFKA_PROBE_INTERVAL = 5.0  # readiness asks Kafka for metadata this often
KAFKA_PROBE_TIMEOUT = 3.0
STOP_STEP_TIMEOUT = 2.0  # each client's stop after the drain
OPEN_FILES_MARGIN = 100  # descriptors beyond the stations: Kafka, status port, files


class GatewayApp:
    """The gateway and everything around it, started and stopped in order."""

    def __init__(self, settings: GatewaySettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics(registry)
        instance = settings.resolved_instance_id()
        kafka = settings.kafka
        # one consumer for the stations, presence and commands: a third of the idle fetches
        self.follower = Follower(
            kafka,
            client_id=f"csms-gateway-{instance}-follower",
            fetch_max_wait=min(kafka.fetch_max_wait, kafka.table_fetch_max_wait),
        )
        self.stations = StationRegistry(
            kafka,
            on_change=lambda station_id, record: self.gateway.station_changed(station_id, record),
            follower=self.follower,
        )
        self.publisher = publisher(
            settings.kafka,
            f"csms-gateway-{instance}",
            linger=settings.linger,
            on_batch_acked=self._batch_acked,
        )
        self.producer = self.publisher.producer
        self.gateway = Gateway(
            settings,
            publisher=self.publisher,
            authenticator=Authenticator(self.stations, settings.auth),
            metrics=self.metrics,
        )
        self.presence = PresenceView(
            self.gateway.instance_id,
            local=self.gateway.connections.get,
            republish=self.publish_presence,
        )
        self.gateway.presence = self.presence
        self.delivery = CommandDelivery(self.gateway)
        self.gateway.commands = self.delivery
        self.presence_follower = self.follower.follow(PRESENCE.name, self.presence.on_records)
        self.command_follower = self.follower.follow(
            COMMANDS.name, self.delivery.on_records, from_beginning=False
        )
        self.offline = OfflineResponder(self.gateway, self.delivery, self.presence, settings.kafka)
        self.peers = Peers(
            self.producer.client,
            self.presence,
            gone_after=settings.gone_after,
            clear=self.gateway.publish_departed,
            holder_gone=self.offline.holder_gone,
        )
        self.servers: list[asyncio.Server] = []
        self._housekeeping: asyncio.Task[None] | None = None
        self.kafka_ok = False

    # ------------------------------------------------------------------ readiness

    def readiness(self) -> Mapping[str, bool]:
        kafka_ok = (
            self.kafka_ok and self.publisher.oldest_pending_age() < self.settings.kafka_ack_timeout
        )
        return {
            **self.gateway.readiness(),
            "kafka": kafka_ok,
            "station_registry": self.stations.caught_up,
            "presence": self.presence_follower.caught_up,
            "group": self.peers.in_group,
            "listening": bool(self.servers),
        }

    def _batch_acked(self, records: int, age: float, exc: BaseException | None) -> None:
        if exc is not None:
            self.kafka_ok = False
        self.metrics.kafka_batch_ack.observe(age)

    async def _probe_kafka(self) -> None:
        """Ask the cluster for metadata: Kafka is reachable (for readiness) when it answers."""
        try:
            async with asyncio.timeout(KAFKA_PROBE_TIMEOUT):
                answered = await self.producer.client.force_metadata_update()
        except (KafkaError, OSError, TimeoutError):
            answered = False
        if not answered:
            if self.kafka_ok:
                log.warning("gateway.kafka_unreachable")
            self.kafka_ok = False
        elif not self.kafka_ok:
            log.info("gateway.kafka_reachable")
            self.kafka_ok = True

    def publish_presence(self, presence: Presence) -> None:
        self.publisher.publish(
            PRESENCE.name,
            record_key(presence.station_id),
            encode_presence(presence),
            presence_headers(presence),
            lambda exc: None,
        )

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Start in order; while Kafka cannot be reached, keep trying (liveness stays green)."""
        settings = self.settings
        await _until_started("producer", self.producer.start, self.producer.stop)
        await self.publisher.start(EVENTS.name, PRESENCE.name, COMMAND_RESULTS.name)
        self.kafka_ok = True
        await _until_started(
            "stations, presence and command stream", self.follower.start, self.follower.stop
        )
        await _until_started("offline responder", self.offline.start, self.offline.stop)
        while not (
            await self.stations.wait_caught_up(10)
            and await self.presence_follower.wait_caught_up(10)
        ):
            log.warning("gateway.catching_up", extra={"stations": len(self.stations)})
        self.peers.start()  # first: the records an earlier process of this instance left
        loop = asyncio.get_running_loop()
        gateway = self.gateway
        self.servers.append(
            await loop.create_server(
                lambda: gateway.new_connection(tls=False),
                settings.host,
                settings.port,
                backlog=4096,
                reuse_port=settings.reuse_port or None,
            )
        )
        if settings.tls_port is not None:
            context = server_context(settings.tls)
            self.servers.append(
                await loop.create_server(
                    lambda: gateway.new_connection(tls=True),
                    settings.host,
                    settings.tls_port,
                    ssl=context,
                    backlog=4096,
                    reuse_port=settings.reuse_port or None,
                    ssl_handshake_timeout=settings.handshake_timeout,
                )
            )
        self._housekeeping = loop.create_task(self._housekeep(), name="gateway housekeeping")
        log.info(
            "gateway.started",
            extra={
                "instance": gateway.instance_id,
                "port": self.port,
                "tls_port": self.tls_port,
                "ocpp_versions": list(gateway.versions),
            },
        )

    @property
    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1]) if self.servers else 0

    @property
    def tls_port(self) -> int | None:
        if len(self.servers) < 2:
            return None
        return int(self.servers[1].sockets[0].getsockname()[1])

    async def _housekeep(self) -> None:
        last_ping = last_probe = 0.0
        probe: asyncio.Task[None] | None = None
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            now = time.monotonic()
            self.gateway.expire(now)
            if now - last_ping >= 1.0:
                # each connection is looked at every PING_SWEEP_SLICES seconds
                self.gateway.ping_sweep(now, PING_SWEEP_SLICES)
                self.gateway.log_refusals()
                last_ping = now
            if now - last_probe >= KAFKA_PROBE_INTERVAL and (probe is None or probe.done()):
                probe = asyncio.get_running_loop().create_task(self._probe_kafka())
                last_probe = now

    async def drain(self) -> None:
        """Stop serving, gently (see the module docstring)."""
        settings = self.settings
        gateway = self.gateway
        started = time.monotonic()
        deadline = started + settings.drain_timeout
        gateway.draining = True
        log.info("gateway.draining", extra={"connections": len(gateway.connections)})
        for server in self.servers:
            server.close()
        # answer what is in flight: wait for Kafka's acks and workers' replies (or their timeouts)
        answer_by = min(deadline - settings.drain_close_period, started + settings.reply_timeout)
        while gateway.has_calls_in_flight() and time.monotonic() < answer_by:
            await asyncio.sleep(0.05)
        # close every socket with 1001, spread over the close period
        connections = list(gateway.connections.values())
        period = max(0.0, min(settings.drain_close_period, deadline - time.monotonic() - 2.0))
        step = period / len(connections) if connections else 0.0
        for index, connection in enumerate(connections):
            connection.close(CloseCode.GOING_AWAY, "server shutting down")
            connection.close_reason = "drain"
            if step and index % 100 == 99:
                await asyncio.sleep(step * 100)
        while gateway.connections and time.monotonic() < deadline - 1.0:
            await asyncio.sleep(0.05)
        for connection in list(gateway.connections.values()):
            connection.abort("drain")
        await asyncio.sleep(0)
        await self.stop()
        log.info(
            "gateway.drained",
            extra={
                "seconds": round(time.monotonic() - started, 3),
                "left": len(gateway.connections),
            },
        )

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for server in self.servers:
            server.close()
        self.gateway.record_departures()  # the last disconnected events go out with the flush
        self.gateway.log_refusals()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.peers.stop(), STOP_STEP_TIMEOUT)  # no more tombstones
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.publisher.stop(), STOP_STEP_TIMEOUT)
        # each step bounded: the drain timeout is the operator's grace period, not a hint
        for step in (
            self.offline.stop,
            self.follower.stop,
            self.producer.stop,
        ):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(step(), STOP_STEP_TIMEOUT)


async def _until_started(
    what: str,
    start: Callable[[], Awaitable[object]],
    stop: Callable[[], Awaitable[object]],
) -> None:
    """Run ``start`` until it succeeds, undoing half-starts with ``stop``, backing off to 10 s."""
    delay = 0.5
    while True:
        try:
            await start()
            return
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("gateway.kafka_unavailable", extra={"starting": what, "error": repr(exc)})
            with contextlib.suppress(Exception):
                await stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def serve(settings: GatewaySettings, *, stopping: Stopping | None = None) -> int:
    """Run the gateway until SIGTERM/SIGINT (or ``stopping``), then drain."""
    registry = CollectorRegistry()
    app = GatewayApp(settings, registry)
    async with ServiceRuntime(
        settings.service, registry=registry, readiness=app.readiness, stopping=stopping
    ) as runtime:
        if runtime.open_files < settings.max_connections + OPEN_FILES_MARGIN:
            log.warning(
                "gateway.open_file_limit",
                extra={"limit": runtime.open_files, "max_connections": settings.max_connections},
            )
        # start (which waits for Kafka as long as it takes) unless told to stop meanwhile
        starting = asyncio.ensure_future(app.start())
        stop_requested = asyncio.ensure_future(runtime.stopping.wait())
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await app.stop()
            return 0
        stop_requested.cancel()
        try:
            starting.result()
        except BaseException:
            await app.stop()
            raise
        runtime.gc.freeze(reason="started")
        tls = f"; wss on port {app.tls_port}" if app.tls_port is not None else ""
        print(
            f"csms gateway: OCPP on ws://{settings.host}:{app.port}/ocpp/<station id>; "
            f"status on port {runtime.status.port}{tls}",
            flush=True,
        )
        await runtime.stopping.wait()
        await app.drain()
    return 0
