"""The alerts raised and not yet cleared, from csms.alerts.v1 read from its beginning.

Alertmanager forgets a raised alert once its ``endsAt`` lease passes, so the
notifier posts them all again every re-post interval; this is that set. It
follows the topic: a raised record adds its alert, the cleared record with
the same ``alert_id`` removes it. Both records of an alert have the station as
their key, so they are on one partition and read in order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec

from contracts.envelopes import Alert, decode_alert

__all__ = ["FiringAlerts"]

log = logging.getLogger(__name__)


class FiringAlerts:
    """Raised, not cleared alerts by ``alert_id``."""

    def __init__(self) -> None:
        self._raised: dict[str, Alert] = {}

    def __len__(self) -> int:
        return len(self._raised)

    def __iter__(self) -> Iterator[Alert]:
        return iter(list(self._raised.values()))

    def get(self, alert_id: str) -> Alert | None:
        return self._raised.get(alert_id)

    def put(self, alert: Alert) -> None:
        """Take one record into account."""
        if alert.state == "cleared":
            self._raised.pop(alert.alert_id, None)
        else:
            self._raised[alert.alert_id] = alert

    def apply(self, records: list[Any]) -> None:
        """Apply consumed records of csms.alerts.v1 (undecodable ones are logged and skipped)."""
        for record in records:
            try:
                alert = decode_alert(record.value)
            except (msgspec.DecodeError, TypeError) as exc:
                log.warning(
                    "alerts.undecodable",
                    extra={
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": str(exc),
                    },
                )
                continue
            self.put(alert)
