"""Which gateway instances are alive, and the presence a gone one left behind.

A gateway that stops cleanly tombstones its stations' presence; one that
crashes (an OOM kill, a lost node, SIGKILL) cannot. Its records would go on
naming a holder that no longer runs: commands for those stations would get no
result, and readers of ``ocpp.presence.v1`` would show the stations online.

Every running gateway is a member of the offline responder's consumer group,
and Kafka removes a member that stops heartbeating once its session times out.
So each gateway asks the group's coordinator for the members (DescribeGroups)
every ``gone_after / 3`` seconds and reads their instance ids from their client
ids (:func:`gateway.offline.instance_of`). An instance that holds stations in
presence and has been missing from the group for ``gone_after`` seconds is gone:

- its stations count as held by nobody, so the offline responder answers
  commands for them ``station_offline`` (:meth:`PresenceView.holder`);
- the live member whose instance id sorts first tombstones their presence
  records, so that every reader sees them offline. A station that has
  connected elsewhere meanwhile keeps its new record: only records naming the
  gone instance are tombstoned, and a tombstone that races a newer record is
  answered by its holder writing the record again (:mod:`gateway.presence`).

Without an answer from the coordinator nothing is declared gone, and absences
are counted afresh once it answers again (after a Kafka outage every gateway's
consumer may have to rejoin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.client import CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DescribeGroupsRequest

from gateway.offline import GROUP, instance_of
from gateway.presence import PresenceView

__all__ = ["Peers"]

log = logging.getLogger("gateway.peers")

NO_ERROR = 0
_MEMBER_ID = re.compile(r"(.+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Peers:
    """Watches the gateways' consumer group; clears the presence of instances that are gone."""

    def __init__(
        self,
        client: AIOKafkaClient,
        presence: PresenceView,
        *,
        gone_after: float,
        tombstone: Callable[[str, Callable[[BaseException | None], None]], None],
    ) -> None:
        self.client = client
        self.presence = presence
        self.gone_after = gone_after
        self._tombstone = tombstone
        self._missing_since: dict[str, float] = {}
        self._cleared: dict[str, str] = {}  # station id: connection id of the record tombstoned
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.gone_after > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway peers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.gone_after / 3)
            try:
                members = await self.members()
            except Exception as exc:  # Kafka's, or a bug: never the loop's end
                level = logging.DEBUG if isinstance(exc, KafkaError | OSError) else logging.WARNING
                log.log(level, "gateway.peers_unknown", extra={"error": repr(exc)})
                # after an outage every member may have rejoined: count absences afresh
                self._missing_since.clear()
                continue
            self.update(members, time.monotonic())

    async def members(self) -> set[str]:
        """The instance ids of the gateways in the group now."""
        node = await self.client.coordinator_lookup(CoordinationType.GROUP, GROUP)
        response = await self.client.send(node, DescribeGroupsRequest(groups=[GROUP]))
        (group,) = response.groups
        error, members = group[0], group[5]
        if error != NO_ERROR:
            raise for_code(error)()
        return {instance for member in members if (instance := instance_of(_client_id(member)))}

    def update(self, members: set[str], now: float) -> None:
        """Note who is missing; declare gone who has been missing for ``gone_after``."""
        holders = self.presence.holding_instances()
        for instance in list(self._missing_since):
            if instance in members or instance not in holders:
                del self._missing_since[instance]
        newly_gone = []
        for instance in holders - members - self.presence.gone - {self.presence.instance_id}:
            since = self._missing_since.setdefault(instance, now)
            if now - since >= self.gone_after:
                newly_gone.append(instance)
        for instance in newly_gone:
            self.presence.gone.add(instance)
            log.warning(
                "gateway.peer_gone",
                extra={
                    "gateway_id": instance,
                    "stations": len(self.presence.held_by(instance)),
                    "missing_s": round(now - self._missing_since[instance], 1),
                },
            )
        # an instance back in the group (a long pause, not a crash) holds its stations again
        self.presence.gone &= holders - members
        if not self.presence.gone:
            self._cleared.clear()
        if members and min(members) == self.presence.instance_id:
            self._clear()

    def _clear(self) -> None:
        """Tombstone the presence records that still name a gone instance, each record once
        (its holder, were it alive after all, would write it again: no tombstone war)."""
        for instance in self.presence.gone:
            for record in self.presence.held_by(instance):
                if self._cleared.get(record.station_id) != record.connection_id:
                    self._cleared[record.station_id] = record.connection_id
                    self._tombstone(record.station_id, self._failed(record.station_id))

    def _failed(self, station_id: str) -> Callable[[BaseException | None], None]:
        def done(exc: BaseException | None) -> None:
            if exc is not None:  # not written: try again next time
                self._cleared.pop(station_id, None)

        return done


def _client_id(member: tuple[Any, ...]) -> str:
    """A member's client id, or where the coordinator leaves it out (the embedded broker
    does) its member id without the ``-<UUID>`` the coordinator appends to the client id."""
    member_id, client_id = member[0], member[1]
    if client_id:
        return str(client_id)
    match = _MEMBER_ID.fullmatch(member_id)
    return match[1] if match else ""
