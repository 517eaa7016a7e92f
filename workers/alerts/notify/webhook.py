"""A webhook delivery: the alert record as the body, signed with HMAC-SHA256.

The body is the :class:`~contracts.envelopes.Alert` record exactly as it is on
csms.alerts.v1 (JSON, docs/topics.md). The headers:

========================  ===============================================================
header                    value
========================  ===============================================================
``Content-Type``          ``application/json``
``X-Csms-Delivery``       the record's delivery id, ``<alert_id>:<state>`` (its ``ce_id``):
                          the same for a delivery sent again, so a receiver can ignore it
``X-Csms-Timestamp``      when it was signed, in whole seconds since the Unix epoch
``X-Csms-Signature``      ``v1=<hex>`` per signing secret, comma-separated, where ``<hex>`` is
                          HMAC-SHA256(secret, ``<timestamp>.`` + body) in lower-case hex
========================  ===============================================================

A receiver verifies a delivery (:func:`verify` does exactly this): compute
HMAC-SHA256 over the ``X-Csms-Timestamp`` value, a ``.`` and the raw body with
its secret, compare it in constant time with each ``v1=`` value, and refuse
the delivery unless one matches and the timestamp is within its replay window
(five minutes either way by default) of its own clock. Several ``v1=`` values
are there while secrets rotate (``CSMS_ALERTS_WEBHOOK_SECRETS`` lists old and
new): a receiver holding either accepts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from contracts.envelopes import Alert, encode_alert

__all__ = [
    "DELIVERY_HEADER",
    "REPLAY_WINDOW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "delivery_id",
    "request",
    "sign",
    "verify",
]

DELIVERY_HEADER = "X-Csms-Delivery"
TIMESTAMP_HEADER = "X-Csms-Timestamp"
SIGNATURE_HEADER = "X-Csms-Signature"
REPLAY_WINDOW = 300.0
"""Seconds a receiver should accept a timestamp away from its own clock, by default."""


class SignatureError(ValueError):
    """A delivery that must be refused; the message says why."""


def delivery_id(alert: Alert) -> str:
    """The id of the delivery of ``alert``'s record: ``<alert_id>:<state>`` (its ``ce_id``)."""
    return f"{alert.alert_id}:{alert.state}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def request(alert: Alert, secrets: Sequence[str], now: float) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the webhook POST of ``alert``, signed at ``now`` (Unix seconds)."""
    body = encode_alert(alert)
    timestamp = int(now)
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id(alert),
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secrets:
        headers[SIGNATURE_HEADER] = ",".join(f"v1={sign(s, timestamp, body)}" for s in secrets)
    return body, headers


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    window: float = REPLAY_WINDOW,
) -> None:
    """Check a delivery as a receiver must; raises :class:`SignatureError` when it is not good.

    ``headers`` are looked up case-insensitively; ``now`` is the receiver's
    clock in Unix seconds.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower())
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if stamp is None or signature is None:
        raise SignatureError(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} {stamp!r} is not a number") from None
    if abs(now - timestamp) > window:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {now - timestamp:.0f} s away: a replay?")
    expected = sign(secret, timestamp, body)
    offered = [part.strip()[3:] for part in signature.split(",") if part.strip()[:3] == "v1="]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("no signature matches")
