"""The limits a site puts on its EVs' currents, as linear inequalities.

Every node of the site's tree (the grid connection and each circuit) gives

- a current limit per grid phase it carries: the currents of the EVs under it
  that load that phase, summed, stay within ``max_current_a * derating``;
- a power limit, when it has ``max_power_w``: each EV under it counts
  ``nominal_voltage_v * current * (the phases it loads)``, and the sum stays
  within ``max_power_w``.

Unmanaged load measured on a circuit (on the phases it carries) is taken off
the capacity of that circuit and of every circuit above it (for power, at each
one's nominal voltage), what is left being the :class:`Limit`'s ``headroom`` (never below
0: an overload csms does not cause is not one it can cure by going negative).

:func:`site_limits` compiles a site, its EVs and its unmanaged loads into a
:class:`SiteLimits`: the limits, deepest circuits first, and for each EV (in
EVSE order, whatever the order given) its bound and its terms, the limits it
loads with their coefficients. :func:`overloads` checks any set of currents
against them; the allocator and the send order both build on this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from workers.smart_charging.site import (
    Circuit,
    Ev,
    Evse,
    EvseRef,
    Site,
    SiteError,
    Station,
    UnmanagedLoad,
)

__all__ = ["Limit", "Overload", "SiteLimits", "limit_loads", "overloads", "site_limits"]


class Limit(msgspec.Struct, frozen=True, kw_only=True):
    """One limit of a circuit: a phase's current (A) or, with ``phase`` None, its power (W)."""

    circuit_id: str
    phase: int | None  # a grid phase (1, 2, 3); None for the power limit
    capacity: float  # after derating, before unmanaged load
    headroom: float  # what is left for the EVs: capacity less unmanaged load, >= 0
    depth: int  # 0 for the grid connection, 1 for circuits on it, ...
    nominal_voltage_v: float

    @property
    def is_power(self) -> bool:
        return self.phase is None


class Overload(msgspec.Struct, frozen=True, kw_only=True):
    """A limit exceeded: the EVs' load on it and its headroom."""

    limit: Limit
    load: float


@dataclass(frozen=True, slots=True)
class SiteLimits:
    """A site's limits and, per EV, what it loads.

    ``evs`` are sorted by EVSE; ``bounds[i]`` and ``terms[i]`` belong to
    ``evs[i]``, a term being ``(index into limits, coefficient)``: 1 for a phase's
    current limit, volts * phases for a power limit.
    """

    limits: tuple[Limit, ...]
    evs: tuple[Ev, ...]
    bounds: tuple[float, ...]
    terms: tuple[tuple[tuple[int, float], ...], ...]


def site_limits(
    site: Site, evs: Iterable[Ev], unmanaged: Iterable[UnmanagedLoad] = ()
) -> SiteLimits:
    """Compile ``site``, the EVs charging there and the load csms does not control.

    Raises :class:`~workers.smart_charging.site.SiteError` for an EV at an
    EVSE the site does not have, two EVs at one EVSE, or unmanaged load on an
    unknown circuit.
    """
    paths = site.paths()
    unmanaged_a = _unmanaged_per_node(site, paths, unmanaged)
    limits: list[Limit] = []
    for circuit in sorted(paths.values(), key=lambda p: (-len(p), p[0].circuit_id)):
        node = circuit[0]
        depth = len(circuit) - 1
        load = unmanaged_a.get(node.circuit_id, (0.0, 0.0, 0.0))
        for phase in sorted(node.carried_phases):
            limits.append(_limit(node, phase, node.current_limit_a, load[phase - 1], depth))
        if node.max_power_w is not None:
            watts = node.nominal_voltage_v * sum(load[p - 1] for p in node.carried_phases)
            limits.append(_limit(node, None, node.max_power_w, watts, depth))
    index = {(limit.circuit_id, limit.phase): i for i, limit in enumerate(limits)}

    stations = {station.station_id: station for station in site.stations}
    ordered = sorted(evs, key=lambda ev: ev.evse)
    bounds: list[float] = []
    terms: list[tuple[tuple[int, float], ...]] = []
    shared_terms: dict[tuple[str, str, int], tuple[tuple[int, float], ...]] = {}
    for i, ev in enumerate(ordered):
        if i and ordered[i - 1].evse == ev.evse:
            raise SiteError(f"two EVs at {ev.station_id}/{ev.evse_id}")
        station = stations.get(ev.station_id)
        hardware = None if station is None else _evse_max(station.evses, ev.evse_id)
        if station is None or hardware is None:
            raise SiteError(f"site {site.site_id}: no EVSE {ev.station_id}/{ev.evse_id}")
        bound = float(hardware)
        for limit in (ev.ev_max_current_a, ev.cable_max_current_a):
            bound = bound if limit is None else min(bound, limit)
        bounds.append(bound)
        # EVs on one circuit with one rotation and phase count load the same limits
        key = (site.circuit_of(station), station.phase_rotation, ev.phases)
        ev_terms = shared_terms.get(key)
        if ev_terms is None:
            ev_terms = shared_terms[key] = _terms(paths[key[0]], station, ev.phases, index)
        terms.append(ev_terms)
    return SiteLimits(tuple(limits), tuple(ordered), tuple(bounds), tuple(terms))


