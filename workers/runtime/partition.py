"""One owned partition of ``ocpp.events.v1``: its states, and what its next checkpoint holds.

No I/O here: the runtime feeds decisions in and takes checkpoints out.

The order that makes a worker idempotent (docs/decisions/0008-worker-runtime.md):

1. events are handled in offset order; their outputs are handed to the
   producer at once, each one counted in the partition's open :class:`Acks`;
2. a checkpoint *closes* that ``Acks`` and captures, at that instant, the
   offset of the last event handled, the encoded states of the keys that changed
   since the previous checkpoint, and the partition's own state;
3. once every output counted in the closed ``Acks`` is acknowledged, the
   captured states are written to the changelog (each naming the checkpoint's
   offset), and once they are acknowledged, the checkpoint record;
4. once those are acknowledged, the offset after the checkpoint is committed.

So the changelog never holds a state whose outputs could be lost, and a
checkpoint record in the changelog means every state record of that
checkpoint before it is stored (the states of a checkpoint that never
finished do not count, :mod:`workers.runtime.changelog`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from workers.runtime.logic import Decision

__all__ = ["Acks", "Checkpoint", "OwnedPartition", "PublishFailed"]

S = TypeVar("S")
P = TypeVar("P")

_ENCODER = msgspec.json.Encoder()


class PublishFailed(Exception):
    """Kafka did not acknowledge an output or a state record (after the producer's retries)."""


class Acks:
    """The acknowledgements of a group of published records.

    :meth:`expect` returns the ``on_done`` callback for one more record;
    :meth:`wait` returns once every expected record is acknowledged, or raises
    :class:`PublishFailed` when one failed.
    """

    __slots__ = ("_future", "_outstanding", "failure")

    def __init__(self) -> None:
        self._outstanding = 0
        self._future: asyncio.Future[None] | None = None
        self.failure: BaseException | None = None

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def expect(self) -> Callable[[BaseException | None], None]:
        self._outstanding += 1
        return self._done

    def _done(self, exc: BaseException | None) -> None:
        self._outstanding -= 1
        if exc is not None and self.failure is None:
            self.failure = exc
        if self._outstanding == 0 and self._future is not None and not self._future.done():
            self._future.set_result(None)

    async def wait(self) -> None:
        if self._outstanding:
            self._future = asyncio.get_running_loop().create_future()
            await self._future
        if self.failure is not None:
            raise PublishFailed(repr(self.failure)) from self.failure


class CheckpointValue(msgspec.Struct, frozen=True, kw_only=True):
    """The value of a partition's checkpoint record in the changelog."""

    offset: int  # the last event of the partition that the state records before it reflect
    state: msgspec.Raw  # the partition's own state, in the worker's format
    format: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a closed checkpoint writes once ``outputs`` are acknowledged."""

    partition: int
    offset: int
    records: list[tuple[str, bytes | None]]  # changed keys' states (None: deleted)
    value: bytes  # the CheckpointValue, written last
    outputs: Acks
    closed_at: float


class OwnedPartition(Generic[S, P]):
    """The states of one partition while this instance owns it."""

    def __init__(
        self,
        number: int,
        stations: dict[str, S],
        state: P,
        checkpointed: int | None,
    ) -> None:
        self.number = number
        self.stations = stations
        self.state = state
        # offsets: of the last event handled, and of the last one a checkpoint covers
        self.handled = checkpointed
        self.checkpointed = checkpointed
        self.changed: set[str] = set()
        self.outputs = Acks()
        self.writing: asyncio.Task[None] | None = None
        self.last_checkpoint = time.monotonic()
        self.released = False
        # a checkpoint's write failed: the states are ahead of what Kafka holds, and are redone
        self.broken = False
        self.failing_since: float | None = None  # the first failed write not followed by one done
        self.deadlines: dict[str, datetime] = {}  # the logic's deadline per station
        self._timers: list[tuple[datetime, str]] = []  # a heap; entries not in deadlines are stale

    def handled_up_to(self, offset: int) -> None:
        self.handled = offset

    def apply(self, key: str, decision: Decision[S, P]) -> None:
        """Take a decision's states; a key whose state object changed is written next checkpoint."""
        old = self.stations.get(key)
        if decision.station is not old:
            if decision.station is None:
                del self.stations[key]
            else:
                self.stations[key] = decision.station
            self.changed.add(key)
        self.state = decision.partition

    def set_deadline(self, key: str, at: datetime | None) -> None:
        """Remember when the station's state is due to expire (``None``: never)."""
        if at is None:
            self.deadlines.pop(key, None)
        elif self.deadlines.get(key) != at:
            self.deadlines[key] = at
            heapq.heappush(self._timers, (at, key))

    def expired(self, now: datetime) -> list[str]:
        """The stations whose deadline is at or before ``now``, earliest first; forgets them."""
        keys: list[str] = []
        while self._timers and self._timers[0][0] <= now:
            at, key = heapq.heappop(self._timers)
            if self.deadlines.get(key) == at:
                del self.deadlines[key]
                keys.append(key)
        return keys

    def failing_for(self, now: float) -> float:
        """Seconds since the first write that failed, while handled events wait to be stored."""
        if self.failing_since is None or (
            self.writing is None and self.handled == self.checkpointed
        ):
            return 0.0
        return now - self.failing_since

    def due(self, now: float, interval: float) -> bool:
        return (
            self.writing is None
            and not self.released
            and self._pending()
            and now - self.last_checkpoint >= interval
        )

    def _pending(self) -> bool:
        """Events handled, or states changed by an expiry, since the last checkpoint."""
        return self.handled is not None and (
            self.handled != self.checkpointed or bool(self.changed)
        )

    def close(self) -> Checkpoint | None:
        """Capture a checkpoint of everything handled so far; ``None`` if nothing was."""
        if not self._pending():
            return None
        assert self.handled is not None
        records: list[tuple[str, bytes | None]] = []
        for key in sorted(self.changed):
            station: Any = self.stations.get(key)
            records.append((key, None if station is None else _ENCODER.encode(station)))
        value = _ENCODER.encode(
            CheckpointValue(offset=self.handled, state=msgspec.Raw(_ENCODER.encode(self.state)))
        )
        checkpoint = Checkpoint(
            self.number, self.handled, records, value, self.outputs, time.monotonic()
        )
        self.outputs = Acks()
        self.changed = set()
        self.checkpointed = self.handled
        self.last_checkpoint = checkpoint.closed_at
        return checkpoint
