"""``csms tail``: records produced by another client, printed as JSON lines."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CsmsProcess, run_csms

TOPIC = "ocpp.events.v1"


async def _produce(bootstrap: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                TOPIC, value, key=key, headers=[("ocpp-action", b"Heartbeat")]
            )
    finally:
        await producer.stop()


def test_tail_prints_new_records_as_json_lines(kafka: KafkaUnderTest) -> None:
    station = f"CP-{uuid.uuid4().hex[:8]}"
    # older records on the topic must not be shown when tailing from the end
    asyncio.run(_produce(kafka.bootstrap, [(b"old", b'{"old": true}')] * 5))
    with CsmsProcess(
        "tail", TOPIC, "--key", station, "--max-records", "3", env=kafka.env()
    ) as tail:
        tail.wait_for("reading ocpp.events.v1 from the end")
        asyncio.run(
            _produce(
                kafka.bootstrap,
                [
                    (station.encode(), b'{"n": 1}'),
                    (station.encode(), b"not json"),
                    (station.encode(), None),
                ],
            )
        )
        assert tail.wait(timeout=20) == 0
        lines = [orjson.loads(line) for line in tail.output.splitlines() if line.startswith("{")]
    assert [line["value"] for line in lines] == [{"n": 1}, "not json", None]
    first = lines[0]
    assert first["topic"] == TOPIC
    assert first["key"] == station
    assert first["headers"] == {"ocpp-action": "Heartbeat"}
    assert first["timestamp"].endswith("Z")
    assert isinstance(first["offset"], int)


def test_tail_from_beginning_reads_older_records(kafka: KafkaUnderTest) -> None:
    station = f"CP-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(kafka.bootstrap, [(station.encode(), b'{"n": %d}' % i) for i in range(3)]))
    result = run_csms(
        "tail",
        TOPIC,
        "--from-beginning",
        "--key",
        station,
        "--idle-timeout",
        "2",
        "--bootstrap",
        kafka.bootstrap,
    )
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line)["value"]["n"] for line in result.stdout.splitlines()] == [0, 1, 2]


def test_tail_unknown_topic_is_a_clear_error(kafka: KafkaUnderTest) -> None:
    result = run_csms("tail", "no.such.topic", "--bootstrap", kafka.bootstrap, timeout=60)
    assert result.returncode == 1
    assert "no.such.topic" in result.stderr
