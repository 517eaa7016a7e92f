"""OCPP 1.6 authorization and transactions, decided in memory (no loop, no Kafka)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelopes import encode_session
from tests.workers.harness import T0, Harness, assert_completed_is_final, stamp, token
from workers.runtime.logic import RecordRejected
from workers.sessions.ocpp16 import TransactionIdsExhausted, transaction_id


def start(connector: int = 1, id_tag: str = "TAG-1", meter: int = 1000, at: float = 0) -> Any:
    return {"connectorId": connector, "idTag": id_tag, "meterStart": meter, "timestamp": stamp(at)}


def stop(transaction: int, meter: int, at: float = 30, **fields: Any) -> dict[str, Any]:
    return {"transactionId": transaction, "meterStop": meter, "timestamp": stamp(at), **fields}


def meter(
    transaction: int | None, value: str, at: float, unit: str = "Wh", connector: int = 1
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": connector,
        "meterValue": [
            {
                "timestamp": stamp(at),
                "sampledValue": [
                    {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                    {"value": value, "measurand": "Energy.Active.Import.Register", "unit": unit},
                ],
            }
        ],
    }
    if transaction is not None:
        payload["transactionId"] = transaction
    return payload


# --- Authorize ----------------------------------------------------------------------------------


def test_authorize_answers_status_expiry_and_parent() -> None:
    expires = T0 + timedelta(days=30)
    harness = Harness(
        token("TAG-1", expires_at=expires, group_id="FLEET"),
        token("TAG-2", "Blocked"),
        token("TAG-3", expires_at=T0),
        token("TAG-4", group_id="A-GROUP-ID-LONGER-THAN-20"),
    )
    accepted = harness.send("Authorize", {"idTag": "tag-1"})
    assert accepted.outcome == "accepted"
    info = accepted.reply.id_tag_info
    assert (info.status, info.expiry_date, info.parent_id_tag) == ("Accepted", expires, "FLEET")
    assert harness.send("Authorize", {"idTag": "TAG-2"}).reply.id_tag_info.status == "Blocked"
    assert harness.send("Authorize", {"idTag": "TAG-3"}).reply.id_tag_info.status == "Expired"
    assert harness.send("Authorize", {"idTag": "NOBODY"}).reply.id_tag_info.status == "Invalid"
    # OCPP 1.6 parentIdTag holds 20 characters: a longer group is left out, not cut
    assert harness.send("Authorize", {"idTag": "TAG-4"}).reply.id_tag_info.parent_id_tag is (
        msgspec.UNSET
    )
    assert harness.records == []
    assert harness.stations == {}


def test_unknown_tokens_are_accepted_when_the_policy_says_so() -> None:
    harness = Harness(allow_unknown=True)
    assert harness.send("Authorize", {"idTag": "NOBODY"}).reply.id_tag_info.status == "Accepted"


# --- a transaction ------------------------------------------------------------------------------


def test_start_meter_stop_makes_three_records_with_the_energy() -> None:
    harness = Harness(token("TAG-1"), partition=3)
    started = harness.send("StartTransaction", start(meter=1000))
    assert started.outcome == "started"
    # the partition's first transaction: counter 1, slot 3
    assert started.reply.transaction_id == 1 * 64 + 3
    assert started.reply.id_tag_info.status == "Accepted"
    (record,) = started.records
    assert (record.event, record.state, record.session_id) == ("started", "active", "CP-1:67")
    assert (record.transaction_id, record.connector_id, record.id_token) == ("67", 1, "TAG-1")
    assert (record.meter_start_wh, record.energy_wh, record.started_at) == (1000.0, 0.0, T0)

    updated = harness.send("MeterValues", meter(67, "2.5", at=10, unit="kWh"))
    assert updated.outcome == "updated"
    assert [(r.event, r.energy_wh) for r in updated.records] == [("updated", 1500.0)]

    stopped = harness.send("StopTransaction", stop(67, 4000, at=30, idTag="TAG-1"))
    assert stopped.outcome == "completed"
    assert stopped.reply.id_tag_info.status == "Accepted"
    (record,) = stopped.records
    assert (record.event, record.state, record.energy_wh) == ("completed", "completed", 3000.0)
    assert (record.meter_stop_wh, record.stop_reason) == (4000.0, "Local")
    assert record.stopped_at == T0 + timedelta(minutes=30)
    assert not record.offline


def test_transaction_ids_are_unique_per_partition_and_across_partitions() -> None:
    left, right = Harness(allow_unknown=True, partition=0), Harness(allow_unknown=True, partition=5)
    ids = set()
    for harness in (left, right):
        for connector in range(1, 4):
            ids.add(harness.send("StartTransaction", start(connector)).reply.transaction_id)
    assert ids == {64, 128, 192, 69, 133, 197}
    assert transaction_id(33_554_431, 63) == 2**31 - 1
    with pytest.raises(TransactionIdsExhausted):
        transaction_id(33_554_432, 0)
    with pytest.raises(ValueError, match="slots"):
        transaction_id(1, 64)


def test_a_start_with_a_blocked_token_still_starts_and_is_answered_blocked() -> None:
    harness = Harness(token("TAG-1", "Blocked"))
    started = harness.send("StartTransaction", start())
    assert started.reply.id_tag_info.status == "Blocked"
    assert started.records[0].state == "active"
    # the station stops it (StopTransactionOnInvalidId), reason DeAuthorized
    stopped = harness.send("StopTransaction", stop(67, 1000, reason="DeAuthorized"))
    assert "idTagInfo" not in msgspec.json.encode(stopped.reply).decode()
    assert (stopped.records[0].stop_reason, stopped.records[0].energy_wh) == ("DeAuthorized", 0.0)


# --- offline oddities (RELIABILITY 26) ----------------------------------------------------------


def test_a_retried_start_gets_the_same_id_and_counts_once() -> None:
    harness = Harness(allow_unknown=True)
    first = harness.send("StartTransaction", start(), message_id="m-1")
    for message_id in ("m-1", "m-2"):  # the same call again, then a new call with the same content
        again = harness.send("StartTransaction", start(), message_id=message_id)
        assert again.outcome == "duplicate"
        assert again.reply.transaction_id == first.reply.transaction_id
        assert again.records == []
    assert harness.send("StartTransaction", start()).decision.anomalies == ()
    assert [s.anomalies for s in harness.stations["CP-1"].sessions] == [("start_retried",)]
    assert harness.ids.next == 2


def test_a_retried_stop_counts_once_and_a_different_one_does_not_win() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=1000))
    harness.send("StopTransaction", stop(67, 5000))
    again = harness.send("StopTransaction", stop(67, 5000))
    assert (again.outcome, again.records) == ("duplicate", [])
    other = harness.send("StopTransaction", stop(67, 9000, at=40))
    assert (other.outcome, other.records, other.decision.anomalies) == (
        "stop_conflict",
        [],
        ("stop_conflict",),
    )
    assert [(r.event, r.energy_wh) for r in harness.records] == [
        ("started", 0.0),
        ("completed", 4000.0),
    ]


def test_a_stop_with_id_minus_one_closes_the_only_active_session() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=1000))  # its answer never reached the station
    stopped = harness.send("StopTransaction", stop(-1, 3500, idTag="TAG-1"))
    assert stopped.outcome == "stop_with_unknown_id"
    assert stopped.decision.anomalies == ("stop_with_unknown_id",)
    (record,) = stopped.records
    assert (record.transaction_id, record.state, record.energy_wh) == ("67", "completed", 2500.0)
    assert record.offline


def test_a_stop_without_a_start_is_a_completed_session_of_its_own() -> None:
    harness = Harness(allow_unknown=True)
    data = [{"timestamp": stamp(1), "sampledValue": [{"value": "1.0", "unit": "kWh"}]}]
    first = harness.send("StopTransaction", stop(-1, 4000, transactionData=data))
    assert first.outcome == "stop_without_start"
    (record,) = first.records
    assert (record.event, record.state, record.transaction_id) == ("completed", "completed", "-1")
    assert (record.meter_start_wh, record.energy_wh, record.offline) == (1000.0, 3000.0, True)
    assert record.started_at == T0 + timedelta(minutes=1)
    # the same stop again (a retry) counts once; another -1 stop is another session
    assert harness.send("StopTransaction", stop(-1, 4000, transactionData=data)).records == []
    another = harness.send("StopTransaction", stop(-1, 7000, at=40))
    assert (another.outcome, another.records[0].meter_stop_wh) == ("stop_without_start", 7000.0)
    without_data = harness.send("StopTransaction", stop(4242, 9000, at=50))
    (record,) = without_data.records
    assert (record.energy_wh, record.meter_start_wh, record.started_at) == (
        None,
        None,
        record.stopped_at,
    )
    assert record.session_id != first.records[0].session_id


def test_a_new_start_on_a_busy_connector_closes_the_lost_session() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=1000))
    harness.send("MeterValues", meter(67, "1800", at=10))
    second = harness.send("StartTransaction", start(meter=2000, at=20))
    assert second.decision.anomalies == ("superseded",)
    old, new = second.records
    assert (old.event, old.state, old.energy_wh, old.meter_stop_wh) == (
        "completed",
        "completed",
        800.0,
        1800.0,
    )
    assert (new.event, new.transaction_id) == ("started", "131")
    # a reading of it that arrives now changes nothing
    assert harness.send("MeterValues", meter(67, "1850", at=12)).outcome == "late_reading"
    # the lost stop turns up after all: its facts correct the guess, in a correction record
    late = harness.send("StopTransaction", stop(67, 1900, at=15, reason="EVDisconnected"))
    (record,) = late.records
    assert (record.event, record.state, record.energy_wh, record.meter_stop_wh) == (
        "updated",
        "completed",
        900.0,
        1900.0,
    )
    assert [(c.field, c.was, c.now, c.reason) for c in record.corrections] == [
        ("stopped_at", stamp(20), stamp(15), "late_stop"),
        ("meter_stop_wh", 1800.0, 1900.0, "late_stop"),
        ("energy_wh", 800.0, 900.0, "late_stop"),
        ("stop_reason", None, "EVDisconnected", "late_stop"),
    ]
    assert_completed_is_final(harness.records)


def test_late_and_repeated_meter_values_are_not_counted_twice() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=1000))
    harness.send("MeterValues", meter(67, "3000", at=20))
    for payload in (meter(67, "3000", at=20), meter(67, "2000", at=10), meter(67, "900", at=-5)):
        assert harness.send("MeterValues", payload).outcome == "unchanged"
    # without a transactionId, a reading belongs to the connector's active session
    assert harness.send("MeterValues", meter(None, "3500", at=25)).records[0].energy_wh == 2500.0
    assert harness.send("MeterValues", meter(None, "3600", at=26, connector=2)).outcome == (
        "no_session"
    )
    harness.send("StopTransaction", stop(67, 4000))
    after = harness.send("MeterValues", meter(67, "5000", at=40))
    assert (after.outcome, after.records, after.decision.anomalies) == (
        "event_after_end",
        [],
        ("event_after_end",),
    )
    queued = harness.send("MeterValues", meter(67, "3900", at=29))
    assert (queued.outcome, queued.records, queued.decision.anomalies) == (
        "late_reading",
        [],
        ("late_reading",),
    )
    assert harness.last().energy_wh == 3000.0


def test_a_transaction_reported_long_after_it_happened_is_flagged_offline() -> None:
    harness = Harness(allow_unknown=True)
    late = T0 + timedelta(hours=2)
    record = harness.send("StartTransaction", start(), received_at=late).records[0]
    assert record.offline
    prompt = harness.send("StartTransaction", start(connector=2, at=119), received_at=late)
    assert not prompt.records[0].offline


def test_a_meter_that_goes_backwards_is_flagged_and_has_no_energy() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=5000))
    stopped = harness.send("StopTransaction", stop(67, 100))
    assert stopped.decision.anomalies == ("meter_decreased",)
    assert stopped.records[0].energy_wh is None


def test_handling_the_same_events_again_writes_the_same_records_byte_for_byte() -> None:
    def run() -> list[bytes]:
        harness = Harness(allow_unknown=True)
        for action, payload in (
            ("StartTransaction", start(meter=1000)),
            ("MeterValues", meter(67, "2000", at=10)),
            ("StopTransaction", stop(67, 2500)),
            ("StopTransaction", stop(-1, 10)),
        ):
            harness.handle(harness.event(action, payload, message_id="fixed"))
        return [encode_session(r) for r in harness.records]

    assert run() == run()


def test_a_payload_that_is_not_its_action_is_rejected() -> None:
    harness = Harness(allow_unknown=True)
    with pytest.raises(RecordRejected, match="meterStart"):
        harness.send("StartTransaction", {"connectorId": 1, "idTag": "T", "timestamp": stamp(0)})


def test_actions_it_does_not_decide_are_ignored() -> None:
    harness = Harness()
    ignored = harness.send("MeterValues", {"evseId": 1, "meterValue": []}, version="2.0.1")
    assert (ignored.outcome, ignored.decision.station) == ("ignored", None)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_completed_session_is_what_the_stop_said_whatever_comes_when(
    data: st.DataObject,
) -> None:
    # a transaction: a start, readings before and after the stop, the stop; maybe a new start
    # on the connector while its stop is lost, the stop arriving later (or not lost at all)
    before = data.draw(st.lists(st.integers(1, 29), max_size=4, unique=True))
    after = data.draw(st.lists(st.integers(31, 50), max_size=3, unique=True))
    readings = [meter(67, str(1000 + 10 * minute), at=minute) for minute in (*before, *after)]
    the_stop = stop(67, 1500, at=30, reason="EVDisconnected")
    later = [("StopTransaction", the_stop), *(("MeterValues", r) for r in readings)]
    if data.draw(st.booleans()):
        later.append(("StartTransaction", start(meter=2000, at=35)))
    order = data.draw(st.permutations(later))
    repeats = data.draw(st.lists(st.sampled_from(later), max_size=3))
    harness = Harness(allow_unknown=True)
    harness.send("StartTransaction", start(meter=1000))
    for action, payload in [*order, *repeats]:
        sent = harness.send(action, payload)
        assert (sent.reply is not None) == (action != "MeterValues")  # as before: answered
    records = [r for r in harness.records if r.session_id == "CP-1:67"]
    completed = [r for r in records if r.state == "completed"]
    assert (completed[-1].meter_stop_wh, completed[-1].energy_wh) == (1500.0, 500.0)
    assert completed[-1].stopped_at == T0 + timedelta(minutes=30)
    superseded = "superseded" in harness.stations["CP-1"].sessions[0].anomalies
    # a stop that came in time is final; only the guess of a superseded session is corrected
    assert len(completed) == 1 + superseded
    assert all(c.reason == "late_stop" for r in completed for c in r.corrections)
    if not superseded:  # readings that came after the stop are flagged by their stamp
        came_later = [p for _, p in [*order[order.index(later[0]) + 1 :], *repeats]]
        anomalies = harness.stations["CP-1"].sessions[0].anomalies
        for flag, group in (("late_reading", before), ("event_after_end", after)):
            sent = [meter(67, str(1000 + 10 * minute), at=minute) for minute in group]
            assert (flag in anomalies) == any(p in sent for p in came_later)
    assert_completed_is_final(harness.records)
