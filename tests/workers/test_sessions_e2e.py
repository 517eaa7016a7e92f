"""The sessions worker end to end: real gateway and worker processes, the ``ocpp`` charge points.

A charger authorizes, starts, meters and stops; its answers come from the worker
through Kafka and the gateway; the completed session is on csms.sessions.v1
with the right energy. The worker refuses unknown id tokens (the production
policy).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from contracts.envelopes import IdTokenRecord, SessionRecord, decode_session
from contracts.topics import SESSIONS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect16, connect201, connect_raw, station_id
from tests.workers import calls
from tests.workers.calls import at, register, transaction_event
from tests.workers.processes import WorkerProcess
from workers.sessions.id_tokens_cli import write_id_token

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def tokens(kafka: KafkaUnderTest) -> dict[str, str]:
    """Id tokens of this module in the authorization list (the CLI's own test adds with it)."""
    suffix = uuid.uuid4().hex[:8].upper()
    tokens = {
        name: f"{name[:2].upper()}{suffix}"
        for name in ("accepted", "blocked", "expired", "fleet", "member")
    }
    for name, fields in (
        ("accepted", {}),
        ("blocked", {"status": "Blocked"}),
        ("expired", {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}),
        ("fleet", {"status": "Blocked"}),
        ("member", {"group_id": tokens["fleet"]}),
    ):
        record = IdTokenRecord(
            id_token=tokens[name],
            status=fields.pop("status", "Accepted"),  # type: ignore[arg-type]
            updated_at=datetime.now(UTC),
            **fields,  # type: ignore[arg-type]
        )
        await write_id_token(kafka.settings, record.id_token, record)
    return tokens


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest, tokens: dict[str, str]) -> Iterator[GatewayProcess]:
    with (
        GatewayProcess(kafka) as process,
        WorkerProcess(kafka, CSMS_ALLOW_UNKNOWN_ID_TOKENS="false") as worker,
    ):
        worker.wait_assigned()
        yield process


async def completed(sessions: Collector, station: str) -> list[SessionRecord]:
    """The station's session records, once one says completed."""
    await sessions.wait_for(
        lambda rs: any(
            r.key == station.encode() and decode_session(r.value).event == "completed" for r in rs
        ),
        what=f"the completed session of {station}",
    )
    return [decode_session(r.value) for r in sessions.keyed(station)]


async def test_ocpp16_authorize_start_meter_stop(
    kafka: KafkaUnderTest, gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    station = station_id("E16")
    tag = tokens["accepted"]
    async with (
        Collector(kafka, SESSIONS.name) as sessions,
        connect16(gateway.url(station)) as cp,
    ):
        authorized = await cp.call(call16.Authorize(id_tag=tag))
        assert authorized.id_tag_info["status"] == "Accepted"
        started = await cp.call(
            call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=12_000, timestamp=at(0))
        )
        assert started.id_tag_info["status"] == "Accepted"
        transaction = started.transaction_id
        assert 0 < transaction < 2**31
        await cp.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=transaction,
                meter_value=register(10, "13.5", unit="kWh"),
            )
        )
        stopped = await cp.call(
            call16.StopTransaction(
                meter_stop=15_250,
                timestamp=at(20),
                transaction_id=transaction,
                id_tag=tag,
                reason="EVDisconnected",
            )
        )
        assert stopped.id_tag_info["status"] == "Accepted"
        records = await completed(sessions, station)
    assert [(r.event, r.state, r.energy_wh) for r in records] == [
        ("started", "active", 0.0),
        ("updated", "active", 1500.0),
        ("completed", "completed", 3250.0),
    ]
    final = records[-1]
    assert (final.transaction_id, final.id_token, final.connector_id) == (str(transaction), tag, 1)
    assert (final.meter_start_wh, final.meter_stop_wh, final.stop_reason) == (
        12_000.0,
        15_250.0,
        "EVDisconnected",
    )
    assert (final.ocpp_version, final.offline) == ("1.6", False)


