"""RELIABILITY.md cases 22, 23, 24 and 29: the gateway when Kafka is down or slow.

Each test has an Apache Kafka node of its own and freezes it with SIGSTOP (and thaws
it with SIGCONT): a real outage for the gateway's producer, without losing what the
broker already holds, so that "nothing is lost" can be checked afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import orjson
import pytest

from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import LocalKafka
from contracts.envelopes import decode_event
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import RawStation, connect_raw

pytestmark = pytest.mark.timeout(120)


class PausableKafka:
    def __init__(self, broker: LocalKafka) -> None:
        self.broker = broker
        self.kafka = KafkaUnderTest("local", broker.kafka_settings())

    def pause(self) -> None:
        self.broker.nodes[0].freeze()

    def resume(self) -> None:
        self.broker.nodes[0].thaw()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()


@pytest.fixture
def broker() -> Iterator[PausableKafka]:
    with LocalKafka(0) as local:
        kafka = PausableKafka(local)
        asyncio.run(create_topics(TopicSettings(kafka=kafka.kafka.settings, partitions=2)))
        try:
            yield kafka
        finally:
            kafka.resume()


def _ready(gateway: GatewayProcess) -> tuple[int, dict[str, object]]:
    status, body = gateway.status("/readyz")
    return status, orjson.loads(body) if body.startswith("{") else {}


async def _until(predicate: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not (callable(predicate) and predicate()):
            await asyncio.sleep(0.1)


async def test_case_22_broker_down_no_callresult_before_ack_retry_succeeds_nothing_lost(
    broker: PausableKafka,
) -> None:
    env = {"CSMS_KAFKA_ACK_TIMEOUT": "1.5"}
    answered: list[str] = []
    with GatewayProcess(broker.kafka, env=env) as gateway:
        station = f"CP-{uuid.uuid4().hex[:8]}"
        async with connect_raw(gateway.url(station), "ocpp1.6") as raw:
            assert (await raw.call("Heartbeat", {}, message_id="before"))[0] == 3
            answered.append("before")
            with broker.paused():
                during = await raw.call("Heartbeat", {}, message_id="during")
                # no CALLRESULT for a call Kafka has not acknowledged: a CALLERROR after the timeout
                assert during[:3] == [4, "during", "InternalError"]
            # the station's own retry succeeds once Kafka is back
            retry = await raw.call("Heartbeat", {}, message_id="during")
            assert retry[:2] == [3, "during"]
            answered.append("during")
        async with Collector(broker.kafka, "ocpp.events.v1", from_beginning=True) as events:
            await events.wait_for(
                lambda rs: {decode_event(r.value).message_id for r in rs} >= set(answered),
                what="an event for every answered call",
            )


async def test_case_23_producer_full_stops_reading_turns_unready_and_recovers(
    broker: PausableKafka,
) -> None:
    env = {
        "CSMS_MAX_PENDING_EVENTS": "20",
        "CSMS_RESUME_PENDING_EVENTS": "5",
        "CSMS_KAFKA_ACK_TIMEOUT": "60",
    }
    with GatewayProcess(broker.kafka, env=env) as gateway:
        async with contextlib.AsyncExitStack() as stack:
            stations: list[RawStation] = [
                await stack.enter_async_context(
                    connect_raw(gateway.url(f"CP-{uuid.uuid4().hex[:8]}"), "ocpp1.6")
                )
                for _ in range(10)
            ]
            assert _ready(gateway)[0] == 200
            with broker.paused():
                for station in stations:  # 10 stations x 3 calls = 30 unacknowledged events
                    for n in range(3):
                        await station.send([2, f"m{n}", "Heartbeat", {}])
                await _until(lambda: gateway.metric("csms_gateway_backpressure") == 1)
                status, body = _ready(gateway)
                assert status == 503
                assert "backpressure" in body["failing"]  # type: ignore[operator]
                # sockets are not read while backpressured: a malformed frame, which would be
                # answered at once, stays unanswered
                await stations[0].send("not json")
                with pytest.raises(TimeoutError):
                    await stations[0].receive(timeout=1.0)
            # Kafka is back: everything is acknowledged and answered, reading resumes
            await _until(lambda: gateway.metric("csms_gateway_backpressure") == 0)
            answers = [await stations[0].receive() for _ in range(4)]
            assert sorted(str(a[1]) for a in answers) == ["-1", "m0", "m1", "m2"]
            await _until(lambda: _ready(gateway)[0] == 200)
            for station in stations[1:]:
                assert sorted([(await station.receive())[0] for _ in range(3)]) == [3, 3, 3]


async def test_case_24_per_station_order_is_kept_under_retries(broker: PausableKafka) -> None:
    """Stations send numbered MeterValues, retrying refused ones; the topic has them in order."""
    env = {"CSMS_KAFKA_ACK_TIMEOUT": "1.0"}
    per_station = 30

    async def send_all(raw: RawStation) -> None:
        for seq in range(per_station):
            payload = {
                "connectorId": 1,
                "meterValue": [
                    {"timestamp": "2026-03-01T12:00:00Z", "sampledValue": [{"value": str(seq)}]}
                ],
            }
            while True:  # the station retries until it gets a CALLRESULT, as chargers do
                answer = await raw.call("MeterValues", payload)
                if answer[0] == 3:
                    break

    with GatewayProcess(broker.kafka, env=env) as gateway:
        names = [f"CP-{uuid.uuid4().hex[:8]}" for _ in range(8)]
        async with contextlib.AsyncExitStack() as stack:
            stations = [
                await stack.enter_async_context(connect_raw(gateway.url(n), "ocpp1.6"))
                for n in names
            ]
            sending = asyncio.gather(*(send_all(s) for s in stations))
            await asyncio.sleep(0.3)
            with broker.paused():
                await asyncio.sleep(2.0)  # calls in flight now time out and are retried
            await asyncio.wait_for(sending, 60)
        async with Collector(broker.kafka, "ocpp.events.v1", from_beginning=True) as events:

            def complete(records: list[object]) -> bool:
                return all(
                    sum(1 for r in events.keyed(n) if decode_event(r.value).kind == "call")
                    >= per_station
                    for n in names
                )

            await events.wait_for(complete, timeout=30, what="every station's readings")
            for name in names:
                readings = [
                    int(orjson.loads(bytes(e.payload))["meterValue"][0]["sampledValue"][0]["value"])
                    for e in map(decode_event, (r.value for r in events.keyed(name)))
                    if e.kind == "call"
                ]
                # retries may repeat a reading (at least once); never reorder or lose one
                assert readings == sorted(readings), name
                assert set(readings) == set(range(per_station)), name


async def test_case_29_liveness_stays_green_during_a_kafka_outage_readiness_does_not(
    broker: PausableKafka,
) -> None:
    with GatewayProcess(broker.kafka) as gateway:
        assert _ready(gateway)[0] == 200
        with broker.paused():
            await _until(lambda: _ready(gateway)[0] == 503, timeout=15)
            assert "kafka" in _ready(gateway)[1]["failing"]  # type: ignore[operator]
            for _ in range(5):
                assert gateway.status("/healthz")[0] == 200
                await asyncio.sleep(0.2)
        await _until(lambda: _ready(gateway)[0] == 200, timeout=20)
        assert gateway.returncode() is None  # never exited: no restart loop
