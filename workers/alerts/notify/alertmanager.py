"""An :class:`~contracts.envelopes.Alert` as Prometheus Alertmanager's v2 API takes it.

``POST /api/v2/alerts`` takes a JSON list of alerts. Alertmanager knows an
alert by its label set, so the labels are what does not change over the
alert's life and what routes and groups well:

==================  =========================================================
label               value
==================  =========================================================
``alertname``       the rule (the alert's ``kind``), e.g. ``station_offline``
``severity``        ``info``, ``warning`` or ``critical``
``station_id``      the station
``evse_id``         the EVSE, when the alert is about one
``connector_id``    the connector, when the alert is about one
``gateway_id``      the gateway instance that held the station, when known
``source``          ``csms``
==================  =========================================================

Annotations: ``summary`` (the alert's one line), ``details`` (its facts as
JSON), ``alert_id``, and ``flapping: "true"`` for a flapping alert.

``startsAt`` is ``raised_at``. A cleared alert gets ``endsAt`` = ``cleared_at``
(Alertmanager resolves it). A raised one gets ``endsAt`` = now + ``lease``:
Alertmanager resolves it by itself once that passes, so the notifier posts
every raised alert again well before (``CSMS_ALERTS_RESEND_INTERVAL``; the
lease is :data:`LEASE_INTERVALS` of them), and an alert whose clear was lost
with its notifier still resolves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from contracts.envelopes import Alert

__all__ = ["LEASE_INTERVALS", "SOURCE_LABEL", "body", "labels", "posted_alert"]

SOURCE_LABEL = "csms"
LEASE_INTERVALS = 4
"""A raised alert's ``endsAt`` is this many re-post intervals ahead."""

_ENCODER = msgspec.json.Encoder()


def _time(at: datetime) -> str:
    return _ENCODER.encode(at).decode()[1:-1]


def labels(alert: Alert) -> dict[str, str]:
    """The alert's label set: the same for its raised and its cleared record."""
    found = {
        "alertname": alert.kind,
        "severity": alert.severity,
        "station_id": alert.station_id,
        "source": SOURCE_LABEL,
    }
    if alert.evse_id is not None:
        found["evse_id"] = str(alert.evse_id)
    if alert.connector_id is not None:
        found["connector_id"] = str(alert.connector_id)
    if alert.gateway_id:
        found["gateway_id"] = alert.gateway_id
    return found


def posted_alert(
    alert: Alert, now: datetime, *, lease: timedelta, generator_url: str = ""
) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` list for ``alert`` at the instant ``now``.

    ``generator_url`` may name ``{alert_id}`` and ``{station_id}``; empty: none.
    """
    annotations = {"summary": alert.summary, "alert_id": alert.alert_id}
    if alert.details:
        annotations["details"] = _ENCODER.encode(alert.details).decode()
    if alert.flapping:
        annotations["flapping"] = "true"
    ends = (alert.cleared_at or now) if alert.state == "cleared" else now + lease
    posted: dict[str, Any] = {
        "labels": labels(alert),
        "annotations": annotations,
        "startsAt": _time(alert.raised_at),
        "endsAt": _time(ends),
    }
    if generator_url:
        posted["generatorURL"] = generator_url.format(
            alert_id=alert.alert_id, station_id=alert.station_id
        )
    return posted


def body(
    alerts: Iterable[Alert], now: datetime, *, lease: timedelta, generator_url: str = ""
) -> bytes:
    """The JSON body of one ``POST /api/v2/alerts`` carrying ``alerts``."""
    return _ENCODER.encode(
        [posted_alert(a, now, lease=lease, generator_url=generator_url) for a in alerts]
    )