async def test_ocpp16_blocked_expired_and_unknown_tokens_are_refused(
    gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    async with connect16(gateway.url(station_id("R16"))) as cp:
        statuses = {}
        for name in ("blocked", "expired", "member"):
            answer = await cp.call(call16.Authorize(id_tag=tokens[name]))
            statuses[name] = answer.id_tag_info
        unknown = await cp.call(call16.Authorize(id_tag=f"NO{uuid.uuid4().hex[:8]}"))
        # an offline-authorized start with a blocked token: it has an id, and is refused
        started = await cp.call(
            call16.StartTransaction(
                connector_id=1, id_tag=tokens["blocked"], meter_start=0, timestamp=at(0)
            )
        )
    assert statuses["blocked"]["status"] == "Blocked"
    assert statuses["expired"]["status"] == "Expired"
    assert statuses["member"] == {"status": "Blocked", "parent_id_tag": tokens["fleet"]}
    assert unknown.id_tag_info["status"] == "Invalid"
    assert started.id_tag_info["status"] == "Blocked"
    assert started.transaction_id > 0


async def test_ocpp201_authorize_start_meter_end(
    kafka: KafkaUnderTest, gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    station = station_id("E201")
    id_token = {"id_token": tokens["accepted"], "type": "ISO14443"}
    transaction = str(uuid.uuid4())
    async with (
        Collector(kafka, SESSIONS.name) as sessions,
        connect201(gateway.url(station)) as cp,
    ):
        authorized = await cp.call(call201.Authorize(id_token=id_token))
        assert authorized.id_token_info["status"] == "Accepted"
        started = await cp.call(
            transaction_event(
                "Started",
                0,
                0,
                transaction,
                info={"charging_state": "Charging"},
                id_token=id_token,
                evse={"id": 1, "connector_id": 1},
                meter_value=register(0, 5000.0),
            )
        )
        assert started.id_token_info["status"] == "Accepted"
        kwh = {"unit_of_measure": {"unit": "kWh"}}
        await cp.call(
            transaction_event("Updated", 1, 10, transaction, meter_value=register(10, 6.25, **kwh))
        )
        in_kilo_wh = {"unit_of_measure": {"unit": "Wh", "multiplier": 3}}
        ended = register(20, 8.0, **in_kilo_wh)
        await cp.call(
            transaction_event(
                "Ended",
                2,
                20,
                transaction,
                info={"stopped_reason": "EVDisconnected"},
                meter_value=ended,
            )
        )
        records = await completed(sessions, station)
    assert [(r.event, r.state, r.energy_wh) for r in records] == [
        ("started", "active", 0.0),
        ("updated", "active", 1250.0),
        ("completed", "completed", 3000.0),
    ]
    final = records[-1]
    assert (final.session_id, final.transaction_id) == (f"{station}:{transaction}", transaction)
    assert (final.evse_id, final.connector_id, final.id_token) == (1, 1, tokens["accepted"])
    assert (final.stop_reason, final.ocpp_version, final.offline) == (
        "EVDisconnected",
        "2.0.1",
        False,
    )


async def test_ocpp201_blocked_and_expired_tokens_are_refused(
    gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    async with connect201(gateway.url(station_id("R201"))) as cp:
        statuses = {}
        for name in ("blocked", "expired", "member"):
            answer = await cp.call(
                call201.Authorize(id_token={"id_token": tokens[name], "type": "ISO14443"})
            )
            statuses[name] = answer.id_token_info
        started = await cp.call(
            transaction_event(
                "Started",
                0,
                0,
                str(uuid.uuid4()),
                id_token={"id_token": tokens["expired"], "type": "ISO14443"},
            )
        )
    assert statuses["blocked"]["status"] == "Blocked"
    assert statuses["expired"]["status"] == "Expired"
    assert statuses["member"]["status"] == "Blocked"
    assert statuses["member"]["group_id_token"] == {"id_token": tokens["fleet"], "type": "Central"}
    assert started.id_token_info["status"] == "Expired"


# --- RELIABILITY 26: offline replay -------------------------------------------------------------


async def test_case_26_ocpp16_offline_replay_is_answered_flagged_and_counted_once(
    kafka: KafkaUnderTest, gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    station = station_id("O16")
    tag = tokens["accepted"]
    async with (
        Collector(kafka, SESSIONS.name) as sessions,
        connect_raw(gateway.url(station), "ocpp1.6") as cp,
    ):
        # back online: a transaction whose start was never answered ends with id -1
        orphan = await cp.call(
            "StopTransaction",
            {
                "transactionId": -1,
                "meterStop": 5000,
                "timestamp": at(-50),
                "transactionData": [
                    {"timestamp": at(-90), "sampledValue": [{"value": "2000"}]},
                ],
            },
        )
        start = {"connectorId": 2, "idTag": tag, "meterStart": 7000, "timestamp": at(-40)}
        first = await cp.call("StartTransaction", start, message_id="start-1")
        same_id = await cp.call("StartTransaction", start, message_id="start-1")
        new_id = await cp.call("StartTransaction", start, message_id="start-2")
        transaction = first[2]["transactionId"]
        readings = {
            "connectorId": 2,
            "transactionId": transaction,
            "meterValue": [{"timestamp": at(-30), "sampledValue": [{"value": "8000"}]}],
        }
        late = readings | {
            "meterValue": [{"timestamp": at(-35), "sampledValue": [{"value": "7500"}]}]
        }
        meter = [await cp.call("MeterValues", m) for m in (readings, readings, late)]
        stop = {"transactionId": transaction, "meterStop": 9500, "timestamp": at(-20)}
        stops = [await cp.call("StopTransaction", stop, message_id=m) for m in ("s-1", "s-2")]
        await sessions.wait_for(
            lambda rs: (
                [decode_session(r.value).event for r in sessions.keyed(station)].count("completed")
                >= 2
            ),
            what="both sessions completed",
        )
    answers = [orphan, first, same_id, new_id, *meter, *stops]
    assert all(frame[0] == 3 for frame in answers), answers  # every one a CALLRESULT
    assert orphan[2] == {}
    assert same_id[2] == first[2] == new_id[2]
    records = [decode_session(r.value) for r in sessions.keyed(station)]
    orphans = [r for r in records if r.transaction_id == "-1"]
    assert [(r.event, r.energy_wh, r.meter_start_wh, r.offline) for r in orphans] == [
        ("completed", 3000.0, 2000.0, True)
    ]
    real = [r for r in records if r.transaction_id == str(transaction)]
    assert [(r.event, r.energy_wh) for r in real] == [
        ("started", 0.0),
        ("updated", 1000.0),
        ("completed", 2500.0),
    ]
    assert all(r.offline for r in real)  # reported long after it happened


async def test_case_26_ocpp201_offline_events_with_gaps_and_reordering(
    kafka: KafkaUnderTest, gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    station = station_id("O201")
    transaction = str(uuid.uuid4())
    id_token = {"idToken": tokens["accepted"], "type": "ISO14443"}

    def event(event_type: str, seq_no: int, minutes: float, wh: float, **fields: Any) -> Any:
        return {
            "eventType": event_type,
            "timestamp": at(minutes),
            "triggerReason": {"Started": "Authorized", "Updated": "MeterValuePeriodic"}.get(
                event_type, "EVDeparted"
            ),
            "seqNo": seq_no,
            "offline": True,
            "transactionInfo": {"transactionId": transaction},
            "meterValue": [{"timestamp": at(minutes), "sampledValue": [{"value": wh}]}],
            **fields,
        }

    started = event("Started", 0, -60, 1000.0, idToken=id_token, evse={"id": 2})
    updated = event("Updated", 1, -45, 1800.0)
    ended = event("Ended", 3, -30, 2600.0)  # seqNo 2 was dropped by the station (E04.FR.08)
    async with (
        Collector(kafka, SESSIONS.name) as sessions,
        connect_raw(gateway.url(station), "ocpp2.0.1") as cp,
    ):
        answers = [
            await cp.call("TransactionEvent", payload)
            for payload in (ended, updated, started, updated)
        ]
        await sessions.wait_for(
            lambda rs: len(sessions.keyed(station)) >= 3, what="the records of the replay"
        )
    assert all(frame[0] == 3 for frame in answers), answers
    assert answers[2][2]["idTokenInfo"]["status"] == "Accepted"  # the worker's answer
    records = [decode_session(r.value) for r in sessions.keyed(station)]
    assert [(r.event, r.state) for r in records] == [
        ("completed", "completed"),
        ("updated", "completed"),
        ("updated", "completed"),
    ]
    final = records[-1]
    assert (final.energy_wh, final.meter_start_wh, final.meter_stop_wh) == (1600.0, 1000.0, 2600.0)
    assert (final.started_at, final.offline, final.evse_id, final.id_token) == (
        calls.NOW - timedelta(minutes=60),
        True,
        2,
        tokens["accepted"],
    )
