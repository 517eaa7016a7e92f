"""OCPP 2.0.1 / 2.1 authorization and TransactionEvents, decided in memory."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelopes import SessionRecord
from tests.workers.harness import T0, Harness, assert_completed_is_final, stamp, token
from workers.sessions.model import KEEP_EARLIER

VERSIONS = pytest.mark.parametrize("version", ["2.0.1", "2.1"])
MS = 1 / 60_000  # a millisecond, in the minutes tx_event takes
END = "Transaction.End"


def tx_event(
    event_type: str,
    seq_no: int,
    at: float,
    *,
    transaction: str = "tx-1",
    wh: float | None = None,
    unit: str = "Wh",
    multiplier: int = 0,
    context: str | None = None,
    id_token: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    trigger = {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic", "Ended": "EVDeparted"}
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": stamp(at),
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction, **fields.pop("info", {})},
        **fields,
    }
    if wh is not None:
        payload["meterValue"] = [
            {
                "timestamp": stamp(at),
                "sampledValue": [
                    {"value": 11.0, "measurand": "Power.Active.Import"},
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": unit, "multiplier": multiplier},
                        **({} if context is None else {"context": context}),
                    },
                ],
            }
        ]
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    return payload


def session_events() -> list[dict[str, Any]]:
    """A whole transaction: plugged in, authorized, two readings, ended (10 kWh)."""
    return [
        tx_event("Started", 0, 0, wh=20_000, evse={"id": 1, "connectorId": 1}),
        tx_event("Updated", 1, 1, id_token="TAG-1", info={"chargingState": "Charging"}),
        tx_event("Updated", 2, 15, wh=24.5, unit="kWh"),
        tx_event("Updated", 3, 30, wh=2.75, unit="Wh", multiplier=4),
        tx_event("Ended", 4, 45, wh=30, unit="kWh", info={"stoppedReason": "EVDisconnected"}),
    ]


@VERSIONS
def test_authorize_answers_id_token_info_with_the_group(version: str) -> None:
    expires = T0 + timedelta(days=1)
    harness = Harness(
        token("TAG-1", expires_at=expires, group_id="FLEET"), token("TAG-2", "Blocked")
    )
    sent = harness.send(
        "Authorize", {"idToken": {"idToken": "tag-1", "type": "ISO14443"}}, version=version
    )
    info = sent.reply.id_token_info
    assert (info.status, info.cache_expiry_date_time) == ("Accepted", expires)
    assert (info.group_id_token.id_token, info.group_id_token.type) == ("FLEET", "Central")
    blocked = harness.send(
        "Authorize", {"idToken": {"idToken": "TAG-2", "type": "ISO14443"}}, version=version
    )
    assert blocked.reply.id_token_info.status == "Blocked"
    unknown = harness.send(
        "Authorize", {"idToken": {"idToken": "X", "type": "ISO14443"}}, version=version
    )
    assert unknown.reply.id_token_info.status == "Invalid"
    free = harness.send(
        "Authorize", {"idToken": {"idToken": "", "type": "NoAuthorization"}}, version=version
    )
    assert free.reply.id_token_info.status == "Accepted"


@VERSIONS
def test_a_transaction_start_to_end_with_units_and_multipliers(version: str) -> None:
    harness = Harness(token("TAG-1"))
    sent = [harness.send("TransactionEvent", e, version=version) for e in session_events()]
    assert [s.outcome for s in sent] == ["started", "updated", "updated", "updated", "completed"]
    # the gateway answers events without idToken; the one with an idToken gets its status
    assert [s.reply is None for s in sent] == [True, False, True, True, True]
    assert sent[1].reply.id_token_info.status == "Accepted"
    records = harness.records
    assert [(r.event, r.state, r.energy_wh) for r in records] == [
        ("started", "active", 0.0),
        ("updated", "active", 0.0),  # the id token arrived
        ("updated", "active", 4500.0),
        ("updated", "active", 7500.0),
        ("completed", "completed", 10_000.0),
    ]
    last = records[-1]
    assert (last.session_id, last.transaction_id, last.id_token) == ("CP-1:tx-1", "tx-1", "TAG-1")
    assert (last.evse_id, last.connector_id, last.ocpp_version) == (1, 1, version)
    assert (last.meter_start_wh, last.meter_stop_wh) == (20_000.0, 30_000.0)
    assert (last.started_at, last.stopped_at) == (T0, T0 + timedelta(minutes=45))
    assert (last.stop_reason, last.offline) == ("EVDisconnected", False)
    assert harness.stations["CP-1"].sessions[0].anomalies == ()


def test_a_blocked_token_on_the_way_is_answered_blocked() -> None:
    harness = Harness(token("TAG-1", "Blocked"))
    harness.send("TransactionEvent", session_events()[0], version="2.0.1")
    sent = harness.send("TransactionEvent", session_events()[1], version="2.0.1")
    assert sent.reply.id_token_info.status == "Blocked"


def test_a_repeated_seq_no_is_a_duplicate() -> None:
    harness = Harness(token("TAG-1"))
    events = session_events()
    for event in events[:3]:
        harness.send("TransactionEvent", event, version="2.0.1")
    again = harness.send("TransactionEvent", events[1], version="2.0.1")
    assert (again.outcome, again.records) == ("duplicate", [])
    assert again.reply.id_token_info.status == "Accepted"  # still answered


def test_offline_events_with_gaps_and_reordering_complete_once_and_are_flagged() -> None:
    harness = Harness(token("TAG-1"))
    started, _authorized, first, second, ended = session_events()
    offline = {"offline": True}
    # reconnected: the queue arrives out of order, and one Updated was dropped (E04.FR.08)
    outcomes = [
        harness.send("TransactionEvent", event | offline, version="2.0.1").outcome
        for event in (ended, second, started)
    ]
    assert outcomes == ["completed", "updated", "updated"]
    records = harness.records
    assert next((r.event, r.state) for r in records) == ("completed", "completed")
    final = records[-1]
    assert (final.energy_wh, final.meter_start_wh, final.started_at) == (10_000.0, 20_000.0, T0)
    assert final.offline
    session = harness.stations["CP-1"].sessions[0]
    assert session.anomalies == ("missing_start", "out_of_order")
    assert session.seq_nos == ((0, 0), (3, 4))
    # the missing event turns up: nothing to change but the record of what was received
    assert harness.send("TransactionEvent", first, version="2.0.1").records == []
    # what the queue brought after the Ended corrected the completed session, openly
    assert [r.event for r in records] == ["completed", "updated", "updated"]
    assert [[c.field for c in r.corrections] for r in records[1:]] == [
        ["started_at", "meter_start_wh", "energy_wh"],
        ["evse_id", "connector_id", "started_at", "meter_start_wh", "energy_wh"],
    ]
    assert {c.reason for r in records for c in r.corrections} == {"late_event"}
    assert_completed_is_final(records)


def test_seq_no_gaps_at_the_end_are_flagged() -> None:
    harness = Harness(token("TAG-1"))
    started, _, _, _, ended = session_events()
    harness.send("TransactionEvent", started, version="2.0.1")
    sent = harness.send("TransactionEvent", ended, version="2.0.1")
    assert sent.decision.anomalies == ("missing_events",)
    assert sent.records[0].energy_wh == 10_000.0


def test_transactions_are_told_apart_by_id() -> None:
    harness = Harness(allow_unknown=True)
    harness.send("TransactionEvent", tx_event("Started", 0, 0, wh=100), version="2.0.1")
    harness.send(
        "TransactionEvent", tx_event("Started", 0, 1, wh=500, transaction="tx-2"), version="2.0.1"
    )
    harness.send("TransactionEvent", tx_event("Ended", 1, 5, wh=300), version="2.0.1")
    harness.send(
        "TransactionEvent", tx_event("Ended", 1, 6, wh=900, transaction="tx-2"), version="2.0.1"
    )
    completed = {r.transaction_id: r.energy_wh for r in harness.records if r.event == "completed"}
    assert completed == {"tx-1": 200.0, "tx-2": 400.0}
    assert harness.last("CP-1:tx-1").stop_reason == "Local"  # stoppedReason omitted: Local


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(5)), repeats=st.lists(st.integers(0, 4), max_size=3))
def test_any_order_and_any_repeats_give_the_same_completed_session(
    order: list[int], repeats: list[int]
) -> None:
    harness = Harness(token("TAG-1"))
    events = session_events()
    for index in [*order, *repeats]:
        harness.send("TransactionEvent", events[index], version="2.0.1")
    final = harness.last()
    assert (final.state, final.energy_wh, final.meter_start_wh, final.meter_stop_wh) == (
        "completed",
        10_000.0,
        20_000.0,
        30_000.0,
    )
    assert (final.started_at, final.stopped_at) == (T0, T0 + timedelta(minutes=45))
    assert final.id_token == "TAG-1"
    assert (
        len([r for r in harness.records if r.state == "completed" and r.event == "completed"]) == 1
    )
    # a record only when something it shows changed
    for before, after in itertools.pairwise(harness.records):
        assert _shown(before) != _shown(after)


def _shown(record: SessionRecord) -> SessionRecord:
    return msgspec.structs.replace(record, event="updated", updated_at=T0)


# --- the end is final ---------------------------------------------------------------------------


@VERSIONS
def test_a_periodic_update_after_the_ended_is_answered_flagged_and_changes_nothing(
    version: str,
) -> None:
    harness = Harness(token("TAG-1"))
    harness.send("TransactionEvent", tx_event("Started", 0, 0, wh=0), version=version)
    harness.send("TransactionEvent", tx_event("Updated", 1, 10, wh=80), version=version)
    ended = tx_event("Ended", 2, 20, wh=114.39, context=END)
    assert harness.send("TransactionEvent", ended, version=version).outcome == "completed"
    late = tx_event("Updated", 3, 20 + MS, wh=142.29, id_token="TAG-1")
    sent = harness.send("TransactionEvent", late, version=version)
    assert sent.outcome == "event_after_end"
    assert sent.reply.id_token_info.status == "Accepted"  # the station still gets its answer
    assert (sent.records, sent.decision.anomalies) == ([], ("event_after_end",))
    # one with a lower seqNo but stamped after the end is after it too
    assert (
        harness.send(
            "TransactionEvent", tx_event("Updated", 1, 25, wh=150), version=version
        ).records
        == []
    )
    # ... and so is a duplicate Ended (the seqNo is new)
    again = tx_event("Ended", 4, 21, wh=160, context=END)
    assert harness.send("TransactionEvent", again, version=version).records == []
    (completed,) = harness.records[-1:]
    assert (completed.event, completed.meter_stop_wh, completed.energy_wh) == (
        "completed",
        114.39,
        114.39,
    )
    assert completed.stopped_at == T0 + timedelta(minutes=20)
    assert harness.stations["CP-1"].sessions[0].anomalies == ("event_after_end",)


@VERSIONS
def test_the_transaction_end_reading_wins_over_later_stamped_samples(version: str) -> None:
    harness = Harness(token("TAG-1"))
    harness.send("TransactionEvent", tx_event("Started", 0, 0, wh=100), version=version)
    ended = tx_event("Ended", 1, 20, wh=392.71, context=END)
    ended["meterValue"].append(  # a sample stamped after the end, in the Ended itself
        {"timestamp": stamp(21), "sampledValue": [{"value": 500.0}]}
    )
    (record,) = harness.send("TransactionEvent", ended, version=version).records
    assert (record.meter_stop_wh, record.energy_wh) == (392.71, 292.71)


@pytest.mark.parametrize("arrival", [(0, 1, 2), (0, 2, 1)], ids=["in order", "ended first"])
def test_within_one_millisecond_the_seq_no_orders_the_readings(arrival: tuple[int, ...]) -> None:
    harness = Harness(token("TAG-1"))
    events = [
        tx_event("Started", 0, 0, wh=0),
        tx_event("Updated", 1, 30, wh=269.8),
        tx_event("Ended", 2, 30, wh=392.71),  # no Transaction.End: the last reading up to it
    ]
    for index in arrival:
        harness.send("TransactionEvent", events[index], version="2.0.1")
    assert (harness.last().meter_stop_wh, harness.last().energy_wh) == (392.71, 392.71)
    assert_completed_is_final(harness.records)


def test_an_ended_that_arrives_after_later_events_takes_their_readings_back() -> None:
    harness = Harness(token("TAG-1"))
    harness.send("TransactionEvent", tx_event("Started", 0, 0, wh=0), version="2.0.1")
    harness.send("TransactionEvent", tx_event("Updated", 1, 10, wh=50), version="2.0.1")
    # a periodic Updated sent after the Ended overtakes it (the Ended was retried)
    harness.send("TransactionEvent", tx_event("Updated", 3, 20 + MS, wh=70), version="2.0.1")
    sent = harness.send("TransactionEvent", tx_event("Ended", 2, 20), version="2.0.1")
    assert sent.decision.anomalies == ("out_of_order", "event_after_end")
    (record,) = sent.records
    assert (record.event, record.meter_stop_wh, record.energy_wh) == ("completed", 50.0, 50.0)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_completed_session_is_what_the_ended_said_whatever_comes_when(
    data: st.DataObject,
) -> None:
    # a transaction: Started, Updated at rising times (some in the Ended's millisecond), the
    # Ended with or without its Transaction.End reading, periodic Updated sent after it
    updates = data.draw(st.lists(st.sampled_from([1.0, 5.0, MS, 0.0]), max_size=4))
    end_reading = data.draw(st.sampled_from(["end", "sample", "none"]))
    after = data.draw(st.lists(st.sampled_from([0.0, MS, 1.0]), max_size=KEEP_EARLIER))
    wh, at, events = 1000.0, 0.0, [tx_event("Started", 0, 0, wh=1000, id_token="TAG-1")]
    readings = [(0.0, 0, wh)]  # (at, seqNo, Wh) of the events up to the end
    for step in updates:
        at, wh = at + step, wh + 100
        events.append(tx_event("Updated", len(events), at, wh=wh, id_token="TAG-1"))
        readings.append((at, len(events) - 1, wh))
    end_seq, end_at, end_wh = len(events), at + data.draw(st.sampled_from([0.0, MS, 2.0])), wh + 7
    if end_reading == "none":
        events.append(tx_event("Ended", end_seq, end_at, id_token="TAG-1"))
    else:
        context = END if end_reading == "end" else None
        ended = tx_event("Ended", end_seq, end_at, wh=end_wh, context=context, id_token="TAG-1")
        events.append(ended)
        readings.append((end_at, end_seq, end_wh))
    later = end_at
    for step in after:
        later, wh = later + step, wh + 1000
        events.append(tx_event("Updated", len(events), later, wh=wh, id_token="TAG-1"))
    order = data.draw(st.permutations(range(len(events))))
    repeats = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=3))
    harness = Harness(token("TAG-1"))
    for index in [*order, *data.draw(st.permutations(repeats))]:
        sent = harness.send("TransactionEvent", events[index], version="2.0.1")
        assert sent.reply is not None  # every call answered
    stop = max(readings)[2]  # the Transaction.End reading, else the last up to the Ended
    final = harness.last()
    assert (final.state, final.meter_start_wh, final.meter_stop_wh) == ("completed", 1000.0, stop)
    assert final.energy_wh == round(stop - 1000.0, 3)
    assert final.stopped_at == T0 + timedelta(minutes=end_at)
    completed = [r for r in harness.records if r.state == "completed"]
    assert [r.event for r in completed][:1] == ["completed"]
    if end_reading == "end":  # what the end said, from the first completed record on
        assert {r.meter_stop_wh for r in completed} == {stop}
    assert all(r.meter_stop_wh in {wh for _, _, wh in readings} | {None} for r in completed)
    assert ("event_after_end" in harness.stations["CP-1"].sessions[0].anomalies) == bool(after)
    assert_completed_is_final(harness.records)
