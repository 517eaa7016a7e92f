"""Sharing a site's limits among its EVs: weighted max-min fair water-filling, per phase.

:func:`allocate` takes a :class:`~workers.smart_charging.site.Site`, the EVs
charging there and the load csms does not control, and returns an
:class:`Allocation`: for each EV its current (A per phase) and the
:class:`Binding` that holds it there. It is pure and deterministic: the same
facts give the same answer, bit for bit, in whatever order they come (EVs are
put in EVSE order first, limits in tree order).

Two steps.

1. **Admission.** An EV gets 0 A or at least its minimum. EVs are taken in
   order of priority tier (higher first), weight (higher first), energy
   delivered (less first), then EVSE id; each is admitted when its minimum
   fits beside the minimums of those already admitted on every limit it
   loads, else paused at 0 A (``paused``, naming the limit that refused it).
   A paused EV is never one whose minimum would fit: the admitted set cannot
   be grown, and nobody is paused to make room for someone later in the
   order. (The largest admissible set by count is a multi-dimensional
   knapsack, NP-hard; the order is what the priority rule asks for.) An EV
   whose own bound is below its minimum gets 0 A (``ev_bound``).
2. **Water-filling** ("progressive filling"). A water level ``t`` rises from
   0; an admitted EV ``e`` draws ``max(min_e, weight_e * t)``, so it waits at
   its minimum until the level reaches it, then rises with weight_e. When a
   limit becomes tight (a circuit's current on one grid phase after derating
   and unmanaged load, or a circuit's power over its phases at nominal
   voltage), every EV on it that has not stopped stops where it is; when an
   EV reaches its bound it stops there. The level is not raised in steps: the
   load on every limit is a line in ``t`` between events, so the next event
   (a minimum reached, a bound reached, a limit tight) is computed, and
   events are taken from a heap in order of level. The result is the
   lexicographic max-min fair allocation of the shares ``current/weight``
   over the admitted EVs (with their minimums as floors), which the tests
   check against a linear-programming oracle.

What binds an EV is the limit that stopped it (when several did at the same
level: the deepest circuit, then the circuit id, then the phase, the power
limit last), its own bound, or the limit that kept it from being admitted.

Left for the worker to add around this core: rotating who waits among
paused EVs with a minimum dwell time and readmission after lasting headroom
(by giving waiting EVs a higher priority tier), caps near an EV's measured
draw (by lowering its ``ev_max_current_a``), and grid signals (by lowering a
circuit's limits or adding unmanaged load). Rounding to what a station accepts
(0.1 A, or watts) is the profile builder's, downwards.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Literal

import msgspec

from workers.smart_charging.limits import Limit, SiteLimits, site_limits
from workers.smart_charging.site import Ev, EvseRef, Site, UnmanagedLoad

__all__ = [
    "Allocation",
    "Binding",
    "EvCurrent",
    "admission_order",
    "allocate",
    "allocate_within",
]

BindingKind = Literal["current_limit", "power_limit", "ev_bound", "paused"]

# event kinds, in the order events at one level are taken
_BOUND, _LIMIT, _MINIMUM = 0, 1, 2
_WAITING, _RISING, _STOPPED = 0, 1, 2
_FIT = 1e-9  # relative slack when checking that minimums fit, for float rounding


class Binding(msgspec.Struct, frozen=True, kw_only=True):
    """What holds an EV's current where it is.

    ``current_limit``: a circuit's current limit on grid phase ``phase``;
    ``power_limit``: a circuit's power limit; ``ev_bound``: the EV's own bound
    (EVSE hardware, EV, cable); ``paused``: its minimum did not fit beside the
    minimums admitted before it, on ``circuit_id`` (and ``phase``, None for
    power).
    """

    kind: BindingKind
    circuit_id: str | None = None
    phase: int | None = None

    def __str__(self) -> str:
        where = "" if self.circuit_id is None else f"circuit {self.circuit_id}"
        if self.phase is not None:
            where += f" L{self.phase}"
        if self.kind == "current_limit":
            return f"{where} current limit"
        if self.kind == "power_limit":
            return f"{where} power limit"
        if self.kind == "ev_bound":
            return "its own bound"
        return f"paused: minimums do not fit ({where.strip()})"


class EvCurrent(msgspec.Struct, frozen=True, kw_only=True):
    """An EV's allocation: its current per phase and what binds it."""

    station_id: str
    evse_id: int
    current_a: float
    binding: Binding

    @property
    def evse(self) -> EvseRef:
        return (self.station_id, self.evse_id)


class Allocation(msgspec.Struct, frozen=True, kw_only=True):
    """A site's allocation, its EVs in EVSE order."""

    site_id: str
    evs: tuple[EvCurrent, ...]

    def currents(self) -> dict[EvseRef, float]:
        """The current per EVSE, A per phase."""
        return {ev.evse: ev.current_a for ev in self.evs}


def allocate(site: Site, evs: Iterable[Ev], unmanaged: Iterable[UnmanagedLoad] = ()) -> Allocation:
    """Share ``site``'s limits among ``evs``, after ``unmanaged`` load.

    Raises :class:`~workers.smart_charging.site.SiteError` for an EV at an
    EVSE the site does not have, two EVs at one EVSE, or unmanaged load on an
    unknown circuit.
    """
    return allocate_within(site.site_id, site_limits(site, evs, unmanaged))


