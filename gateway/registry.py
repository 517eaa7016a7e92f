"""The station registry in memory: csms.stations.v1 followed from the beginning.

Every gateway instance needs every station (any station may connect to any
pod), so the registry reads all partitions of the compacted topic without a
consumer group, from the oldest record, and keeps following it: a station added,
changed, disabled or removed with ``csms stations`` takes effect on the next
handshake, on every pod. :attr:`StationRegistry.caught_up` turns true once every
partition was read up to its high watermark; until then the gateway is not
ready (a station missing only because it was not read yet would get 404).

A record that cannot be decoded, or whose value names another station than its
key, is logged and skipped, and the key is forgotten: the registry fails closed
(the station is refused as unknown) rather than keep a record that a later
update was meant to change. A tombstone (null value) removes the station.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from contracts.bus.follower import Followed, Follower, TopicFollower
from contracts.envelopes import StationRecord, decode_station
from contracts.settings import KafkaSettings
from contracts.topics import STATIONS

__all__ = ["StationRegistry", "apply_station_records"]

log = logging.getLogger(__name__)

OnChange = Callable[[str, StationRecord | None], None]


def apply_station_records(
    stations: dict[str, StationRecord],
    records: Iterable[Any],
    on_change: OnChange | None = None,
) -> int:
    """Apply consumed csms.stations.v1 records to ``stations``; returns how many were skipped.

    ``on_change(station_id, record_or_None)`` is called for every key that changed.
    """
    skipped = 0
    for record in records:
        if record.key is None:
            skipped += 1
            log.warning(
                "stations.record_skipped",
                extra={"partition": record.partition, "offset": record.offset, "why": "no key"},
            )
            continue
        station_id = record.key.decode("utf-8", "replace")
        station: StationRecord | None
        try:
            station = decode_station(record.value)
        except msgspec.MsgspecError as exc:
            station = None
            why = str(exc)
        else:
            why = "" if station is None or station.station_id == station_id else "key mismatch"
            if why:
                station = None
        if why:
            skipped += 1
            log.warning(
                "stations.record_skipped",
                extra={
                    "station_id": station_id,
                    "partition": record.partition,
                    "offset": record.offset,
                    "why": why,
                },
            )
        if station is None:
            if stations.pop(station_id, None) is None:
                continue
        else:
            stations[station_id] = station
        if on_change is not None:
            try:
                on_change(station_id, station)
            except Exception:
                log.exception("stations.on_change_failed", extra={"station_id": station_id})
    return skipped


class StationRegistry:
    """csms.stations.v1 in memory: :meth:`get` a station's record by its id.

    ``on_change(station_id, record_or_None)`` is called after each change is
    applied (``None``: the station was removed), e.g. to close the connection of
    a station that was disabled. It must not block.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str = "csms-stations",
        on_change: OnChange | None = None,
        follower: Follower | None = None,
    ) -> None:
        """``follower``: read the topic through that shared :class:`Follower`, which its
        owner starts and stops (:meth:`start` and :meth:`stop` then do nothing); without
        it the registry has a consumer of its own."""
        self.kafka = kafka
        self.client_id = client_id
        self.on_change = on_change
        self._stations: dict[str, StationRecord] = {}
        self._shared = follower
        self._follower: TopicFollower | None = None
        self._followed: Followed | TopicFollower | None = None
        if follower is not None:
            self._followed = follower.follow(STATIONS.name, self._apply)
        self.skipped = 0
        """Records skipped because they could not be decoded."""

    def get(self, station_id: str, /) -> StationRecord | None:
        return self._stations.get(station_id)

    def __len__(self) -> int:
        return len(self._stations)

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._stations

    def snapshot(self) -> dict[str, StationRecord]:
        """A copy of every station's record, by id."""
        return dict(self._stations)

    @property
    def caught_up(self) -> bool:
        """Whether every partition was read up to its high watermark at least once."""
        return self._followed is not None and self._followed.caught_up

    async def start(self) -> None:
        """Connect and start reading from the beginning, in the background.

        Raises the Kafka client's error when Kafka cannot be reached, and
        ``TimeoutError`` when the topic does not exist (``csms topics create``).
        """
        if self._shared is not None:
            return
        self._follower = TopicFollower(
            self.kafka, STATIONS.name, self._apply, client_id=self.client_id
        )
        self._followed = self._follower
        try:
            await self._follower.start()
        except BaseException:
            follower, self._follower = self._follower, None
            await follower.stop()
            raise

    async def wait_caught_up(self, within: float) -> bool:
        """Wait until :attr:`caught_up`, at most ``within`` seconds; returns it."""
        if self._followed is None:
            return False
        return await self._followed.wait_caught_up(within)

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()

    def _apply(self, records: list[Any]) -> None:
        self.skipped += apply_station_records(self._stations, records, self.on_change)
