"""The order in which a new allocation is sent, so that no moment is over a limit.

Between two allocations that are each within the limits, any order of sending
could pass through a moment over one: an EV raised before its neighbour is
lowered. :func:`send_order` lists the changes with every decrease before any
increase. Loads only grow with currents, so after each decrease every limit's
load is at most what it was before, and after each increase at most what it
will be after: every prefix is within whatever limit both allocations are
within. The worker sends the decreases and waits for them to be accepted
before it sends the increases (issue 12).

:func:`first_unsafe_change` checks a sequence of changes against compiled
limits, prefix by prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from workers.smart_charging.allocation import Allocation
from workers.smart_charging.limits import SiteLimits, overloads
from workers.smart_charging.site import EvseRef

__all__ = ["Change", "first_unsafe_change", "send_order"]


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One EVSE's current going from ``from_a`` to ``to_a`` (A per phase)."""

    station_id: str
    evse_id: int
    from_a: float
    to_a: float

    @property
    def evse(self) -> EvseRef:
        return (self.station_id, self.evse_id)

    @property
    def is_decrease(self) -> bool:
        return self.to_a < self.from_a


def send_order(previous: Allocation, new: Allocation) -> tuple[Change, ...]:
    """The changes from ``previous`` to ``new``: decreases first, then increases.

    An EVSE in only one of them is at 0 A in the other; an unchanged EVSE is
    left out. Decreases come largest first (if a station is slow to answer,
    the most headroom has been freed by then), increases in EVSE order; ties
    by EVSE.
    """
    before = previous.currents()
    after = new.currents()
    changes = [
        Change(station_id=evse[0], evse_id=evse[1], from_a=before.get(evse, 0.0), to_a=to_a)
        for evse in sorted(before.keys() | after.keys())
        if (to_a := after.get(evse, 0.0)) != before.get(evse, 0.0)
    ]
    decreases = sorted(
        (c for c in changes if c.is_decrease), key=lambda c: (c.to_a - c.from_a, c.evse)
    )
    increases = [c for c in changes if not c.is_decrease]
    return (*decreases, *increases)


def first_unsafe_change(
    compiled: SiteLimits,
    previous: Mapping[EvseRef, float],
    changes: Sequence[Change],
    *,
    tolerance: float = 1e-6,
) -> int | None:
    """How many of ``changes`` had been applied, from ``previous``, when a limit of
    ``compiled`` was first exceeded (0: already before the first); None if never.

    ``compiled`` must hold an EV for every EVSE with a current: its phases say
    which limits that current loads.
    """
    currents = dict(previous)
    if overloads(compiled, currents, tolerance=tolerance):
        return 0
    for applied, change in enumerate(changes, start=1):
        currents[change.evse] = change.to_a
        if overloads(compiled, currents, tolerance=tolerance):
            return applied
    return None
