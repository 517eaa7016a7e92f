"""From csms.sites.v1 and csms.stations.v1 records to the allocator's site (ADR 0020)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelopes import PHASE_ROTATIONS, Circuit, SiteRecord, StationRecord, decode_site
from workers.smart_charging.allocation import allocate
from workers.smart_charging.records import site_model, site_stations
from workers.smart_charging.site import Ev, SiteError

AT = datetime(2026, 3, 1, tzinfo=UTC)


def station(station_id: str, site_id: str | None = "S", **fields: object) -> StationRecord:
    return StationRecord(
        station_id=station_id,
        security_profile=1,
        site_id=site_id,
        updated_at=AT,
        **fields,  # type: ignore[arg-type]
    )


def site(*circuits: Circuit, **fields: object) -> SiteRecord:
    values: dict[str, object] = {"max_current_a": 63.0, **fields}
    return SiteRecord(site_id="S", circuits=circuits, updated_at=AT, **values)  # type: ignore[arg-type]


def test_a_record_of_the_first_shape_is_the_whole_site_on_its_limit() -> None:
    record = decode_site(
        b'{"site_id": "S", "max_current_a": 32, "circuits": [], '
        b'"updated_at": "2026-01-30T12:15:00Z"}'
    )
    assert record is not None
    registry = [station(f"CP{i}") for i in range(4)] + [station("ELSEWHERE", "T")]
    model = site_model(record, registry)
    assert model.grid_connection.circuit_id == "S"
    assert model.grid_connection.max_current_a == 32
    assert model.grid_connection.carried_phases == {1, 2, 3}
    assert [s.station_id for s in model.stations] == ["CP0", "CP1", "CP2", "CP3"]
    assert all(s.circuit_id is None and s.phase_rotation == "RST" for s in model.stations)
    # unknown hardware maximum: the most the site could give one EVSE
    assert all(s.evses[0].max_current_a == 32 for s in model.stations)
    # and the allocator shares the 32 A among the four
    evs = [Ev(station_id=f"CP{i}", evse_id=1) for i in range(4)]
    assert [ev.current_a for ev in allocate(model, evs).evs] == [8.0] * 4


def test_the_first_shapes_station_ids_still_place_stations_and_circuit_id_wins() -> None:
    old = Circuit(circuit_id="garage", max_current_a=16, station_ids=("A", "B", "C"))
    registry = [
        station("A"),  # listed: on garage
        station("B", None),  # listed and naming no site: a member, on garage
        station("C", circuit_id="S"),  # its own record says: the grid connection
        station("D", circuit_id="garage"),
        station("E", "T"),  # listed, but the registry puts it on another site
    ]
    record = site(old)
    assert [s.station_id for s in site_stations(record, registry)] == ["A", "B", "C", "D"]
    model = site_model(record, registry)
    placed = {s.station_id: s.circuit_id for s in model.stations}
    assert placed == {"A": "garage", "B": "garage", "C": None, "D": "garage"}


def test_a_nested_tree_keeps_its_shape_phases_and_bounds() -> None:
    record = site(
        Circuit(circuit_id="hall", max_current_a=40, derating=0.8),
        Circuit(circuit_id="row-1", parent_id="hall", max_current_a=32, max_power_w=11_000),
        Circuit(circuit_id="wall", parent_id="row-1", max_current_a=16, phases=1, grid_phase=2),
        Circuit(circuit_id="free", parent_id="S"),  # no limit of its own
        max_power_w=40_000,
        nominal_voltage_v=240,
    )
    registry = [
        station("R1", circuit_id="row-1", phase_rotation="TRS", max_current_a=22),
        station("W1", circuit_id="wall", phase_rotation="Sxx"),
        station("F1", circuit_id="free"),
    ]
    model = site_model(record, registry, evse_ids={"R1": [2, 1, 2]})
    paths = model.paths()
    assert [c.circuit_id for c in paths["wall"]] == ["wall", "row-1", "hall", "S"]
    assert paths["free"][0].max_current_a == float("inf")
    assert paths["free"][1].circuit_id == "S"
    assert model.grid_connection.nominal_voltage_v == 240
    by_id = {s.station_id: s for s in model.stations}
    assert [(e.evse_id, e.max_current_a) for e in by_id["R1"].evses] == [(1, 22), (2, 22)]
    assert by_id["R1"].grid_phases(1) == (3,)
    assert by_id["W1"].evses[0].max_current_a == 16  # its circuit bounds it
    assert by_id["F1"].evses[0].max_current_a == 63  # the grid connection does


def test_a_site_with_only_a_power_limit_is_shared_by_power() -> None:
    record = site(max_current_a=None, max_power_w=22_080)
    model = site_model(record, [station("A"), station("B")])
    result = allocate(model, [Ev(station_id="A", evse_id=1), Ev(station_id="B", evse_id=1)])
    assert [ev.current_a for ev in result.evs] == pytest.approx([16.0, 16.0])
    assert {ev.binding.kind for ev in result.evs} == {"power_limit"}


@pytest.mark.parametrize(
    ("record", "registry", "message"),
    [
        (site(max_current_a=None), [], "site S: no max_current_a or max_power_w"),
        (site(Circuit(circuit_id="A", parent_id="nowhere")), [], "circuit A: no parent nowhere"),
        (
            site(Circuit(circuit_id="A", parent_id="B"), Circuit(circuit_id="B", parent_id="A")),
            [],
            "the circuits form a cycle",
        ),
        (
            site(
                Circuit(circuit_id="one", phases=1),
                Circuit(circuit_id="three", parent_id="one"),
            ),
            [],
            "circuit three: carries a phase its parent does not",
        ),
        (site(Circuit(circuit_id="A"), Circuit(circuit_id="A")), [], "circuit ids repeat"),
        (site(Circuit(circuit_id="S")), [], "circuit S: a circuit cannot take its site's id"),
        (site(Circuit(circuit_id="A", derating=1.5)), [], "circuit A: derating"),
        (site(nominal_voltage_v=0), [], "circuit S: nominal_voltage_v"),
        (site(), [station("X", circuit_id="gone")], "station X: no circuit gone"),
        (
            site(
                Circuit(circuit_id="A", station_ids=("X",)),
                Circuit(circuit_id="B", station_ids=("X",)),
            ),
            [station("X")],
            "station X: listed on circuits A and B",
        ),
        (
            site(Circuit(circuit_id="L2", phases=1, grid_phase=2)),
            [station("X", circuit_id="L2")],
            "station X: its L1 is on a phase circuit L2 does not carry",
        ),
        (site(), [station("X", phase_rotation="RRS")], "station X: phase_rotation 'RRS'"),
        (site(), [station("X", max_current_a=-1.0)], "EVSE 1: max_current_a must be >= 0"),
    ],
)
def test_a_tree_that_cannot_be_is_refused_precisely(
    record: SiteRecord, registry: list[StationRecord], message: str
) -> None:
    with pytest.raises(SiteError, match=message.replace("(", r"\(")):
        site_model(record, registry)


@given(st.sampled_from(sorted(PHASE_ROTATIONS)), st.sampled_from([1, 2, 3]))
def test_every_valid_rotation_converts_onto_a_circuit_that_carries_its_l1(
    rotation: str, grid_phase: int
) -> None:
    l1 = "RST".index(rotation[0]) + 1
    record = site(Circuit(circuit_id="C", phases=1, grid_phase=grid_phase))
    registry = [station("X", circuit_id="C", phase_rotation=rotation)]
    if l1 == grid_phase:
        assert site_model(record, registry).stations[0].grid_phases(1) == (l1,)
    else:
        with pytest.raises(SiteError, match="does not carry"):
            site_model(record, registry)
