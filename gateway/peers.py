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
presence and has been missing from the group for ``gone_after`` seconds is gone
(one seen tombstoning its own stations stopped cleanly: it does that before it
leaves the group, so it is not):

- its stations count as held by nobody, so the offline responder answers
  commands for them ``station_offline`` (:meth:`PresenceView.holder`), also
  the ones it had left to that instance since it died
  (:meth:`gateway.offline.OfflineResponder.holder_gone`);
- the live member whose instance id sorts first tombstones their presence
  records, each record once, so that every reader sees them offline (any
  member does, should records still name it ``gone_after`` later: the first
  may have ``CSMS_GONE_AFTER=0``). A station that has connected elsewhere
  meanwhile keeps its new record: only records naming the gone instance are
  tombstoned, and a tombstone that races a newer record is answered by its
  holder writing the record again (:mod:`gateway.presence`).

Records naming this instance that it does not hold were left by an earlier
process with the same instance id (a restarted container): they are
tombstoned at start, before the gateway listens, and in every round after.

This gateway missing from the group for ``gone_after / 2`` while the others
can see the group is an error (``gateway.not_in_group``, and readiness turns
false): the others are about to count its stations as offline.

Without an answer from the coordinator nothing is declared gone, and absences
are counted afresh once it answers again (after a Kafka outage every gateway's
consumer may have to rejoin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.client import CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DescribeGroupsRequest

from contracts.bus.outage import Outage
from contracts.bus.publisher import Done
from contracts.envelopes import Presence
from gateway.offline import CLOCK_SKEW, GROUP, SESSION_TIMEOUT, instance_of
from gateway.presence import PresenceView

__all__ = ["Peers"]

log = logging.getLogger("gateway.peers")

NO_ERROR = 0


class Peers:
    """Watches the gateways' consumer group; clears the presence of instances that are gone."""

    def __init__(
        self,
        client: AIOKafkaClient,
        presence: PresenceView,
        *,
        gone_after: float,
        clear: Callable[[Presence, Done], None],
        holder_gone: Callable[[str, float], None],
    ) -> None:
        """``clear`` ends a record a gone (or earlier) instance left (tombstone, event)."""
        self.client = client
        self.presence = presence
        self.gone_after = gone_after
        self._clear_record = clear
        self._holder_gone = holder_gone
        self._missing_since: dict[str, float] = {}  # instance: first seen missing (monotonic)
        self._gone_at: dict[str, float] = {}
        self._self_missing_since: float | None = None
        # False once this gateway has been missing from the group for gone_after / 2
        self.in_group = True
        self._cleared: dict[str, tuple[str, str]] = {}  # station: (instance, connection) cleared
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.clear_left_behind()
        if self.gone_after > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gateway peers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        outage = Outage(log, "gateway.peers_unknown", "gateway.peers_known", group=GROUP)
        while True:
            await asyncio.sleep(self.gone_after / 3)
            try:
                members = await self.members()
            except (KafkaError, OSError, TimeoutError) as exc:
                outage.failed(exc)
                if outage.since is not None and time.monotonic() - outage.since > SESSION_TIMEOUT:
                    # members may have been expelled and have rejoined: count absences afresh
                    self._missing_since.clear()
                self._check_self(None, time.monotonic())
                continue
            except Exception:  # a bug: logged, and the next round tries again
                log.exception("gateway.peers_failed")
                continue
            outage.succeeded()
            try:
                self.update(members, time.monotonic())
            except Exception:
                log.exception("gateway.peers_failed")

    async def members(self) -> set[str]:
        """The instance ids of the gateways in the group now."""
        node = await self.client.coordinator_lookup(CoordinationType.GROUP, GROUP)
        response = await self.client.send(node, DescribeGroupsRequest(groups=[GROUP]))
        # one group only: aiokafka 0.14 reads a v3 answer with the v2 schema, which holds
        # for a single group (the field it leaves out comes last)
        (group,) = response.groups
        error, members = group[0], group[5]
        if error != NO_ERROR:
            raise for_code(error)()
        return {instance for member in members if (instance := instance_of(_client_id(member)))}

    def update(self, members: set[str], now: float) -> None:
        """Note who is missing; declare gone who has been missing for ``gone_after``."""
        me = self.presence.instance_id
        self._check_self(me in members, now)
        holders = self.presence.holding_instances() - {me}
        released = self.presence.released_itself
        for instance in list(self._missing_since):
            if instance in members:
                del self._missing_since[instance]
        # counted from when it was first missed holding stations, or having lost its last
        # one to another gateway (a newer connection of the station, a tombstone for it):
        # the commands left to it are decided when it is declared gone here
        missing = (holders | released.keys() | self._missing_since.keys()) - members
        for instance in sorted(missing - self.presence.gone - {me}):
            if instance not in holders and released.get(instance):
                # it let go of its last station itself: a clean stop, not a crash
                del released[instance]
                self._missing_since.pop(instance, None)
                continue
            since = self._missing_since.setdefault(instance, now)
            if now - since >= self.gone_after:
                self._declare_gone(instance, since, now)
        # back in the group (a long pause, not a crash): it holds its stations again;
        # gone with nothing left to clear: forgotten
        for instance in self.presence.gone - (holders - members):
            self.presence.gone.discard(instance)
            self._missing_since.pop(instance, None)
            released.pop(instance, None)
        self._gone_at = {i: t for i, t in self._gone_at.items() if i in self.presence.gone}
        left = self.presence.left_behind()
        left_ids = {record.station_id for record in left}
        self._cleared = {
            s: c for s, c in self._cleared.items() if c[0] in self.presence.gone or s in left_ids
        }
        first = bool(members) and min(members) == me
        for instance, gone_at in self._gone_at.items():
            if first or now - gone_at >= self.gone_after:
                self._clear(self.presence.held_by(instance))
        self.clear_left_behind(left)

    def clear_left_behind(self, left: list[Presence] | None = None) -> None:
        """Tombstone the records an earlier process with this instance id left."""
        if left is None:
            left = self.presence.left_behind()
        if left and self._clear(left):
            log.warning("gateway.presence_left_behind", extra={"stations": len(left)})

    def _check_self(self, present: bool | None, now: float) -> None:
        """``present`` None: the group could not be seen (no one to blame)."""
        was_in = self.in_group
        if present is not False:
            self._self_missing_since = None
        elif self._self_missing_since is None:
            self._self_missing_since = now
        since = self._self_missing_since
        self.in_group = since is None or now - since < self.gone_after / 2
        if was_in and not self.in_group:
            log.error("gateway.not_in_group", extra={"group": GROUP})
        elif self.in_group and not was_in:
            log.info("gateway.in_group", extra={"group": GROUP})

    def _declare_gone(self, instance: str, since: float, now: float) -> None:
        self.presence.gone.add(instance)
        self._gone_at[instance] = now
        log.warning(
            "gateway.peer_gone",
            extra={
                "gateway_id": instance,
                "stations": len(self.presence.held_by(instance)),
                "missing_s": round(now - since, 1),
            },
        )
        # the group lost it one session timeout after it died, two if a rebalance was under
        # way, and it was missed up to a round later: it died after this, not before (less
        # a margin for the clocks of the commands' producers)
        died_after = (
            time.time() - (now - since) - 2 * SESSION_TIMEOUT - self.gone_after / 3 - CLOCK_SKEW
        )
        self._holder_gone(instance, died_after * 1000)

    def _clear(self, records: list[Presence]) -> int:
        """Tombstone each record not tombstoned yet (a holder that is alive after all writes
        its record again: no tombstone war); returns how many were written."""
        written = 0
        for record in records:
            cleared = (record.gateway_id, record.connection_id)
            if self._cleared.get(record.station_id) != cleared:
                self._cleared[record.station_id] = cleared
                self._clear_record(record, self._failed(record.station_id))
                written += 1
        return written

    def _failed(self, station_id: str) -> Done:
        def done(exc: BaseException | None) -> None:
            if exc is not None:  # not written: try again next round
                self._cleared.pop(station_id, None)

        return done


def _client_id(member: tuple[Any, ...]) -> str:
    """A member's client id, as the group coordinator reports it (DescribeGroups)."""
    return str(member[1])
