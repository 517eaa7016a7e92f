"""Hypothesis strategies: random sites (trees, phase maps), EVs and unmanaged load.

Values come from short lists so that ties (equal minimums, equal limits, EVs
reaching a limit and their bound at once) are frequent: they are where an
event-driven allocator goes wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from workers.smart_charging.site import Circuit, Ev, Evse, Site, Station, UnmanagedLoad

ROTATIONS = ("RST", "STR", "TRS", "RTS", "SRT", "TSR", "Rxx", "RSx", "Sxx", "TxR")
LIMITS_A = (6.0, 10.0, 16.0, 20.0, 25.0, 32.0, 32.0, 40.0, 63.0, 63.0, 100.0, 100.0)


def _tenths(low: int, high: int) -> st.SearchStrategy[float]:
    """Decimal values as operators write them (most of them not exact in binary)."""
    return st.integers(low * 10, high * 10).map(lambda tenths: tenths / 10)


@dataclass(frozen=True)
class Scenario:
    site: Site
    evs: list[Ev]
    unmanaged: list[UnmanagedLoad]


def _circuit(draw: st.DrawFn, circuit_id: str, parent: Circuit | None) -> Circuit:
    if parent is not None and parent.phases == 1:
        phases, grid_phase = 1, parent.grid_phase
    else:
        phases = draw(st.sampled_from((1, 3, 3)))
        grid_phase = draw(st.sampled_from((1, 2, 3)))
    power = draw(
        st.sampled_from((None, None, None, 3680.0, 7400.0, 11000.0, 22000.0, 40000.0))
        | _tenths(0, 60000)
    )
    # a circuit on the grid connection names it, or names no parent
    parent_id = None if parent is None else parent.circuit_id
    if parent_id == "grid":
        parent_id = draw(st.sampled_from(("grid", None)))
    return Circuit(
        circuit_id=circuit_id,
        parent_id=parent_id,
        max_current_a=draw(st.sampled_from(LIMITS_A) | _tenths(0, 120)),
        max_power_w=power,
        phases=phases,
        grid_phase=grid_phase,
        nominal_voltage_v=draw(st.sampled_from((230.0, 230.0, 120.0, 240.0))),
        derating=draw(st.sampled_from((1.0, 1.0, 0.8, 0.9))),
    )


@st.composite
def sites(draw: st.DrawFn, max_circuits: int = 5, max_stations: int = 8) -> Site:
    grid = _circuit(draw, "grid", None)
    nodes = [grid]
    circuits = []
    for i in range(draw(st.integers(0, max_circuits))):
        parent = draw(st.sampled_from(nodes))
        circuit = _circuit(draw, f"C{i}", parent)
        nodes.append(circuit)
        circuits.append(circuit)
    stations = []
    for i in range(draw(st.integers(1, max_stations))):
        node = draw(st.sampled_from(nodes))
        letter = "RST"[node.grid_phase - 1]
        rotations = ROTATIONS if node.phases == 3 else [r for r in ROTATIONS if r[0] == letter]
        evses = tuple(
            Evse(evse_id=e, max_current_a=draw(st.sampled_from((6.0, 10.0, 16.0, 32.0, 80.0))))
            for e in range(1, draw(st.integers(1, 2)) + 1)
        )
        stations.append(
            Station(
                station_id=f"CP{i}",
                circuit_id=None if node is grid else node.circuit_id,
                phase_rotation=draw(st.sampled_from(rotations or ["RST"])),
                evses=evses,
            )
        )
    return Site(
        site_id="S", grid_connection=grid, circuits=tuple(circuits), stations=tuple(stations)
    )


def evs_at(draw: st.DrawFn, site: Site, max_evs: int) -> list[Ev]:
    evses = [(s.station_id, e.evse_id) for s in site.stations for e in s.evses]
    count = draw(st.integers(1, max_evs))
    chosen = draw(st.permutations(evses))[:count]
    return [
        Ev(
            station_id=station_id,
            evse_id=evse_id,
            phases=draw(st.sampled_from((1, 3))),
            min_current_a=draw(st.sampled_from((6.0, 6.0, 0.0, 8.0, 10.0))),
            ev_max_current_a=draw(st.none() | st.sampled_from((0.0, 6.0, 13.0, 16.0, 32.0))),
            weight=draw(st.sampled_from((1.0, 1.0, 2.0, 0.5, 3.0))),
            priority=draw(st.sampled_from((0, 0, 1))),
            energy_delivered_wh=draw(st.sampled_from((0.0, 500.0, 2000.0))),
        )
        for station_id, evse_id in chosen
    ]


def unmanaged_on(draw: st.DrawFn, site: Site) -> list[UnmanagedLoad]:
    circuit_ids = [None, *(c.circuit_id for c in site.circuits)]
    amps = st.sampled_from((0.0, 0.0, 0.0, 2.0, 4.0, 10.0)) | _tenths(0, 10)
    return draw(
        st.lists(
            st.builds(
                UnmanagedLoad,
                circuit_id=st.sampled_from(circuit_ids),
                current_a=st.tuples(amps, amps, amps),
            ),
            max_size=3,
        )
    )


@st.composite
def scenarios(draw: st.DrawFn, max_evs: int = 10, **site: int) -> Scenario:
    chosen = draw(sites(**site))
    return Scenario(chosen, evs_at(draw, chosen, max_evs), unmanaged_on(draw, chosen))
