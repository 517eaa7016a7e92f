"""RELIABILITY.md cases 18, 27, 28 and 30: limits, storms, shutdown and dead peers.

Real gateway processes, real sockets; the framing rules themselves are unit-tested
in tests/gateway/test_session.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from contracts.envelopes import decode_disconnected_payload, decode_event
from tests.support.gateway import GatewayProcess
from tests.support.handshake import handshake
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect_raw

pytestmark = pytest.mark.timeout(180)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _station() -> str:
    return f"CP-{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------- 18


async def test_case_18_a_frame_above_the_limit_closes_with_1009(kafka: KafkaUnderTest) -> None:
    with GatewayProcess(kafka, env={"CSMS_MAX_FRAME_SIZE": "1024"}) as gateway:
        async with connect_raw(gateway.url(_station()), "ocpp1.6") as raw:
            assert (await raw.call("Heartbeat", {}))[0] == 3  # small frames are fine
            await raw.send([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 2000}])
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await raw.receive()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


async def test_case_18_a_flood_of_small_frames_keeps_memory_bounded(kafka: KafkaUnderTest) -> None:
    """A station that writes without reading: the gateway stops reading it, memory stays flat."""
    with GatewayProcess(kafka) as gateway:
        assert gateway.process is not None
        async with connect_raw(gateway.url(_station()), "ocpp1.6", max_queue=None) as raw:
            await raw.call("Heartbeat", {})
            before = _rss_kib(gateway.process.pid)
            ws: ClientConnection = raw.ws
            frame = orjson.dumps([2, "x", "Heartbeat", {}]).decode()
            # 200,000 frames (~6 MB), as fast as the socket takes them; the answers are not read
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    for _ in range(200_000):
                        await ws.send(frame)
            await asyncio.sleep(1.0)
            growth = _rss_kib(gateway.process.pid) - before
        # duplicates of an in-flight id are answered with CALLERRORs; what cannot be written is
        # not read either (pause_writing -> pause_reading), so the gateway holds little of it
        assert growth < 30 * 1024, f"RSS grew by {growth} KiB"
        assert gateway.status("/healthz")[0] == 200


# ----------------------------------------------------------------------------- 27


async def test_case_27_handshake_admission_refuses_with_retry_after_then_recovers(
    kafka: KafkaUnderTest,
) -> None:
    env = {"CSMS_MAX_HANDSHAKES_IN_PROGRESS": "20", "CSMS_HANDSHAKE_TIMEOUT": "2"}
    with GatewayProcess(kafka, env=env) as gateway:
        # 30 clients open TCP connections and never finish their handshake (a storm's backlog)
        stalled = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(30)]
        await asyncio.sleep(0.3)
        busy = await handshake(
            gateway.port, f"/ocpp/{_station()}", [("Sec-WebSocket-Protocol", "ocpp1.6")]
        )
        await busy.close()
        assert busy.status == 503
        assert int(busy.headers["retry-after"]) > 0
        # the stalled handshakes time out and are dropped; admission opens again
        await asyncio.sleep(2.5)
        late = await handshake(
            gateway.port, f"/ocpp/{_station()}", [("Sec-WebSocket-Protocol", "ocpp1.6")]
        )
        await late.close()
        assert late.status == 101
        for _, writer in stalled:
            writer.close()


async def test_case_27_reconnect_storm_all_stations_back_bounded_latency_and_memory(
    kafka: KafkaUnderTest,
) -> None:
    stations = 400
    # every station here comes from 127.0.0.1: the per-address rate limit (case 8) would
    # throttle them; a storm is many addresses, so switch it off
    env = {"CSMS_MAX_HANDSHAKES_IN_PROGRESS": "100", "CSMS_HANDSHAKE_RATE": "0"}
    with GatewayProcess(kafka, env=env) as gateway:
        assert gateway.process is not None
        before = _rss_kib(gateway.process.pid)
        latencies: list[float] = []
        refused = 0

        async def station(name: str) -> ClientConnection:
            nonlocal refused
            while True:
                started = time.monotonic()
                try:
                    ws = await websockets.connect(
                        gateway.url(name),
                        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    )
                except websockets.InvalidStatus as exc:
                    if exc.response.status_code != 503:  # only admission control may refuse
                        raise
                    refused += 1
                    await asyncio.sleep(0.2)
                    continue
                latencies.append(time.monotonic() - started)
                boot = [
                    2,
                    "boot",
                    "BootNotification",
                    {"chargePointModel": "M", "chargePointVendor": "V"},
                ]
                await ws.send(orjson.dumps(boot).decode())
                answer = orjson.loads(await ws.recv())
                assert answer[0] == 3
                assert answer[2]["status"] in ("Accepted", "Pending")
                return ws

        started = time.monotonic()
        connections = await asyncio.wait_for(
            asyncio.gather(*(station(_station()) for _ in range(stations))), 120
        )
        elapsed = time.monotonic() - started
        growth_per_station = (_rss_kib(gateway.process.pid) - before) / stations
        assert gateway.metric("csms_gateway_connections") == stations
        await asyncio.gather(*(ws.close() for ws in connections))
    assert max(latencies) < 10.0, f"slowest handshake {max(latencies):.2f}s"
    assert elapsed < 60
    # generous: the gateway's own figure is ~15-20 KiB per idle station (docs/benchmarks.md)
    assert growth_per_station < 200, f"{growth_per_station:.0f} KiB per station"


# ----------------------------------------------------------------------------- 28


async def test_case_28_sigterm_drains_answers_in_flight_closes_1001_staggered_and_exits(
    kafka: KafkaUnderTest,
) -> None:
    env = {"CSMS_DRAIN_TIMEOUT": "8", "CSMS_DRAIN_CLOSE_PERIOD": "2", "CSMS_HANDSHAKE_RATE": "0"}
    gateway = GatewayProcess(kafka, env=env).start()
    try:
        async with (
            Collector(kafka, "ocpp.events.v1") as events,
            contextlib.AsyncExitStack() as stack,
        ):
            names = [_station() for _ in range(300)]
            stations = [
                await stack.enter_async_context(connect_raw(gateway.url(n), "ocpp1.6"))
                for n in names
            ]
            for station in stations:
                await station.call("Heartbeat", {})
            # a call in flight at the moment of SIGTERM is still answered
            await stations[0].send([2, "in-flight", "Heartbeat", {}])
            gateway.signal(signal.SIGTERM)
            assert (await stations[0].receive())[:2] == [3, "in-flight"]

            # readiness goes off at once
            status = 0
            for _ in range(20):
                with contextlib.suppress(OSError):
                    status, _ = gateway.status("/readyz")
                if status == 503:
                    break
                await asyncio.sleep(0.05)
            assert status == 503
            # no new connections
            with pytest.raises((OSError, websockets.InvalidStatus, websockets.InvalidHandshake)):
                async with connect_raw(gateway.url(_station()), "ocpp1.6"):
                    pass

            closed_at: list[float] = []

            async def wait_close(raw: object) -> int | None:
                ws: ClientConnection = raw.ws  # type: ignore[attr-defined]
                await ws.wait_closed()
                closed_at.append(time.monotonic())
                return ws.close_code

            codes = await asyncio.wait_for(asyncio.gather(*(wait_close(s) for s in stations)), 15)
            assert set(codes) == {1001}
            assert max(closed_at) - min(closed_at) > 1.0  # spread over the close period
            assert gateway.wait(15) == 0
            # every disconnect was published before the process exited
            await events.wait_for(
                lambda rs: (
                    sum(1 for r in rs if decode_event(r.value).kind == "disconnected") >= len(names)
                ),
                what="a disconnected event per station",
            )
            disconnected = [
                decode_disconnected_payload(decode_event(r.value).payload)
                for r in events.records
                if decode_event(r.value).kind == "disconnected"
            ]
            assert {d.close_code for d in disconnected} == {1001}
    finally:
        gateway.stop()


# ----------------------------------------------------------------------------- 30


async def test_case_30_half_open_connection_is_detected_by_ping_timeout_and_freed(
    kafka: KafkaUnderTest,
) -> None:
    env = {"CSMS_PING_INTERVAL": "1", "CSMS_PING_TIMEOUT": "1"}
    station = _station()
    with GatewayProcess(kafka, env=env) as gateway:
        async with Collector(kafka, "ocpp.events.v1") as events:
            # a station that completes the handshake, then goes silent (no FIN, no pong)
            silent = await handshake(
                gateway.port, f"/ocpp/{station}", [("Sec-WebSocket-Protocol", "ocpp1.6")]
            )
            assert silent.status == 101
            await events.wait_for(
                lambda rs: any(
                    decode_event(r.value).kind == "disconnected" for r in events.keyed(station)
                ),
                timeout=15,
                what="the half-open connection dropped",
            )
            assert (
                gateway.metric("csms_gateway_connections_closed_total", {"reason": "ping_timeout"})
                == 1
            )
            # the station's reconnect is accepted
            async with connect_raw(gateway.url(station), "ocpp1.6") as raw:
                assert (await raw.call("Heartbeat", {}))[0] == 3
            silent.writer.transport.abort()


# ----------------------------------------------------------------------------- capacity, start


async def test_a_full_gateway_turns_unready_and_refuses_then_recovers(
    kafka: KafkaUnderTest,
) -> None:
    with GatewayProcess(kafka, env={"CSMS_MAX_CONNECTIONS": "2"}) as gateway:
        async with connect_raw(gateway.url(_station()), "ocpp1.6"):
            assert gateway.status("/readyz")[0] == 200
            async with connect_raw(gateway.url(_station()), "ocpp1.6"):
                status, body = gateway.status("/readyz")
                assert status == 503
                assert "capacity" in orjson.loads(body)["failing"]
                with pytest.raises(websockets.InvalidStatus) as refused:
                    async with connect_raw(gateway.url(_station()), "ocpp1.6"):
                        pass
                assert refused.value.response.status_code == 503
            await asyncio.sleep(0.5)
            assert gateway.status("/readyz")[0] == 200
            # a refusal for capacity is counted in a summary line, not logged on its own
            summary = gateway.wait_for(r'\{[^\n]*"msg":"gateway.admission_refused"[^\n]*', 5)
            assert orjson.loads(summary[0])["refused"] == {"capacity": 1}
            assert '"msg":"station.rejected"' not in gateway.output


def test_sigterm_while_waiting_for_kafka_at_start_exits_promptly() -> None:
    from contracts.bus.broker import free_port
    from tests.support.processes import CsmsProcess

    nowhere, status_port = free_port(), free_port()
    env = {"CSMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{nowhere}", "CSMS_STATUS_PORT": str(status_port)}
    with CsmsProcess("gateway", "--port", "0", env=env) as gateway:
        gateway.wait_for("gateway.kafka_unavailable")
        import urllib.error
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/healthz", timeout=5) as r:
            assert r.status == 200  # alive while Kafka is away: no restart loop
        with pytest.raises(urllib.error.HTTPError) as unready:
            urllib.request.urlopen(f"http://127.0.0.1:{status_port}/readyz", timeout=5)
        assert unready.value.code == 503
        unready.value.close()
        started = time.monotonic()
        gateway.signal(signal.SIGTERM)
        assert gateway.wait(10) == 0
        assert time.monotonic() - started < 5
