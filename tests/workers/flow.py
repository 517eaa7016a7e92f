"""Stations' calls written to ocpp.events.v1 as the gateway writes them, and their replies.

For tests that run the worker as a process and no gateway: :class:`Calls` sends
a call and waits for its reply on ocpp.commands.v1; :func:`charge` runs a whole
1.6 session; :func:`completed` reads the completed sessions back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.envelopes import StationEvent, decode_command, decode_session, encode_event
from contracts.envelopes import record_key as key_of
from contracts.headers import event_headers, read_headers
from contracts.ocpp.validation import decode_response
from contracts.topics import COMMANDS, EVENTS, SESSIONS
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.workers.calls import at
from tests.workers.inprocess import call

REPLY_WITHIN = 600.0  # the gateway's fallback deadline, far: every reply is expected here


class Calls:
    """Writes calls to ocpp.events.v1 and waits for each one's reply on ocpp.commands.v1."""

    def __init__(self, kafka: KafkaUnderTest, commands: Collector) -> None:
        self.kafka = kafka
        self.commands = commands
        self.asked: list[StationEvent] = []
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=120_000,  # through a leader change: the events must get there
            metadata_max_age_ms=3000,  # and learn the new leader soon (the gateway's path does)
        )

    async def __aenter__(self) -> Calls:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, event: StationEvent) -> None:
        await self.producer.send_and_wait(
            EVENTS.name,
            encode_event(event),
            key=key_of(event.station_id),
            headers=event_headers(event),
        )

    async def ask(self, event: StationEvent, timeout: float = 120.0) -> Any:
        """Send a call and return its decoded reply."""
        self.asked.append(event)
        await self.send(event)
        wanted = event.message_id.encode()
        records = await self.commands.wait_for(
            lambda rs: any(wanted in r.value for r in rs),
            timeout=timeout,
            what=f"the reply to {event.action} {event.message_id}",
        )
        command = next(decode_command(r.value) for r in records if wanted in r.value)
        assert event.action is not None
        return decode_response("1.6", event.action, command.payload)

    def replies(self) -> dict[str, set[tuple[str, bytes]]]:
        """Per call asked: the distinct (command id, payload) pairs written for it."""
        found: dict[str, set[tuple[str, bytes]]] = {e.message_id: set() for e in self.asked}
        for record in self.commands.records:
            command = decode_command(record.value)
            if command.message_id in found:
                found[command.message_id].add((command.command_id, bytes(command.payload)))
        return found


def ask_call(station: str, action: str, payload: dict[str, Any], **fields: Any) -> StationEvent:
    """A call received now whose reply is not late for minutes."""
    return call(station, action, payload, reply_in=REPLY_WITHIN, **fields)


async def charge(calls: Calls, station: str, number: int, energy: int) -> str:
    """The station's ``number``-th 1.6 session, of ``energy`` Wh: start, a meter value, stop.

    Each session starts at another meter reading and minute: a start the same as
    the last one would be taken for its retry. Returns the transaction id.
    """
    meter = 100_000 * number
    started = await calls.ask(
        ask_call(
            station,
            "StartTransaction",
            {"connectorId": 1, "idTag": "ANYONE", "meterStart": meter, "timestamp": at(number)},
        )
    )
    transaction = started.transaction_id
    reading = {"timestamp": at(number + 0.5), "sampledValue": [{"value": str(meter + energy // 2)}]}
    await calls.send(
        ask_call(
            station,
            "MeterValues",
            {"connectorId": 1, "transactionId": transaction, "meterValue": [reading]},
            reply_expected=False,
        )
    )
    await calls.ask(
        ask_call(
            station,
            "StopTransaction",
            {
                "transactionId": transaction,
                "meterStop": meter + energy,
                "timestamp": at(number + 1),
            },
        )
    )
    return str(transaction)


def completed(sessions: Collector, stations: list[str]) -> set[tuple[str, str, float]]:
    """(station, transaction id, energy) of every completed session of ``stations``."""
    keys = {s.encode() for s in stations}
    return {
        (r.station_id, r.transaction_id or "", r.energy_wh)
        for r in (decode_session(x.value) for x in sessions.records if x.key in keys)
        if r.event == "completed"
    }


@contextlib.asynccontextmanager
async def flowing(kafka: KafkaUnderTest) -> AsyncIterator[tuple[Calls, Collector, Collector]]:
    async with (
        Collector(kafka, COMMANDS.name) as commands,
        Collector(kafka, SESSIONS.name) as sessions,
        Calls(kafka, commands) as calls,
    ):
        yield calls, commands, sessions


def rewritten_differently(sessions: Collector, stations: list[str]) -> list[str]:
    """The ids of session records of ``stations`` written twice with different contents."""
    keys = {s.encode() for s in stations}
    values: dict[str, set[bytes]] = defaultdict(set)
    for record in sessions.records:
        if record.key in keys:
            values[read_headers(record.headers).ce_id or ""].add(record.value)
    return [ce_id for ce_id, found in values.items() if len(found) > 1]


class Charging:
    """Stations charging one session after another, each of 100 Wh more, until :meth:`finish`."""

    def __init__(self, calls: Calls, stations: list[str]) -> None:
        self.calls = calls
        self.stations = stations
        self.done: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self._stop = asyncio.Event()
        self._drivers: asyncio.Future[list[None]] | None = None

    def start(self) -> Charging:
        self._drivers = asyncio.gather(*(self._drive(s) for s in self.stations))
        return self

    async def _drive(self, station: str) -> None:
        runs = self.done[station]
        while not self._stop.is_set():
            energy = 100 * (len(runs) + 1)
            runs.append((await charge(self.calls, station, len(runs), energy), float(energy)))

    async def finish(self, timeout: float = 180.0) -> set[tuple[str, str, float]]:
        """Let every station end its session; (station, transaction id, energy) of them all."""
        self._stop.set()
        assert self._drivers is not None
        async with asyncio.timeout(timeout):
            await self._drivers
        return {(s, number, e) for s, runs in self.done.items() for number, e in runs}


async def assert_exact(
    sessions: Collector, stations: list[str], expected: set[tuple[str, str, float]]
) -> None:
    """The ``expected`` sessions completed, no other; no session record rewritten differently."""
    await sessions.wait_for(
        lambda rs: completed(sessions, stations) >= expected,
        timeout=60,
        what="every completed session",
    )
    assert completed(sessions, stations) == expected
    assert not rewritten_differently(sessions, stations)
