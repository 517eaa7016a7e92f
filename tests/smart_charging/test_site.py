"""The site model refuses trees and EVs that do not hold together, and maps phases."""

from __future__ import annotations

import pytest

from tests.smart_charging.sites import one_circuit_site
from workers.smart_charging.limits import site_limits
from workers.smart_charging.site import (
    Circuit,
    Ev,
    Evse,
    Site,
    SiteError,
    Station,
    UnmanagedLoad,
)

GRID = Circuit(circuit_id="grid", max_current_a=63)


def test_a_stations_rotation_maps_its_phases_onto_the_grids() -> None:
    assert Station(station_id="A", phase_rotation="RST").grid_phases(3) == (1, 2, 3)
    assert Station(station_id="A", phase_rotation="STR").grid_phases(1) == (2,)
    assert Station(station_id="A", phase_rotation="TRS").grid_phases(3) == (3, 1, 2)
    assert Station(station_id="A", phase_rotation="Sxx").grid_phases(3) == (2,)


@pytest.mark.parametrize("rotation", ["", "RS", "RRS", "xRS", "ABC", "RSTR"])
def test_a_rotation_must_be_three_letters_each_once_its_l1_connected(rotation: str) -> None:
    with pytest.raises(SiteError, match="phase_rotation"):
        Station(station_id="A", phase_rotation=rotation)


@pytest.mark.parametrize(
    ("circuits", "message"),
    [
        ((Circuit(circuit_id="A", parent_id="nowhere", max_current_a=16),), "no parent"),
        (
            (
                Circuit(circuit_id="A", parent_id="B", max_current_a=16),
                Circuit(circuit_id="B", parent_id="A", max_current_a=16),
            ),
            "cycle",
        ),
        ((Circuit(circuit_id="grid", max_current_a=16),), "ids repeat"),
        (
            (
                Circuit(circuit_id="A", max_current_a=16, phases=1, grid_phase=2),
                Circuit(circuit_id="B", parent_id="A", max_current_a=16),
            ),
            "carries a phase its parent does not",
        ),
    ],
)
def test_a_tree_that_does_not_hold_together_is_refused(
    circuits: tuple[Circuit, ...], message: str
) -> None:
    with pytest.raises(SiteError, match=message):
        Site(site_id="S", grid_connection=GRID, circuits=circuits)


def test_a_station_on_a_single_phase_circuit_has_its_l1_there() -> None:
    single = Circuit(circuit_id="A", max_current_a=16, phases=1, grid_phase=2)
    Site(
        site_id="S",
        grid_connection=GRID,
        circuits=(single,),
        stations=(Station(station_id="ok", circuit_id="A", phase_rotation="STR"),),
    )
    with pytest.raises(SiteError, match="L1 is on a phase"):
        Site(
            site_id="S",
            grid_connection=GRID,
            circuits=(single,),
            stations=(Station(station_id="bad", circuit_id="A", phase_rotation="RST"),),
        )


@pytest.mark.parametrize(
    "field", [{"phases": 2}, {"derating": 0.0}, {"max_current_a": -1.0}, {"nominal_voltage_v": 0.0}]
)
def test_a_circuit_with_impossible_values_is_refused(field: dict[str, float]) -> None:
    with pytest.raises(SiteError):
        Circuit(circuit_id="A", **{"max_current_a": 16.0, **field})  # type: ignore[arg-type]


def test_evs_must_be_at_known_evses_one_each_and_loads_on_known_circuits() -> None:
    site = one_circuit_site(32, 2)
    with pytest.raises(SiteError, match="no EVSE"):
        site_limits(site, [Ev(station_id="CP0", evse_id=2)])
    with pytest.raises(SiteError, match="two EVs"):
        site_limits(site, [Ev(station_id="CP0", evse_id=1), Ev(station_id="CP0", evse_id=1)])
    with pytest.raises(SiteError, match="unknown circuit"):
        site_limits(site, [], [UnmanagedLoad(circuit_id="C9", current_a=(1.0, 0.0, 0.0))])
    with pytest.raises(SiteError, match="weight"):
        Ev(station_id="CP0", evse_id=1, weight=0.0)


def test_limits_come_deepest_first_with_unmanaged_load_taken_off_every_level() -> None:
    site = Site(
        site_id="S",
        grid_connection=Circuit(circuit_id="grid", max_current_a=63, max_power_w=40000),
        circuits=(
            Circuit(circuit_id="A", max_current_a=32, derating=0.8),
            Circuit(circuit_id="A1", parent_id="A", max_current_a=16, phases=1, grid_phase=3),
        ),
        stations=(
            Station(
                station_id="CP",
                circuit_id="A1",
                phase_rotation="Txx",
                evses=(Evse(evse_id=1, max_current_a=16),),
            ),
        ),
    )
    compiled = site_limits(
        site,
        [Ev(station_id="CP", evse_id=1)],
        [UnmanagedLoad(circuit_id="A1", current_a=(9, 9, 4))],
    )
    assert [(lim.circuit_id, lim.phase, lim.headroom) for lim in compiled.limits] == [
        ("A1", 3, 12.0),
        ("A", 1, 25.6),
        ("A", 2, 25.6),
        ("A", 3, 25.6 - 4),
        ("grid", 1, 63.0),
        ("grid", 2, 63.0),
        ("grid", 3, 59.0),
        ("grid", None, 40000 - 230 * 4),  # only phase 3 flows through A1
    ]
    # the three-phase EV on a single-phase circuit loads grid phase 3 only, 230 V x 1 phase
    assert compiled.terms[0] == ((0, 1.0), (3, 1.0), (6, 1.0), (7, 230.0))
