"""The seam between a worker's decisions and the runtime's Kafka I/O.

A worker's logic is a pure function of one station event, the station's state
and the partition's state: it returns a :class:`Decision` (the new states, the
reply to the station's call, the records to publish) and touches nothing else.
No clock (the event's ``received_at`` is "now"), no random ids (the event's
Kafka :class:`Position` is unique and stable), no I/O. Two things follow:

- it is unit-tested with plain values, without a loop or a broker;
- replaying an event on the same state gives the same decision, byte for byte,
  which is what makes a worker's outputs idempotent (docs/workers.md).

States are msgspec-encodable values (Structs). They are treated as immutable:
a decision that changes nothing returns the very objects it was given, and the
runtime writes a key's state to the changelog only when the object changed.

Time without events: a logic may give a station's state a **deadline**
(:meth:`Logic.deadline`), and the runtime calls :meth:`Logic.expire` with the
wall clock once it has passed and the partition has caught up with its events
(so that an event already in Kafka, a reconnect say, is never overtaken by a
timer that it would have cancelled). An expiry is the one decision that reads
a clock, so its outputs must carry identities that do not depend on it (an
alert's id comes from the event that opened it): a replay after a crash fires
the same expiry again and writes the same identities again.
:class:`EventsOnly` is the base of a logic that needs neither.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import msgspec

from contracts.envelopes import EventKind, StationCommand, StationEvent
from contracts.headers import Headers

__all__ = [
    "Decision",
    "EventsOnly",
    "Logic",
    "Output",
    "Position",
    "RecordRejected",
    "Reply",
    "reply_command",
]

S = TypeVar("S")
P = TypeVar("P")


class RecordRejected(Exception):
    """The record can never be processed (its payload is not what its action says).

    The runtime dead-letters it at once instead of retrying it.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """Where the event is in Kafka: unique, and the same every time the event is read."""

    partition: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """The answer to the station's call: a CALLRESULT payload, or a CALLERROR."""

    payload: bytes = b"{}"
    error_code: str | None = None
    error_description: str = ""

    @classmethod
    def error(cls, code: str, description: str) -> Reply:
        return cls(error_code=code, error_description=description)


def reply_command(
    worker: str, event: StationEvent, reply: Reply, *, source: str, now: datetime
) -> StationCommand:
    """The command that carries ``reply`` to the station's call ``event`` (ocpp.commands.v1).

    Its id is the call's identity, so a reply sent twice (a replay) is one command to
    the gateway; it expires when the station stops waiting (``reply_by``).
    """
    return StationCommand(
        command_id=f"{worker}:{event.connection_id}:{event.message_id}",
        station_id=event.station_id,
        kind="call_result" if reply.error_code is None else "call_error",
        action=event.action or "",
        message_id=event.message_id,
        error_code=reply.error_code,
        error_description=reply.error_description,
        ocpp_version=event.ocpp_version,
        created_at=now,
        expires_at=event.reply_by,
        source=source,
        payload=msgspec.Raw(reply.payload),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    """A record to publish because of the event (a session record, say)."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers


@dataclasses.dataclass(frozen=True, slots=True)
class Decision(Generic[S, P]):
    """What a worker decided about one event.

    ``outcome`` is a short word from a closed set, the ``outcome`` label of
    ``csms_worker_records_total``. ``station`` is the station's new state
    (``None``: the station has none), ``partition`` the partition's.
    ``anomalies`` are the irregularities this event revealed, counted and logged.
    """

    outcome: str
    station: S | None
    partition: P
    reply: Reply | None = None
    outputs: tuple[Output, ...] = ()
    anomalies: tuple[str, ...] = ()


class Logic(Protocol[S, P]):
    """A worker's pure part, as the runtime sees it."""

    @property
    def kinds(self) -> frozenset[EventKind]:
        """The kinds of event it reads: ``call``, ``connected``, ``disconnected``, ``rejected``."""

    @property
    def actions(self) -> frozenset[str]:
        """The OCPP actions of the calls it handles: the runtime skips other calls unread."""

    @property
    def station_type(self) -> type[S]:
        """The type of a station's state (decoded from the changelog)."""

    @property
    def partition_type(self) -> type[P]:
        """The type of a partition's state (decoded from the changelog)."""

    def initial_partition(self) -> P:
        """The state of a partition nobody has processed yet."""

    def decide(
        self, event: StationEvent, station: S | None, partition: P, position: Position
    ) -> Decision[S, P]:
        """Decide about ``event``; raise :class:`RecordRejected` for a record it can never use."""

    def deadline(self, station: S) -> datetime | None:
        """When :meth:`expire` is due for a station in this state; ``None``: never."""

    def expire(self, station_id: str, station: S, partition: P, now: datetime) -> Decision[S, P]:
        """Decide what the passing of the station's deadline means (``now`` is past it)."""


class EventsOnly(Generic[S, P]):
    """The base of a logic that reads calls only and sets no deadlines."""

    kinds: frozenset[EventKind] = frozenset({"call"})

    def deadline(self, station: S) -> datetime | None:
        return None

    def expire(self, station_id: str, station: S, partition: P, now: datetime) -> Decision[S, P]:
        return Decision("ignored", station, partition)
