"""Alert silences (csms.alert-silences.v1) as a table, and whether one silences an alert.

A :class:`~contracts.envelopes.Silence` matches an alert when its
``station_id`` is the alert's station (or null: every station) and its
``kind`` the alert's rule (or null: every rule); it is active from
``starts_at`` until before ``ends_at``. The notifier does not deliver an
alert record that an active silence matches. The decision is pure: the
instant is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelopes import Alert, Silence, decode_silence

__all__ = ["SilenceTable", "is_active", "matches"]

log = logging.getLogger(__name__)


def is_active(silence: Silence, at: datetime) -> bool:
    return silence.starts_at <= at < silence.ends_at


def matches(silence: Silence, alert: Alert) -> bool:
    """Whether ``silence`` is about ``alert``'s station and rule (whatever the time)."""
    return (silence.station_id is None or silence.station_id == alert.station_id) and (
        silence.kind is None or silence.kind == alert.kind
    )


class SilenceTable:
    """The latest record of every silence, by silence id."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._silences: dict[str, Silence] = {}
        for silence in silences:
            self.put(silence)

    def __len__(self) -> int:
        return len(self._silences)

    def __iter__(self) -> Iterator[Silence]:
        return iter(list(self._silences.values()))

    def get(self, silence_id: str) -> Silence | None:
        return self._silences.get(silence_id)

    def put(self, silence: Silence) -> None:
        self._silences[silence.silence_id] = silence

    def remove(self, silence_id: str) -> None:
        self._silences.pop(silence_id, None)

    def silencing(self, alert: Alert, at: datetime) -> Silence | None:
        """An active silence that matches ``alert`` at the instant ``at``, if any."""
        for silence in self._silences.values():
            if is_active(silence, at) and matches(silence, alert):
                return silence
        return None

    def apply(self, records: list[Any]) -> None:
        """Apply consumed records of csms.alert-silences.v1 (a tombstone removes its key)."""
        for record in records:
            if record.key is None:
                continue
            try:
                found = decode_silence(record.value)
            except msgspec.DecodeError as exc:
                log.warning(
                    "silences.undecodable", extra={"offset": record.offset, "error": str(exc)}
                )
                continue
            if found is None:
                self.remove(record.key.decode("utf-8", "replace"))
            else:
                self.put(found)