def allocate_within(site_id: str, compiled: SiteLimits) -> Allocation:
    """:func:`allocate` on limits already compiled by
    :func:`~workers.smart_charging.limits.site_limits`."""
    limits, evs, bounds, terms = compiled.limits, compiled.evs, compiled.bounds, compiled.terms
    currents = [0.0] * len(evs)
    bindings: list[Binding | None] = [None] * len(evs)
    admitted = _admit(compiled, bindings)
    _fill(limits, evs, bounds, terms, admitted, currents, bindings)
    return Allocation(
        site_id=site_id,
        evs=tuple(
            EvCurrent(
                station_id=ev.station_id,
                evse_id=ev.evse_id,
                current_a=current,
                binding=binding or Binding(kind="ev_bound"),  # (_admit or _fill set each one)
            )
            for ev, current, binding in zip(evs, currents, bindings, strict=True)
        ),
    )


def admission_order(ev: Ev) -> tuple[int, float, float, EvseRef]:
    """The key EVs are admitted in: priority tier, weight, less energy, EVSE."""
    return (-ev.priority, -ev.weight, ev.energy_delivered_wh, ev.evse)


def _admit(compiled: SiteLimits, bindings: list[Binding | None]) -> list[int]:
    """Admit EVs in :func:`admission_order` while their minimums fit; set the others' binding.

    Returns the admitted EVs' indices, in EVSE order.
    """
    limits, evs = compiled.limits, compiled.evs
    used = [0.0] * len(limits)
    admitted: list[int] = []
    for i in sorted(range(len(evs)), key=lambda i: admission_order(evs[i])):
        minimum = evs[i].min_current_a
        if compiled.bounds[i] < minimum:
            bindings[i] = Binding(kind="ev_bound")
            continue
        refused = None
        for k, a in compiled.terms[i]:
            if used[k] + a * minimum > limits[k].headroom * (1 + _FIT) + _FIT:
                refused = limits[k]
                break
        if refused is not None:
            bindings[i] = Binding(kind="paused", circuit_id=refused.circuit_id, phase=refused.phase)
            continue
        for k, a in compiled.terms[i]:
            used[k] += a * minimum
        admitted.append(i)
    return sorted(admitted)


def _fill(
    limits: tuple[Limit, ...],
    evs: tuple[Ev, ...],
    bounds: tuple[float, ...],
    terms: tuple[tuple[tuple[int, float], ...], ...],
    admitted: list[int],
    currents: list[float],
    bindings: list[Binding | None],
) -> None:
    """Water-fill the admitted EVs (see the module's docstring); write currents and bindings.

    The load on limit k at level t is ``base[k] + slope[k] * t``: the EVs
    stopped or waiting at their minimum count in ``base``, the rising ones
    with their weight in ``slope``.
    """
    n_limits = len(limits)
    base = [0.0] * n_limits
    slope = [0.0] * n_limits
    rising_on = [0] * n_limits  # rising EVs per limit, to zero the slope exactly
    version = [0] * n_limits
    members: list[list[int]] = [[] for _ in range(n_limits)]
    state = [_STOPPED] * len(evs)
    events: list[tuple[float, int, int, int]] = []
    for i in admitted:
        ev = evs[i]
        state[i] = _WAITING
        currents[i] = ev.min_current_a
        for k, a in terms[i]:
            base[k] += a * ev.min_current_a
            members[k].append(i)
        events.append((ev.min_current_a / ev.weight, _MINIMUM, i, 0))
    heapq.heapify(events)
    dirty: set[int] = set()
    level = 0.0

    def stop(i: int, current: float, binding: Binding) -> None:
        if state[i] == _RISING:
            weight = evs[i].weight
            for k, a in terms[i]:
                base[k] += a * current
                rising_on[k] -= 1
                # with no EV rising on k, its slope is 0, not what rounding leaves
                slope[k] = slope[k] - a * weight if rising_on[k] else 0.0
                dirty.add(k)
        state[i] = _STOPPED
        currents[i] = current
        bindings[i] = binding

    while True:
        # before the level moves on, the limits whose line changed get a new prediction
        if dirty and (not events or events[0][0] > level):
            for k in sorted(dirty):
                version[k] += 1
                if rising_on[k]:
                    tight_at = max(level, (limits[k].headroom - base[k]) / slope[k])
                    heapq.heappush(events, (tight_at, _LIMIT, k, version[k]))
            dirty.clear()
        if not events:
            return
        at, kind, index, seen = heapq.heappop(events)
        if kind == _LIMIT:
            if seen != version[index]:
                continue
            level = max(level, at)
            limit = limits[index]
            binding = Binding(
                kind="power_limit" if limit.is_power else "current_limit",
                circuit_id=limit.circuit_id,
                phase=limit.phase,
            )
            for i in members[index]:
                if state[i] == _RISING:
                    stop(i, min(evs[i].weight * level, bounds[i]), binding)
                elif state[i] == _WAITING:
                    stop(i, evs[i].min_current_a, binding)
        elif state[index] == _STOPPED:
            continue
        elif kind == _BOUND or bounds[index] <= evs[index].min_current_a:
            # at its bound, or its minimum is its bound: it goes no further
            level = max(level, at)
            stop(index, bounds[index], Binding(kind="ev_bound"))
        else:  # the level reached this EV's minimum: it starts rising
            level = max(level, at)
            ev = evs[index]
            state[index] = _RISING
            for k, a in terms[index]:
                base[k] -= a * ev.min_current_a
                slope[k] += a * ev.weight
                rising_on[k] += 1
                dirty.add(k)
            heapq.heappush(events, (bounds[index] / ev.weight, _BOUND, index, 0))
