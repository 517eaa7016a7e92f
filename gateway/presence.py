"""Presence: which gateway instance holds each station, from the compacted ``ocpp.presence.v1``.

Every gateway writes a record when it accepts a station and a tombstone when the
station leaves (unless a newer connection took over), and reads the whole topic
to know:

- that a station it holds was taken over by a newer, authenticated connection
  on another instance: it then closes its own (RELIABILITY 9, "wherever it is");
- whether anyone holds a station, so that a command for a station nobody holds
  ends ``station_offline`` (:mod:`gateway.commands`).

A holder's own tombstone says up to which offset of ``ocpp.commands.v1`` its
connection handled the station's commands (``csms-commands-handled``); the view
keeps that with the departed record (:meth:`PresenceView.departed`) until the
station connects again, so that the offline responder does not give a command
the holder answered a second result.

Races are settled by the record's ``connected_at``: the newer connection wins.
A tombstone that lands after a newer connection's record (the old instance
closed late) would erase the live record; the instance holding the station
then writes its record again. Records naming an instance that is gone (it
crashed: :mod:`gateway.peers`) count for nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from contracts.envelopes import Presence, decode_presence
from contracts.headers import CE_SOURCE, COMMANDS_HANDLED, gateway_source

if TYPE_CHECKING:
    from gateway.connection import StationConnection

__all__ = ["PresenceView"]

log = logging.getLogger("gateway.presence")


class PresenceView:
    def __init__(
        self,
        instance_id: str,
        *,
        local: Callable[[str], StationConnection | None],
        republish: Callable[[Presence], None],
    ) -> None:
        self.instance_id = instance_id
        self._local = local
        self._republish = republish
        self._holders: dict[str, Presence] = {}
        self._mine: dict[str, Presence] = {}  # stations held here, by the current connection
        self.gone: set[str] = set()  # instances that crashed holding stations (gateway.peers)
        # instance: whether its latest record to end was ended by itself (a tombstone) rather
        # than by another gateway (a newer connection, a tombstone for a crashed instance)
        self.released_itself: dict[str, bool] = {}
        # station: the record of the holder that let it go itself, and the offset just past
        # the last command that connection handled
        self._departed: dict[str, tuple[Presence, int]] = {}

    # ------------------------------------------------------------------ local changes

    def held(self, presence: Presence) -> None:
        self._departed.pop(presence.station_id, None)
        self._replace(presence)
        self._mine[presence.station_id] = presence

    def released(
        self, station_id: str, connection_id: str, commands_handled: int | None = None
    ) -> None:
        """The station's connection here ended and its tombstone is on its way."""
        mine = self._mine.get(station_id)
        if mine is not None and mine.connection_id == connection_id:
            del self._mine[station_id]
            holder = self._holders.get(station_id)
            if holder is not None and holder.connection_id == connection_id:
                del self._holders[station_id]
            if commands_handled is not None:
                self._departed[station_id] = (mine, commands_handled)

    def owns(self, connection: StationConnection) -> bool:
        """Is ``connection`` still the station's latest known connection (may it tombstone)?"""
        holder = self._holders.get(connection.station_id)
        return holder is None or holder.connection_id == connection.connection_id

    def holder(self, station_id: str) -> Presence | None:
        """The live instance's record for the station; None if nobody (alive) holds it."""
        holder = self._holders.get(station_id)
        return None if holder is None or holder.gateway_id in self.gone else holder

    def departed(self, station_id: str) -> tuple[Presence, int] | None:
        """The last holder's record if it let the station go itself (nobody holds it since),
        with the offset just past the last command its connection handled; else None."""
        return self._departed.get(station_id)

    def holding_instances(self) -> set[str]:
        return {holder.gateway_id for holder in self._holders.values()}

    def held_by(self, instance_id: str) -> list[Presence]:
        return [holder for holder in self._holders.values() if holder.gateway_id == instance_id]

    def left_behind(self) -> list[Presence]:
        """Records naming this instance for stations it does not hold: an earlier process
        with the same instance id (a restarted container) left them."""
        return [p for p in self.held_by(self.instance_id) if p.station_id not in self._mine]

    def __len__(self) -> int:
        return len(self._holders)

    # ------------------------------------------------------------------ the topic

    def on_records(self, records: list[Any]) -> None:
        for record in records:
            if record.key is None:
                continue
            station_id = record.key.decode("utf-8", "replace")
            try:
                presence = decode_presence(record.value)
            except Exception:
                log.warning("presence.undecodable", extra={"station_id": station_id})
                continue
            if presence is None:
                self._note_release(station_id, record.headers)
            self._apply(station_id, presence)

    def _replace(self, presence: Presence) -> None:
        current = self._holders.get(presence.station_id)
        if current is not None and current.gateway_id != presence.gateway_id:
            self.released_itself[current.gateway_id] = False  # the station moved on without it
        self._holders[presence.station_id] = presence

    def _note_release(self, station_id: str, headers: Any) -> None:
        """Who ended the holder's record: the holder itself (a station left; a clean stop
        tombstones every station before it leaves the gateways' group), or another gateway."""
        holder = self._holders.get(station_id)
        if holder is not None and self._mine.get(station_id) is None:
            own = (CE_SOURCE, _source(holder.gateway_id)) in headers
            self.released_itself[holder.gateway_id] = own
            handled = next((v for k, v in headers if k == COMMANDS_HANDLED), None)
            if own and handled is not None:
                try:
                    self._departed[station_id] = (holder, int(handled))
                except ValueError:
                    log.warning("presence.bad_header", extra={"station_id": station_id})

    def _apply(self, station_id: str, presence: Presence | None) -> None:
        mine = self._mine.get(station_id)
        if presence is None:
            if mine is not None:
                # a late tombstone from an older connection: say again that we hold it
                self._republish(mine)
            else:
                self._holders.pop(station_id, None)
            return
        current = self._holders.get(station_id)
        if current is not None and current.connected_at > presence.connected_at:
            return  # an older record arriving late
        departed = self._departed.get(station_id)
        if departed is not None and departed[0].connected_at <= presence.connected_at:
            del self._departed[station_id]  # held again: its commands are the new holder's
        self._replace(presence)
        if mine is None or presence.connection_id == mine.connection_id:
            return
        if presence.connected_at >= mine.connected_at:
            connection = self._local(station_id)
            del self._mine[station_id]
            if connection is not None and connection.connection_id == mine.connection_id:
                log.info(
                    "station.replaced",
                    extra={"station_id": station_id, "by_gateway": presence.gateway_id},
                )
                connection.close(1000, "replaced by a newer connection")
                connection.close_reason = "replaced"
        else:
            # our connection is the newer one: make sure the topic says so
            self._holders[station_id] = mine
            self._republish(mine)


def _source(gateway_id: str) -> bytes:
    return gateway_source(gateway_id).encode()
