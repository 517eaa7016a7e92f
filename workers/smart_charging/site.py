"""The site as the allocator sees it: circuits, stations, the EVs charging there, other load.

A :class:`Site` is a tree. Its root is the grid connection; circuits hang on
it or on each other through ``parent_id``, to any depth; stations hang on a
circuit (or on the grid connection itself), each with its EVSEs. Every node
of the tree is a :class:`Circuit`: a current limit per phase (A), an optional
power limit (W, summed over its phases at its nominal voltage), one or three
phases and a derating factor.

Phases are named as the grid connection names them: grid phases 1, 2 and 3
(L1, L2, L3; R, S, T in OCPP's PhaseRotation). A three-phase circuit carries
all three; a single-phase circuit carries the one in its ``grid_phase``, and
nothing under it can carry more. A station's ``phase_rotation`` says which
grid phase feeds each of its own phases, with OCPP 2.0.1's PhaseRotation
letters read relative to the grid connection: ``"RST"`` (its L1 on grid L1,
the default), ``"STR"`` (its L1 on grid L2, L2 on L3, L3 on L1), ``"TRS"``,
the reversed ``"RTS"``, ``"SRT"``, ``"TSR"``, and ``x`` for a phase not
connected (``"Rxx"``: a single-phase station on grid L1). A single-phase EV
therefore loads only the grid phase its station's L1 is on, and a
three-phase EV only the phases its station has connected and its circuits
carry.

The moment's facts come beside the site: the :class:`Ev` objects (one per
EVSE charging) and the :class:`UnmanagedLoad` csms does not control, which is
subtracted from the circuit it is measured on and from every circuit above.

:class:`SiteError` (a ``ValueError``) is raised by the constructors here, and
by :func:`workers.smart_charging.limits.site_limits` for EVs and loads that do
not fit the site (an unknown EVSE, two EVs at one EVSE, an unknown circuit).
"""

from __future__ import annotations

import math
from typing import TypeAlias

import msgspec

from contracts.envelopes import PHASE_ROTATIONS

__all__ = [
    "DEFAULT_MIN_CURRENT_A",
    "GRID_PHASES",
    "Circuit",
    "Ev",
    "Evse",
    "EvseRef",
    "Site",
    "SiteError",
    "Station",
    "UnmanagedLoad",
]

DEFAULT_MIN_CURRENT_A = 6.0  # IEC 61851-1: the lowest current a PWM signal may offer
GRID_PHASES = (1, 2, 3)
_LETTERS = {"R": 1, "S": 2, "T": 3}

EvseRef: TypeAlias = tuple[str, int]
"""An EVSE of the site: (station id, EVSE id). EVs are known by their EVSE."""


class SiteError(ValueError):
    """The site, or the EVs and loads given with it, do not hold together."""


class Circuit(msgspec.Struct, frozen=True, kw_only=True):
    """A node of the site's tree: the grid connection or a circuit under it."""

    circuit_id: str
    parent_id: str | None = None  # None: on the grid connection (for the grid connection: none)
    max_current_a: float  # per phase, before derating
    max_power_w: float | None = None  # over its phases, at nominal_voltage_v
    phases: int = 3  # 1 or 3
    grid_phase: int = 1  # the grid phase a single-phase circuit is on
    nominal_voltage_v: float = 230.0  # phase to neutral
    derating: float = 1.0  # the share of max_current_a that may be used, in (0, 1]

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise SiteError(f"circuit {self.circuit_id}: phases must be 1 or 3")
        if self.grid_phase not in GRID_PHASES:
            raise SiteError(f"circuit {self.circuit_id}: grid_phase must be 1, 2 or 3")
        if not self.max_current_a >= 0:  # also refuses NaN
            raise SiteError(f"circuit {self.circuit_id}: max_current_a must be >= 0")
        if self.max_power_w is not None and not self.max_power_w >= 0:
            raise SiteError(f"circuit {self.circuit_id}: max_power_w must be >= 0")
        if not self.nominal_voltage_v > 0:
            raise SiteError(f"circuit {self.circuit_id}: nominal_voltage_v must be > 0")
        if not 0 < self.derating <= 1:
            raise SiteError(f"circuit {self.circuit_id}: derating must be in (0, 1]")

    @property
    def carried_phases(self) -> frozenset[int]:
        """The grid phases this circuit carries."""
        return frozenset(GRID_PHASES) if self.phases == 3 else frozenset((self.grid_phase,))

    @property
    def current_limit_a(self) -> float:
        """The per-phase current limit after derating."""
        return self.max_current_a * self.derating


class Evse(msgspec.Struct, frozen=True, kw_only=True):
    """An EVSE of a station and the most current its hardware delivers per phase."""

    evse_id: int
    max_current_a: float

    def __post_init__(self) -> None:
        if not self.max_current_a >= 0:
            raise SiteError(f"EVSE {self.evse_id}: max_current_a must be >= 0")


class Station(msgspec.Struct, frozen=True, kw_only=True):
    """A charging station on a circuit, with its phase rotation and its EVSEs."""

    station_id: str
    circuit_id: str | None = None  # None: on the grid connection
    phase_rotation: str = "RST"  # the grid phases of its L1, L2, L3 (OCPP PhaseRotation)
    evses: tuple[Evse, ...] = ()

    def __post_init__(self) -> None:
        rotation = self.phase_rotation
        if rotation not in PHASE_ROTATIONS:
            raise SiteError(
                f"station {self.station_id}: phase_rotation {rotation!r} is not three of "
                "R, S, T or x, each letter once, its L1 connected"
            )
        ids = [evse.evse_id for evse in self.evses]
        if len(set(ids)) != len(ids):
            raise SiteError(f"station {self.station_id}: EVSE ids repeat")

    def grid_phases(self, ev_phases: int) -> tuple[int, ...]:
        """The grid phases an EV using ``ev_phases`` (1 or 3) of this station's phases loads."""
        return tuple(_LETTERS[c] for c in self.phase_rotation[:ev_phases] if c != "x")