def overloads(
    compiled: SiteLimits, currents: Mapping[EvseRef, float], *, tolerance: float = 1e-6
) -> tuple[Overload, ...]:
    """The limits that ``currents`` (A per EVSE; missing ones at 0) exceed by more than
    ``tolerance`` A (for a power limit, the watts of ``tolerance`` A on three phases)."""
    loads = limit_loads(compiled, [currents.get(ev.evse, 0.0) for ev in compiled.evs])
    return tuple(
        Overload(limit=limit, load=load)
        for limit, load in zip(compiled.limits, loads, strict=True)
        if load
        > limit.headroom + tolerance * (3 * limit.nominal_voltage_v if limit.is_power else 1)
    )


def limit_loads(compiled: SiteLimits, currents: Sequence[float]) -> list[float]:
    """The load on each limit when ``compiled.evs[i]`` draws ``currents[i]``."""
    loads = [0.0] * len(compiled.limits)
    for current, ev_terms in zip(currents, compiled.terms, strict=True):
        for k, coefficient in ev_terms:
            loads[k] += coefficient * current
    return loads


def _terms(
    path: tuple[Circuit, ...],
    station: Station,
    ev_phases: int,
    index: Mapping[tuple[str, int | None], int],
) -> tuple[tuple[int, float], ...]:
    """The limits an EV using ``ev_phases`` at ``station`` (on ``path``) loads."""
    phases = [p for p in station.grid_phases(ev_phases) if p in path[0].carried_phases]
    terms: list[tuple[int, float]] = []
    for node in path:
        terms.extend((index[node.circuit_id, p], 1.0) for p in phases)
        if node.max_power_w is not None:
            terms.append((index[node.circuit_id, None], node.nominal_voltage_v * len(phases)))
    return tuple(sorted(terms))


def _limit(node: Circuit, phase: int | None, capacity: float, used: float, depth: int) -> Limit:
    return Limit(
        circuit_id=node.circuit_id,
        phase=phase,
        capacity=capacity,
        headroom=max(0.0, capacity - used),
        depth=depth,
        nominal_voltage_v=node.nominal_voltage_v,
    )


def _unmanaged_per_node(
    site: Site, paths: Mapping[str, tuple[Circuit, ...]], unmanaged: Iterable[UnmanagedLoad]
) -> dict[str, tuple[float, float, float]]:
    """The unmanaged current per grid phase through each node (its own and all below)."""
    through: dict[str, list[float]] = {}
    # summed in one order whatever the order given, so that the answer is too
    for load in sorted(unmanaged, key=lambda load: (load.circuit_id or "", load.current_a)):
        circuit_id = load.circuit_id or site.grid_connection.circuit_id
        if circuit_id not in paths:
            raise SiteError(f"unmanaged load on an unknown circuit {circuit_id}")
        path = paths[circuit_id]
        for node in path:  # only the phases the measured circuit carries flow through it
            total = through.setdefault(node.circuit_id, [0.0, 0.0, 0.0])
            for p in path[0].carried_phases:
                total[p - 1] += load.current_a[p - 1]
    return {circuit_id: (t[0], t[1], t[2]) for circuit_id, t in through.items()}


def _evse_max(evses: Iterable[Evse], evse_id: int) -> float | None:
    for evse in evses:
        if evse.evse_id == evse_id:
            return evse.max_current_a
    return None
