"""The notifier's pure parts: Alertmanager's payload, webhook signatures, back-off, silences."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelopes import Alert, Silence, decode_alert
from workers.alerts.notify import alertmanager, webhook
from workers.alerts.notify.backoff import delay
from workers.alerts.notify.firing import FiringAlerts
from workers.alerts.notify.recent import RecentIds
from workers.alerts.silences import SilenceTable, is_active, matches

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=4)


def _alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "CP-1/1/2/connector_faulted@0:7",
        "station_id": "CP-1",
        "kind": "connector_faulted",
        "severity": "critical",
        "state": "raised",
        "evse_id": 1,
        "connector_id": 2,
        "raised_at": AT,
        "summary": "CP-1 connector 2 is faulted",
        "details": {"error_code": "GroundFailure"},
        "fingerprint": "CP-1/1/2/connector_faulted",
        "gateway_id": "gw-1",
    }
    fields.update(overrides)
    return Alert(**fields)


# --- Alertmanager -------------------------------------------------------------------------------


def test_a_raised_alert_posts_with_routing_labels_and_a_lease() -> None:
    posted = alertmanager.posted_alert(_alert(), AT + timedelta(minutes=1), lease=LEASE)
    assert posted["labels"] == {
        "alertname": "connector_faulted",
        "severity": "critical",
        "station_id": "CP-1",
        "evse_id": "1",
        "connector_id": "2",
        "gateway_id": "gw-1",
        "source": "csms",
    }
    assert posted["annotations"] == {
        "summary": "CP-1 connector 2 is faulted",
        "alert_id": "CP-1/1/2/connector_faulted@0:7",
        "details": '{"error_code":"GroundFailure"}',
    }
    assert posted["startsAt"] == "2026-03-01T12:00:00Z"
    assert posted["endsAt"] == "2026-03-01T12:05:00Z"
    assert "generatorURL" not in posted


def test_a_cleared_alert_ends_when_it_was_cleared_with_the_same_labels() -> None:
    raised = _alert()
    cleared = _alert(state="cleared", cleared_at=AT + timedelta(minutes=3))
    posted = alertmanager.posted_alert(cleared, AT + timedelta(hours=1), lease=LEASE)
    assert posted["endsAt"] == "2026-03-01T12:03:00Z"
    assert posted["labels"] == alertmanager.labels(raised)


def test_a_station_alert_has_no_evse_labels_and_flapping_is_an_annotation() -> None:
    alert = _alert(evse_id=None, connector_id=None, gateway_id=None, details={}, flapping=True)
    posted = alertmanager.posted_alert(
        alert, AT, lease=LEASE, generator_url="https://ops/alerts/{alert_id}?s={station_id}"
    )
    assert set(posted["labels"]) == {"alertname", "severity", "station_id", "source"}
    assert posted["annotations"]["flapping"] == "true"
    assert "details" not in posted["annotations"]
    assert posted["generatorURL"] == f"https://ops/alerts/{alert.alert_id}?s=CP-1"


def test_the_body_is_a_json_list() -> None:
    body = json.loads(alertmanager.body([_alert(), _alert(alert_id="x")], AT, lease=LEASE))
    assert [a["annotations"]["alert_id"] for a in body] == [_alert().alert_id, "x"]


# --- webhooks -----------------------------------------------------------------------------------


def test_a_webhook_body_is_the_record_and_its_signature_verifies() -> None:
    alert = _alert()
    body, headers = webhook.request(alert, ("s3cret",), 1_772_366_400.7)
    assert decode_alert(body) == alert
    assert headers["X-Csms-Timestamp"] == "1772366400"
    assert headers["X-Csms-Delivery"] == f"{alert.alert_id}:raised"
    webhook.verify("s3cret", headers, body, 1_772_366_400.0)
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook.verify("s3cret", lowered, body, 1_772_366_400.0 + 299)


@pytest.mark.parametrize(
    ("secret", "tamper", "now", "message"),
    [
        ("other", None, 0.0, "no signature matches"),
        ("s3cret", b"{}", 0.0, "no signature matches"),
        ("s3cret", None, 301.0, "a replay"),
        ("s3cret", None, -301.0, "a replay"),
    ],
)
def test_a_receiver_refuses_a_bad_signature_or_an_old_delivery(
    secret: str, tamper: bytes | None, now: float, message: str
) -> None:
    body, headers = webhook.request(_alert(), ("s3cret",), 1_000_000.0)
    with pytest.raises(webhook.SignatureError, match=message):
        webhook.verify(secret, headers, tamper or body, 1_000_000.0 + now)


def test_rotation_signs_with_every_secret_and_unsigned_has_no_signature() -> None:
    body, headers = webhook.request(_alert(), ("new", "old"), 1_000_000.0)
    assert headers["X-Csms-Signature"].count("v1=") == 2
    webhook.verify("old", headers, body, 1_000_000.0)
    webhook.verify("new", headers, body, 1_000_000.0)
    _, unsigned = webhook.request(_alert(), (), 1_000_000.0)
    assert "X-Csms-Signature" not in unsigned
    with pytest.raises(webhook.SignatureError, match="required"):
        webhook.verify("new", unsigned, body, 1_000_000.0)


def test_a_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # the documented recipe, computed independently
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"12.{}", hashlib.sha256).hexdigest()
    assert webhook.sign("k", 12, b"{}") == expected


# --- back-off, recent ids, firing set -----------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    assert [delay(n, cap=10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert delay(10_000, cap=60.0) == 60.0
    with pytest.raises(ValueError, match="at least 1"):
        delay(0, cap=1.0)


@given(st.integers(min_value=1, max_value=5000), st.floats(min_value=0.5, max_value=3600))
def test_backoff_never_shrinks_and_never_passes_the_cap(failures: int, cap: float) -> None:
    assert delay(failures, cap=cap) <= cap
    assert delay(failures + 1, cap=cap) >= delay(failures, cap=cap)


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(2)
    for id_ in ("a", "b", "a", "c"):
        recent.add(id_)
    assert "a" in recent and "c" in recent and "b" not in recent
    assert len(recent) == 2


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=30))
def test_firing_alerts_are_those_raised_and_not_cleared(ids: list[str]) -> None:
    firing = FiringAlerts()
    expected: set[str] = set()
    for n, id_ in enumerate(ids):
        state = "cleared" if n % 3 == 2 else "raised"
        firing.put(_alert(alert_id=id_, state=state))
        if state == "raised":
            expected.add(id_)
        else:
            expected.discard(id_)
    assert {a.alert_id for a in firing} == expected


# --- silences -----------------------------------------------------------------------------------


def _silence(**overrides: Any) -> Silence:
    fields: dict[str, Any] = {
        "silence_id": "sil-1",
        "station_id": "CP-1",
        "kind": None,
        "starts_at": AT,
        "ends_at": AT + timedelta(hours=2),
        "created_by": "ops",
        "created_at": AT,
    }
    fields.update(overrides)
    return Silence(**fields)


def test_a_silence_is_active_from_its_start_until_before_its_end() -> None:
    silence = _silence()
    assert not is_active(silence, AT - timedelta(seconds=1))
    assert is_active(silence, AT)
    assert not is_active(silence, AT + timedelta(hours=2))


@pytest.mark.parametrize(
    ("station", "kind", "expected"),
    [
        ("CP-1", None, True),
        ("CP-1", "connector_faulted", True),
        ("CP-1", "station_offline", False),
        ("CP-2", None, False),
        (None, "connector_faulted", True),
        (None, None, True),
    ],
)
def test_a_silence_matches_its_station_and_rule(
    station: str | None, kind: str | None, expected: bool
) -> None:
    assert matches(_silence(station_id=station, kind=kind), _alert()) is expected


def test_the_table_finds_an_active_matching_silence() -> None:
    table = SilenceTable([_silence(), _silence(silence_id="sil-2", station_id="CP-2")])
    assert table.silencing(_alert(), AT + timedelta(minutes=1)) == _silence()
    assert table.silencing(_alert(), AT + timedelta(hours=3)) is None
    table.remove("sil-1")
    assert table.silencing(_alert(), AT + timedelta(minutes=1)) is None
