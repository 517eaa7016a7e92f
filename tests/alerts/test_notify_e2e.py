"""The notifier as a real process, against a real Alertmanager, webhook receivers and Kafka."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.bus.clients import producer
from contracts.envelopes import Alert, encode_alert, record_key
from contracts.headers import alert_headers
from contracts.topics import ALERTS
from tests.support.alertmanager import Alertmanager, Delivery, Receiver
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CsmsProcess, run_csms, wait_until
from workers.alerts.notify import webhook

pytestmark = pytest.mark.kafka

SECRET = "s3cret"
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _alert(station: str, kind: str = "connector_faulted", **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": f"{station}/1/1/{kind}@0:1",
        "station_id": station,
        "kind": kind,
        "severity": "critical",
        "state": "raised",
        "evse_id": 1,
        "connector_id": 1,
        "raised_at": datetime.now(UTC) - timedelta(seconds=5),
        "summary": f"{station} connector 1 is faulted",
        "gateway_id": "gw-1",
    }
    fields.update(overrides)
    return Alert(**fields)


def _cleared(alert: Alert) -> Alert:
    return Alert(
        **{
            **{f: getattr(alert, f) for f in alert.__struct_fields__},
            "state": "cleared",
            "cleared_at": datetime.now(UTC),
        }
    )


async def _write(kafka: KafkaUnderTest, *alerts: Alert) -> None:
    """Write ``alerts`` to csms.alerts.v1 in one go, in order, as the alerts worker would."""
    client = producer(kafka.settings, "test-alerts")
    await client.start()
    try:
        sent = [
            await client.send(
                ALERTS.name,
                encode_alert(a),
                key=record_key(a.station_id),
                headers=alert_headers(a, source="/test"),
            )
            for a in alerts
        ]
        await asyncio.gather(*sent)
    finally:
        await client.stop()


async def _committed(kafka: KafkaUnderTest, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


def _notifier(kafka: KafkaUnderTest, hooks: dict[str, str], alertmanager: str = "") -> CsmsProcess:
    env = kafka.env() | {
        "CSMS_STATUS_PORT": "0",
        "CSMS_ALERTS_WEBHOOKS": ",".join(f"{n}={u}" for n, u in hooks.items()),
        "CSMS_ALERTS_WEBHOOK_SECRETS": SECRET,
        "CSMS_ALERTS_ALERTMANAGER_URL": alertmanager,
        "CSMS_ALERTS_RESEND_INTERVAL": "1",
    }
    return CsmsProcess("alerts", "notify", env=env)


def _ids(deliveries: list[Delivery], station: str) -> list[str]:
    return [d.headers["x-csms-delivery"] for d in deliveries if d.json()["station_id"] == station]


@pytest.fixture
def station() -> str:
    return f"CP-N-{uuid.uuid4().hex[:8]}"


def _notified(deliveries: Any, station: str, status: str) -> bool:
    """Alertmanager notified ``status`` (firing, resolved) for an alert of ``station``."""
    return any(
        alert["status"] == status and alert["labels"].get("station_id") == station
        for delivery in deliveries
        for alert in delivery.json()["alerts"]
    )


async def test_alertmanager_and_a_webhook_get_a_raised_then_cleared_alert(
    kafka: KafkaUnderTest, station: str
) -> None:
    hook_name = f"h{uuid.uuid4().hex[:8]}"
    with (
        Receiver() as am_hook,
        Receiver(fail_first=2) as hook,
        Alertmanager(am_hook.url) as am,
        _notifier(kafka, {hook_name: hook.url}, am.url) as notifier,
    ):
        ready = notifier.wait_for(r"csms alerts notify: alertmanager, webhook-\S+ .* port (\d+)")
        notifier.status_port = int(ready[1])
        raised = _alert(station)
        await _write(kafka, raised)

        assert wait_until(lambda: am.alerts(station_id=station), timeout=20), notifier.output
        # the raised alert is posted again every second (CSMS_ALERTS_RESEND_INTERVAL)
        assert wait_until(
            lambda: notifier.metric("csms_alerts_reposts_total", {"outcome": "posted"}) >= 2,
            timeout=10,
        ), notifier.output
        (held,) = am.alerts(station_id=station)
        assert held["status"]["state"] == "active"
        assert held["labels"] == {
            "alertname": "connector_faulted",
            "severity": "critical",
            "station_id": station,
            "evse_id": "1",
            "connector_id": "1",
            "gateway_id": "gw-1",
            "source": "csms",
        }
        # (the notifier re-posts every alert still raised on the topic: earlier tests' too)
        am_hook.wait_for(
            lambda got: _notified(got, station, "firing"), "a firing notification of the station"
        )

        # the webhook failed twice, then got the record once, signed
        got = hook.wait_for(lambda got: _ids(got, station), "the raised record")
        assert hook.failures == 2
        webhook.verify(SECRET, got[0].headers, got[0].body, time.time())
        assert got[0].json() == {**got[0].json(), "alert_id": raised.alert_id, "state": "raised"}

        # a duplicate of the raised record, then the clear: the duplicate is not delivered
        await _write(kafka, raised, _cleared(raised))
        got = hook.wait_for(lambda got: len(_ids(got, station)) >= 2, "the cleared record")
        assert _ids(got, station) == [f"{raised.alert_id}:raised", f"{raised.alert_id}:cleared"]
        am_hook.wait_for(
            lambda got: _notified(got, station, "resolved"),
            "a resolved notification of the station",
        )
        # resolved: Alertmanager lists it no more as active
        assert all(a["status"]["state"] != "active" for a in am.alerts(station_id=station))
        assert (
            notifier.metric(
                "csms_alerts_notifications_total",
                {"receiver": f"webhook-{hook_name}", "outcome": "retried"},
            )
            == 2.0
        )


async def test_a_killed_notifier_restarted_sends_nothing_twice(
    kafka: KafkaUnderTest, station: str
) -> None:
    hook_name = f"k{uuid.uuid4().hex[:8]}"
    group = f"csms-alerts-notify-webhook-{hook_name}"
    first, second, third = (_alert(station, kind) for kind in ("a_rule", "b_rule", "c_rule"))
    with Receiver() as hook:
        with _notifier(kafka, {hook_name: hook.url}) as notifier:
            notifier.wait_for("csms alerts notify: webhook-")
            before = await _committed(kafka, group)
            await _write(kafka, first, second, _cleared(first))
            hook.wait_for(lambda got: len(_ids(got, station)) == 3, "three records")
            deadline = time.monotonic() + 20
            while await _committed(kafka, group) < before + 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            notifier.signal(signal.SIGKILL)
            notifier.wait()
        # written while it was down: a duplicate (the alerts worker after a crash) and a new one
        await _write(kafka, second, third)
        with _notifier(kafka, {hook_name: hook.url}) as again:
            again.wait_for("csms alerts notify: webhook-")
            got = hook.wait_for(lambda got: len(_ids(got, station)) >= 4, "the new record")
    assert _ids(got, station) == [
        f"{first.alert_id}:raised",
        f"{second.alert_id}:raised",
        f"{first.alert_id}:cleared",
        f"{third.alert_id}:raised",
    ]


async def test_a_silence_keeps_its_station_and_rule_from_every_receiver(
    kafka: KafkaUnderTest, station: str
) -> None:
    env = kafka.env()
    bad = run_csms("alerts", "silence", "--station", station, "--for", "2 hours", env=env)
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "csms alerts silence: --for '2 hours' is not a duration (e.g. 30m, 2h, 1d, 1h30m)",
    )
    made = run_csms(
        "alerts", "silence", "--station", station, "--rule", "connector_faulted",
        "--for", "1h", "--comment", "repair", "--by", "test", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split("\t")[1]
    listed = run_csms("alerts", "silences", env=env)
    assert f"{silence_id}\t{station}\tconnector_faulted\t" in listed.stdout

    hook_name = f"s{uuid.uuid4().hex[:8]}"
    silenced, offline = _alert(station), _alert(station, "station_offline", evse_id=None)
    with (
        Receiver() as am_hook,
        Receiver() as hook,
        Alertmanager(am_hook.url) as am,
        _notifier(kafka, {hook_name: hook.url}, am.url) as notifier,
    ):
        notifier.wait_for("csms alerts notify: alertmanager")
        await _write(kafka, silenced, offline)  # one partition, in this order
        got = hook.wait_for(lambda got: _ids(got, station), "the offline alert")
        assert _ids(got, station) == [f"{offline.alert_id}:raised"]
        assert wait_until(lambda: am.alerts(station_id=station), timeout=20)
        # a re-post (it moves updatedAt) leaves the silenced one out as well
        posted = am.alerts(station_id=station)[0]["updatedAt"]
        assert wait_until(lambda: am.alerts(station_id=station)[0]["updatedAt"] != posted, 20)
        assert [a["labels"]["alertname"] for a in am.alerts(station_id=station)] == [
            "station_offline"
        ]

        # the silence ends: Alertmanager gets the still raised alert at the next re-post
        assert run_csms("alerts", "unsilence", silence_id, env=env).returncode == 0
        assert wait_until(lambda: len(am.alerts(station_id=station)) == 2, timeout=20)

    unknown = run_csms("alerts", "unsilence", silence_id, env=env)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        f"csms alerts unsilence: unknown silence {silence_id!r} (csms alerts silences lists them)",
    )
    listing = run_csms("alerts", "list", "--state", "firing", "--station", station, env=env)
    assert sorted(line.split("\t")[2] for line in listing.stdout.splitlines()) == [
        "connector_faulted",
        "station_offline",
    ]
    shown = run_csms("alerts", "show", offline.alert_id, env=env)
    assert shown.returncode == 0 and f'"alert_id": "{offline.alert_id}"' in shown.stdout
    missing = run_csms("alerts", "show", "nope", env=env)
    assert missing.returncode == 2 and "unknown alert 'nope'" in missing.stderr