class Ev(msgspec.Struct, frozen=True, kw_only=True):
    """An EV charging at an EVSE: what it can take and what it is owed.

    Its bound is the least of the EVSE's hardware
    maximum, ``ev_max_current_a`` (what the EV says it takes) and
    ``cable_max_current_a``. It gets 0 A or at least ``min_current_a``.
    ``weight`` scales its share; ``priority`` (higher first), then weight, then
    less ``energy_delivered_wh`` decide who is admitted when minimums do not
    fit. ``measured_current_a`` (per grid phase) is carried for the draw-based
    caps to come; the allocation does not read it yet.
    """

    station_id: str
    evse_id: int
    phases: int = 3  # the EV's phases in use: 1 or 3
    min_current_a: float = DEFAULT_MIN_CURRENT_A
    ev_max_current_a: float | None = None
    cable_max_current_a: float | None = None
    weight: float = 1.0
    priority: int = 0
    energy_delivered_wh: float = 0.0
    measured_current_a: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        name = f"EV at {self.station_id}/{self.evse_id}"
        if self.phases not in (1, 3):
            raise SiteError(f"{name}: phases must be 1 or 3")
        if not (self.min_current_a >= 0 and math.isfinite(self.min_current_a)):
            raise SiteError(f"{name}: min_current_a must be >= 0")
        for limit in (self.ev_max_current_a, self.cable_max_current_a):
            if limit is not None and not limit >= 0:
                raise SiteError(f"{name}: a maximum current must be >= 0")
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise SiteError(f"{name}: weight must be > 0")

    @property
    def evse(self) -> EvseRef:
        return (self.station_id, self.evse_id)


class UnmanagedLoad(msgspec.Struct, frozen=True, kw_only=True):
    """Current csms does not control, per grid phase, measured on a circuit."""

    circuit_id: str | None = None  # None: on the grid connection
    current_a: tuple[float, float, float]  # grid phases 1, 2, 3

    def __post_init__(self) -> None:
        if not all(c >= 0 for c in self.current_a):
            raise SiteError(f"unmanaged load on {self.circuit_id}: currents must be >= 0")


class Site(msgspec.Struct, frozen=True, kw_only=True):
    """A site: its grid connection, the circuits under it, the stations on them.

    Raises :class:`SiteError` when a circuit's parent is unknown, the circuits
    form a cycle, a circuit carries a phase its parent does not, an id repeats,
    or a station's L1 is on a phase its circuit does not carry.
    """

    site_id: str
    grid_connection: Circuit
    circuits: tuple[Circuit, ...] = ()
    stations: tuple[Station, ...] = ()

    def __post_init__(self) -> None:
        if self.grid_connection.parent_id is not None:
            raise SiteError(f"site {self.site_id}: the grid connection has no parent")
        by_id = self.circuits_by_id
        if len(by_id) != len(self.circuits) + 1:
            raise SiteError(f"site {self.site_id}: circuit ids repeat")
        for circuit in self.circuits:
            parent = by_id.get(self._parent_of(circuit))
            if parent is None:
                raise SiteError(f"circuit {circuit.circuit_id}: no parent {circuit.parent_id}")
            if not circuit.carried_phases <= parent.carried_phases:
                raise SiteError(
                    f"circuit {circuit.circuit_id}: carries a phase its parent does not"
                )
        self.paths()  # raises on a cycle
        station_ids = [station.station_id for station in self.stations]
        if len(set(station_ids)) != len(station_ids):
            raise SiteError(f"site {self.site_id}: station ids repeat")
        for station in self.stations:
            on = by_id.get(self.circuit_of(station))
            if on is None:
                raise SiteError(f"station {station.station_id}: no circuit {station.circuit_id}")
            if station.grid_phases(1)[0] not in on.carried_phases:
                raise SiteError(
                    f"station {station.station_id}: its L1 is on a phase "
                    f"circuit {on.circuit_id} does not carry"
                )

    @property
    def circuits_by_id(self) -> dict[str, Circuit]:
        """Every node of the tree, the grid connection included, by its id."""
        nodes = {c.circuit_id: c for c in self.circuits}
        nodes.setdefault(self.grid_connection.circuit_id, self.grid_connection)
        return nodes

    def paths(self) -> dict[str, tuple[Circuit, ...]]:
        """For every node, the circuits from it up to the grid connection, itself first."""
        by_id = self.circuits_by_id
        root = self.grid_connection.circuit_id
        paths: dict[str, tuple[Circuit, ...]] = {root: (self.grid_connection,)}
        for circuit in self.circuits:
            chain = [circuit]
            while chain[-1].circuit_id not in paths:
                if len(chain) > len(by_id):
                    raise SiteError(f"circuit {circuit.circuit_id}: the circuits form a cycle")
                chain.append(by_id[self._parent_of(chain[-1])])
            known = paths[chain.pop().circuit_id]
            for node in reversed(chain):
                known = paths[node.circuit_id] = (node, *known)
        return paths

    def circuit_of(self, station: Station) -> str:
        """The id of the circuit ``station`` is on (the grid connection's when it names none)."""
        return station.circuit_id or self.grid_connection.circuit_id

    def _parent_of(self, circuit: Circuit) -> str:
        return circuit.parent_id or self.grid_connection.circuit_id
