"""One process's share of a simulated fleet: its stations, their schedule, and what it measured.

A :class:`Plan` says which stations (a range of the fleet's station numbers)
this process simulates against which target, and when to start; a
:class:`Fleet` runs it on the current event loop and returns a
:class:`~loadtest.report.Report`. The plan is plain data, so a parent process
hands it to its worker processes as JSON (:mod:`loadtest.processes`).

Everything the stations do is open-loop: connection attempts, heartbeats,
routine calls, transactions, clock-aligned readings and reconnect storms are
put on the :class:`~loadtest.schedule.Scheduler` at the times the scenario
gives, whatever the target does; a call whose time comes while the station
waits for an answer is queued, and its latency is measured from its scheduled
time. Random choices come from one ``random.Random`` seeded by the plan, so a
run can be repeated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import math
import random
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import msgspec
from websockets.uri import parse_uri

from loadtest import messages
from loadtest.recorder import Progress, Recorder
from loadtest.report import Report
from loadtest.scenario import Scenario, parse
from loadtest.schedule import Scheduler
from loadtest.station import Link, Purpose, Station, StationState

__all__ = ["Fleet", "Plan", "station_url"]

_GOLDEN: Final = (math.sqrt(5) - 1) / 2  # spreads station numbers evenly over [0, 1)


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """What one load-generator process does."""

    target: str  # ws:// or wss:// URL; the station id replaces {station} or is appended
    scenario: str  # the scenario's TOML text
    scenario_source: str
    first: int  # this process simulates station numbers first .. first + count - 1
    count: int
    fleet_stations: int  # stations of the whole run (all parts, all processes)
    station_id: str = "LT-{n:06d}"
    password: str = ""  # template with {station} and {n}; "" sends no Authorization
    passwords: dict[str, str] = {}  # from a password file, for this process's stations
    duration: float | None = None  # overrides the scenario's
    rate: float | None = None  # fleet-wide calls per second, overrides [calls]
    start_at: float = 0.0  # Unix time to start at (0: at once)
    connect_timeout: float = 10.0
    reconnect_backoff: float = 1.0
    reconnect_backoff_max: float = 30.0
    local_addresses: tuple[str, ...] = ()
    timeline_interval: float = 1.0
    ca_file: str = ""
    max_frame_size: int = 1 << 20
    drain_timeout: float = 5.0
    label: str = "part 0/1 process 0/1"
    seed: int = 0


def station_url(target: str, station_id: str) -> str:
    if "{station}" in target:
        return target.replace("{station}", station_id)
    return target.rstrip("/") + "/" + station_id


class _Transaction:
    __slots__ = ("connector", "energy", "id_tag", "seq_no", "transaction_id", "uuid")

    def __init__(self, connector: int, id_tag: str) -> None:
        self.connector = connector
        self.id_tag = id_tag
        self.transaction_id: int | None = None  # 1.6: from the StartTransaction answer
        self.uuid = str(uuid.uuid4())  # 2.0.1: the station chooses the id
        self.seq_no = 0
        self.energy = 0.0


class Fleet:
    def __init__(
        self,
        plan: Plan,
        *,
        progress: Callable[[Progress, float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.scenario: Scenario = parse(plan.scenario, plan.scenario_source)
        self.duration = plan.duration if plan.duration is not None else self.scenario.duration
        self.call_timeout = self.scenario.call_timeout
        self.max_frame_size = plan.max_frame_size
        self.recorder = Recorder(timeline_interval=plan.timeline_interval)
        self.scheduler = Scheduler()
        self.random = random.Random(plan.seed * 1_000_003 + plan.first)
        self.clock = messages.Clock()
        self.on_progress = progress
        self.running = False
        self.stations = [self._station(plan.first + i) for i in range(plan.count)]
        self._share = plan.count / max(plan.fleet_stations, 1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._host = ""
        self._port = 0
        self._finished = asyncio.Event()  # set at the end of the run, or by stop()
        self._next_station = 0

    def _station(self, number: int) -> Station:
        plan = self.plan
        station_id = plan.station_id.format(n=number)
        password = plan.passwords.get(station_id)
        if password is None and plan.password:
            password = plan.password.format(station=station_id, n=number)
        authorization = None
        if password is not None:
            token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
            authorization = f"Basic {token}"
        return Station(
            self,
            number,
            station_id,
            station_url(plan.target, station_id),
            self._version(number),
            authorization,
        )

    def _version(self, number: int) -> str:
        weights = self.scenario.stations.ocpp
        total = sum(weights.values())
        point = (number * _GOLDEN) % 1.0 * total
        for version, weight in weights.items():
            if point < weight:
                return version
            point -= weight
        return next(iter(weights))

    # ------------------------------------------------------------------ running

    async def run(self) -> Report:
        uri = parse_uri(station_url(self.plan.target, "x"))
        self._host, self._port = uri.host, uri.port
        if uri.secure:
            self._ssl = ssl.create_default_context(cafile=self.plan.ca_file or None)
        if self.plan.start_at:  # wait for the common start, unless stopped meanwhile
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._finished.wait(), max(0.0, self.plan.start_at - time.time())
                )
        started_at = time.time()
        if not self._finished.is_set():
            self.running = True
            self._plan_schedule(time.monotonic())
            self.scheduler.attach(asyncio.get_running_loop())
        try:
            await self._finished.wait()
            await self._drain()
        finally:
            self.running = False
            self.scheduler.detach()
            for station in self.stations:
                if station.state == StationState.OPEN:
                    self.recorder.disconnected()
                station.forget_calls(None)
                station.give_up(gracefully=True)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0.05)  # let the transports flush their close frames
        return self.recorder.report(
            scenario=self.scenario.name,
            target=self.plan.target,
            parts=[self.plan.label],
            stations=self.plan.count,
            started_at=started_at,
            ended_at=time.time(),
            max_schedule_lag=self.scheduler.max_lag,
        )

    async def _drain(self) -> None:
        """Wait (a while) for the calls under way to be answered before closing."""
        deadline = time.monotonic() + min(self.plan.drain_timeout, self.call_timeout)
        while time.monotonic() < deadline and any(s.in_flight_id for s in self.stations):
            await asyncio.sleep(0.02)

    def _plan_schedule(self, t0: float) -> None:
        scenario = self.scenario
        at = self.scheduler.at
        rate = scenario.stations.connect_rate * self._share
        for i, station in enumerate(self.stations):
            at(t0 + (i / rate if rate > 0 else 0.0), self._connect, station)
        calls = scenario.calls
        if calls is not None:
            fleet_rate = (
                self.plan.rate
                if self.plan.rate is not None
                else calls.fleet_rate(self.plan.fleet_stations)
            )
            rate = fleet_rate * self._share
            if rate > 0:
                at(t0 + self._gap(rate, calls.arrival), self._routine_calls, rate)
        if scenario.aligned is not None:
            at(self._next_boundary(scenario.aligned.interval), self._aligned)
        if scenario.reconnect is not None:
            for offset in scenario.reconnect.at:
                if offset < self.duration:
                    at(t0 + offset, self._storm)
        at(t0 + 1.0, self._progress)
        at(t0 + self.duration, self._finish)

    def stop(self) -> None:
        """End the run now (SIGINT, SIGTERM): answers under way are awaited, the report written."""
        self._finish(None, time.monotonic())

    def _finish(self, _: Any, scheduled: float) -> None:
        self.running = False
        self._finished.set()

    def _progress(self, _: Any, scheduled: float) -> None:
        now = time.monotonic()
        self.recorder.mark_connected(now)
        if self.on_progress is not None:
            self.on_progress(self.recorder.progress(len(self.stations)), self.scheduler.max_lag)
        if self.running:
            self.scheduler.at(scheduled + 1.0, self._progress)

    # ------------------------------------------------------------------ connections

    def _connect(self, station: Station, scheduled: float) -> None:
        if not self.running or station.state != StationState.IDLE:
            return
        station.state = StationState.CONNECTING
        station.generation += 1
        station.connect_scheduled = scheduled
        self.recorder.connect_started()
        task = station.opening = asyncio.get_running_loop().create_task(self._open(station))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # the attempt has its time from when it starts: a station whose connect the generator
        # runs late (its own report says how late) is not failed for the generator's lateness
        self.scheduler.at(
            max(scheduled, time.monotonic()) + self.plan.connect_timeout,
            self._connect_timed_out,
            (station, station.generation),
        )

    async def _open(self, station: Station) -> None:
        addresses = self.plan.local_addresses
        local = (addresses[station.number % len(addresses)], 0) if addresses else None
        generation = station.generation
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: Link(station),
                self._host,
                self._port,
                ssl=self._ssl,
                local_addr=local,
            )
        except OSError as exc:
            if station.generation == generation and station.state == StationState.CONNECTING:
                self.connect_failed(station, _socket_error(exc), None)
        finally:
            if station.generation == generation:
                station.opening = None

    def _connect_timed_out(self, entry: tuple[Station, int], scheduled: float) -> None:
        station, generation = entry
        if station.generation == generation and station.state == StationState.CONNECTING:
            self.connect_failed(station, "connect:timeout", None)

    def connect_failed(self, station: Station, reason: str, retry_after: float | None) -> None:
        now = time.monotonic()
        self.recorder.error(reason, now)
        station.give_up(gracefully=False)
        station.retries += 1
        if retry_after is None:
            backoff = self.plan.reconnect_backoff * 2 ** min(station.retries - 1, 16)
            retry_after = min(backoff, self.plan.reconnect_backoff_max)
        # jitter, so that refused stations do not come back in lockstep
        self.scheduler.at(now + retry_after * self.random.uniform(0.5, 1.5), self._connect, station)

    def connected(self, station: Station) -> None:
        now = time.monotonic()
        station.retries = 0
        self.recorder.connect_succeeded(station.connect_scheduled, now)
        scenario = self.scenario
        version = station.version
        generation = station.generation
        if scenario.stations.boot:
            station.call(
                "BootNotification",
                messages.boot_notification(version, station.station_id),
                now,
            )
            timestamp = self.clock.now()
            for connector in range(1, scenario.stations.connectors + 1):
                station.call(
                    "StatusNotification",
                    messages.status_notification(version, connector, "Available", timestamp),
                    now,
                )
        at = self.scheduler.at
        if scenario.heartbeat is not None:
            interval = scenario.heartbeat.interval
            phase = (station.number * _GOLDEN) % 1.0
            at(now + interval * phase, self._heartbeat, (station, generation))
        if scenario.transactions is not None:
            gap = self.random.expovariate(1.0 / scenario.transactions.every)
            at(now + gap, self._transaction_start, (station, generation))

    def connection_lost(self, station: Station, exc: Exception | None) -> None:
        """The target closed the connection (we did not give it up)."""
        now = time.monotonic()
        if station.state == StationState.CONNECTING:
            self.connect_failed(station, "connect:closed", None)
            return
        if station.state == StationState.OPEN:
            self.recorder.disconnected()
            self.recorder.error("dropped", now)
            station.forget_calls("disconnect")
            station.transaction = None
            station.give_up(gracefully=False)
            if self.running:
                delay = self.plan.reconnect_backoff * self.random.uniform(0.5, 1.5)
                self.scheduler.at(now + delay, self._connect, station)

    def call_sent(self, station: Station, message_id: str, scheduled: float) -> None:
        self.scheduler.at(
            scheduled + self.call_timeout, self._call_timed_out, (station, message_id)
        )

    def _call_timed_out(self, entry: tuple[Station, str], scheduled: float) -> None:
        entry[0].timed_out(entry[1])

    # ------------------------------------------------------------------ behaviour

    def _live(self, entry: tuple[Station, int]) -> Station | None:
        station, generation = entry
        live = self.running and station.generation == generation
        return station if live and station.state == StationState.OPEN else None

    def _heartbeat(self, entry: tuple[Station, int], scheduled: float) -> None:
        station = self._live(entry)
        if station is None:
            return
        station.call("Heartbeat", messages.heartbeat(station.version), scheduled)
        assert self.scenario.heartbeat is not None
        self.scheduler.at(scheduled + self.scenario.heartbeat.interval, self._heartbeat, entry)

    def _gap(self, rate: float, arrival: str) -> float:
        return self.random.expovariate(rate) if arrival == "poisson" else 1.0 / rate

    def _routine_calls(self, rate: float, scheduled: float) -> None:
        """Every routine call whose time has come (one heap entry for the whole stream)."""
        calls = self.scenario.calls
        assert calls is not None
        actions = list(calls.mix)
        weights = list(calls.mix.values())
        now = time.monotonic()
        due = scheduled
        choose = self.random.choices
        while due <= now and self.running:
            station = self._pick()
            if station is not None:
                action = choose(actions, weights)[0]
                station.call(action, self._payload(station, action, calls.sampled_values), due)
            due += self._gap(rate, calls.arrival)
        if self.running:
            self.scheduler.at(due, self._routine_calls, rate)

    def _pick(self) -> Station | None:
        """The next connected station, round robin."""
        stations = self.stations
        for _ in range(min(len(stations), 64)):
            self._next_station = (self._next_station + 1) % len(stations)
            station = stations[self._next_station]
            if station.state == StationState.OPEN:
                return station
        return None

    def _payload(self, station: Station, action: str, sampled_values: int) -> bytes:
        version = station.version
        if action == "Heartbeat":
            return messages.heartbeat(version)
        if action == "MeterValues":
            return messages.meter_values(version, 1, self.clock.now(), sampled_values)
        if action == "StatusNotification":
            return messages.status_notification(version, 1, "Available", self.clock.now())
        if action == "Authorize":
            return messages.authorize(version, f"LT-TAG-{station.number}")
        if action == "DataTransfer":
            return messages.data_transfer(version)
        return messages.boot_notification(version, station.station_id)

    def _next_boundary(self, interval: float) -> float:
        """The monotonic time of the next multiple of ``interval`` on the wall clock."""
        wall = time.time()
        return time.monotonic() + (math.floor(wall / interval) + 1) * interval - wall

    def _aligned(self, _: Any, scheduled: float) -> None:
        aligned = self.scenario.aligned
        assert aligned is not None
        if not self.running:
            return
        at = self.scheduler.at
        for station in self.stations:
            if station.state == StationState.OPEN:
                offset = aligned.spread * ((station.number * _GOLDEN) % 1.0)
                at(scheduled + offset, self._aligned_reading, (station, station.generation))
        at(scheduled + aligned.interval, self._aligned)

    def _aligned_reading(self, entry: tuple[Station, int], scheduled: float) -> None:
        station = self._live(entry)
        if station is None:
            return
        assert self.scenario.aligned is not None
        payload = messages.meter_values(
            station.version,
            1,
            self.clock.now(),
            self.scenario.aligned.sampled_values,
            context="Sample.Clock",
        )
        station.call("MeterValues", payload, scheduled)

    def _storm(self, _: Any, scheduled: float) -> None:
        """Every station drops its connection now and reconnects (over the scenario's spread)."""
        reconnect = self.scenario.reconnect
        assert reconnect is not None
        self.recorder.storm(scheduled)
        for station in self.stations:
            if station.state == StationState.IDLE:
                continue  # already waiting to retry: it keeps its own schedule
            if station.state == StationState.OPEN:
                self.recorder.disconnected()
            station.forget_calls(None)
            station.transaction = None
            station.give_up(gracefully=False)
            offset = reconnect.spread * ((station.number * _GOLDEN) % 1.0)
            self.scheduler.at(scheduled + offset, self._connect, station)

    # ------------------------------------------------------------------ transactions

    def _transaction_start(self, entry: tuple[Station, int], scheduled: float) -> None:
        station = self._live(entry)
        tx = self.scenario.transactions
        assert tx is not None
        if station is None:
            return
        if station.transaction is None:
            connector = 1 + station.number % self.scenario.stations.connectors
            id_tag = tx.id_tag.format(n=station.number)
            t = station.transaction = _Transaction(connector, id_tag)
            version = station.version
            timestamp = self.clock.now()
            if tx.authorize:
                station.call("Authorize", messages.authorize(version, id_tag), scheduled)
            if version == "1.6":
                station.call(
                    "StartTransaction",
                    messages.start_transaction(version, connector, id_tag, timestamp),
                    scheduled,
                    Purpose.START_TRANSACTION,
                )
            else:
                t.seq_no += 1
                station.call(
                    "TransactionEvent",
                    messages.transaction_event(
                        "Started", t.uuid, t.seq_no - 1, connector, timestamp, id_tag=id_tag
                    ),
                    scheduled,
                )
            station.call(
                "StatusNotification",
                messages.status_notification(version, connector, "Charging", timestamp),
                scheduled,
            )
            self.scheduler.at(scheduled + tx.meter_interval, self._transaction_meter, entry)
            self.scheduler.at(scheduled + tx.duration, self._transaction_stop, entry)

    def call_answered(self, station: Station, purpose: int, payload: bytes) -> None:
        if purpose == Purpose.START_TRANSACTION and station.transaction is not None:
            try:
                answer = msgspec.json.decode(payload)
                station.transaction.transaction_id = int(answer["transactionId"])
            except (ValueError, KeyError, TypeError):
                self.recorder.error("bad_answer:StartTransaction", time.monotonic())

    def _charging(self, entry: tuple[Station, int]) -> tuple[Station, _Transaction] | None:
        """The station of ``entry`` and its transaction, if it is still connected and charging."""
        station = self._live(entry)
        if station is None or station.transaction is None:
            return None
        return station, station.transaction

    def _transaction_meter(self, entry: tuple[Station, int], scheduled: float) -> None:
        tx = self.scenario.transactions
        charging = self._charging(entry)
        if charging is None or tx is None:
            return
        station, t = charging
        t.energy += 11000 * tx.meter_interval / 3600
        timestamp = self.clock.now()
        if station.version == "1.6":
            payload = messages.meter_values(
                "1.6",
                t.connector,
                timestamp,
                tx.sampled_values,
                energy_wh=t.energy,
                transaction_id=t.transaction_id,
            )
            station.call("MeterValues", payload, scheduled)
        else:
            t.seq_no += 1
            payload = messages.transaction_event(
                "Updated",
                t.uuid,
                t.seq_no - 1,
                t.connector,
                timestamp,
                sampled_values=tx.sampled_values,
                energy_wh=t.energy,
            )
            station.call("TransactionEvent", payload, scheduled)
        self.scheduler.at(scheduled + tx.meter_interval, self._transaction_meter, entry)

    def _transaction_stop(self, entry: tuple[Station, int], scheduled: float) -> None:
        tx = self.scenario.transactions
        charging = self._charging(entry)
        if charging is None or tx is None:
            return
        station, t = charging
        station.transaction = None
        timestamp = self.clock.now()
        version = station.version
        if version == "1.6":
            if t.transaction_id is not None:
                payload = messages.stop_transaction(
                    t.transaction_id, int(t.energy), timestamp, t.id_tag
                )
                station.call("StopTransaction", payload, scheduled)
        else:
            payload = messages.transaction_event(
                "Ended",
                t.uuid,
                t.seq_no,
                t.connector,
                timestamp,
                energy_wh=t.energy,
                sampled_values=1,
            )
            station.call("TransactionEvent", payload, scheduled)
        station.call(
            "StatusNotification",
            messages.status_notification(version, t.connector, "Available", timestamp),
            scheduled,
        )
        gap = self.random.expovariate(1.0 / tx.every)
        self.scheduler.at(scheduled + gap, self._transaction_start, entry)

    def triggered(self, station: Station, payload: bytes) -> None:
        """The CSMS asked for a message with TriggerMessage: send it."""
        try:
            request = msgspec.json.decode(payload)
            action = str(request["requestedMessage"])
        except (ValueError, KeyError, TypeError):
            return
        names = {"StatusNotification", "Heartbeat", "MeterValues", "BootNotification"}
        if action in names:
            station.call(action, self._payload(station, action, 4), time.monotonic())


def _socket_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect:refused"
    if isinstance(exc, ConnectionResetError):
        return "connect:reset"
    if isinstance(exc, ssl.SSLError):
        return "connect:tls"
    if exc.errno is not None and exc.errno in errno.errorcode:
        return "connect:" + errno.errorcode[exc.errno]
    print(f"loadtest: unclassified connect error {exc!r}", file=sys.stderr)
    return "connect:error"
