"""What the simulated stations send, seen by a recording server: the flows of the scenarios."""

from __future__ import annotations

import collections
import json
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from loadtest.fleet import Fleet, Plan
from loadtest.report import merge

ANSWERS: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "status": "Accepted",
        "currentTime": "2026-01-01T00:00:00Z",
        "interval": 60,
    },
    "Authorize": {"idTagInfo": {"status": "Accepted"}},
    "StartTransaction": {"transactionId": 7, "idTagInfo": {"status": "Accepted"}},
    "StopTransaction": {},
    "TransactionEvent": {},
}


class Recording:
    """A CSMS that answers everything and keeps each station's calls in order."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, str, dict[str, Any]]]] = collections.defaultdict(
            list
        )
        self.connections: collections.Counter[str] = collections.Counter()

    async def handler(self, connection: ServerConnection) -> None:
        station = connection.request.path.rsplit("/", 1)[-1]  # type: ignore[union-attr]
        self.connections[station] += 1
        try:
            async for message in connection:
                frame = json.loads(message)
                if frame[0] != 2:
                    continue
                self.calls[station].append((time.time(), frame[2], frame[3]))
                await connection.send(json.dumps([3, frame[1], ANSWERS.get(frame[2], {})]))
        except Exception:  # the station dropped the connection (a storm)
            return


async def run(scenario: str, count: int) -> tuple[Recording, Any]:
    recording = Recording()
    async with serve(
        recording.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]
    ) as server:  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        plan = Plan(
            target=f"ws://127.0.0.1:{port}/ocpp/", scenario=scenario, scenario_source="test",
            first=0, count=count, fleet_stations=count, station_id="ST-{n}",
        )  # fmt: skip
        report = merge([await Fleet(plan).run()])
    return recording, report


TRANSACTIONS = """
duration = "2.5s"
[stations]
ocpp = { "1.6" = 1, "2.0.1" = 1 }
connectors = 1
[transactions]
every = "0.05s"
duration = "1s"
meter_interval = "0.3s"
"""


async def test_a_transaction_is_authorize_start_meter_values_stop() -> None:
    recording, report = await run(TRANSACTIONS, 2)
    assert report.errors == {}
    versions = {}
    for station, calls in recording.calls.items():
        actions = [a for _, a, _ in calls]
        assert actions[:2] == ["BootNotification", "StatusNotification"]
        versions[station] = "1.6" if "StartTransaction" in actions else "2.0.1"
        if versions[station] == "1.6":
            start = actions.index("StartTransaction")
            assert actions[start - 1] == "Authorize"
            assert actions[start + 1] == "StatusNotification"
            assert calls[start + 1][2]["status"] == "Charging"
            stop = actions.index("StopTransaction")
            meters = [p for _, a, p in calls[start:stop] if a == "MeterValues"]
            assert len(meters) >= 2
            assert all(p["transactionId"] == 7 for p in meters)  # from StartTransaction's answer
            assert calls[stop][2]["transactionId"] == 7
            assert calls[stop + 1][2]["status"] == "Available"
        else:
            events = [p for _, a, p in calls if a == "TransactionEvent"]
            assert [e["eventType"] for e in events[:2]] == ["Started", "Updated"]
            assert "Ended" in [e["eventType"] for e in events]
            first = [e for e in events if e["transactionInfo"]["transactionId"]
                     == events[0]["transactionInfo"]["transactionId"]]  # fmt: skip
            assert [e["seqNo"] for e in first] == list(range(len(first)))
            assert events[0]["idToken"]["idToken"].startswith("LT-TAG-")
    assert sorted(versions.values()) == ["1.6", "2.0.1"]


ALIGNED = """
duration = "3.5s"
[stations]
connect_rate = 0
[aligned]
interval = "1s"
spread = "0.1s"
"""


async def test_aligned_readings_leave_at_the_wall_clock_boundary() -> None:
    recording, report = await run(ALIGNED, 5)
    assert report.errors == {}
    readings = [
        (t, p) for calls in recording.calls.values() for t, a, p in calls if a == "MeterValues"
    ]
    assert len(readings) >= 10  # 5 stations, 2 or 3 boundaries
    for t, payload in readings:
        assert t % 1.0 < 0.1 + 0.05  # within the spread (plus the time to arrive)
        context = payload["meterValue"][0]["sampledValue"][0]["context"]
        assert context == "Sample.Clock"


STORM = """
duration = "4s"
[stations]
connect_rate = 0
[heartbeat]
interval = "0.5s"
[reconnect]
at = ["1.5s"]
"""


async def test_a_reconnect_storm_drops_everyone_and_they_come_back() -> None:
    recording, report = await run(STORM, 10)
    assert report.errors == {}
    assert all(n == 2 for n in recording.connections.values())
    assert len(recording.connections) == 10
    (storm,) = report.storms
    assert storm.stations == 10
    assert storm.back_after is not None and storm.back_after < 1.0
    assert report.connects.connected == 20
    # each station booted again on its new connection
    assert report.actions["BootNotification"].answered == 20
    assert report.actions["Heartbeat"].answered > 40
