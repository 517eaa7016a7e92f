"""Worked examples of the allocation: who gets what, and what binds them."""

from __future__ import annotations

import pytest

from tests.smart_charging.sites import one_circuit_site
from workers.smart_charging.allocation import Allocation, Binding, allocate
from workers.smart_charging.limits import overloads, site_limits
from workers.smart_charging.send_order import Change, first_unsafe_change, send_order
from workers.smart_charging.site import Circuit, Ev, Evse, Site, Station, UnmanagedLoad

GRID_L1 = Binding(kind="current_limit", circuit_id="grid", phase=1)


def evs(count: int, **fields: object) -> list[Ev]:
    return [Ev(station_id=f"CP{i}", evse_id=1, **fields) for i in range(count)]  # type: ignore[arg-type]


def amps(allocation: Allocation) -> dict[str, float]:
    return {ev.station_id: ev.current_a for ev in allocation.evs}


def test_four_evs_on_a_32_a_site_get_8_a_each() -> None:
    allocation = allocate(one_circuit_site(32), evs(4))
    assert amps(allocation) == {"CP0": 8.0, "CP1": 8.0, "CP2": 8.0, "CP3": 8.0}
    # three-phase EVs reach all three phases' limits at once: the first phase names it
    assert {ev.binding for ev in allocation.evs} == {GRID_L1}
    assert str(GRID_L1) == "circuit grid L1 current limit"


def test_one_stops_and_the_other_three_rise_to_a_third_of_32_a() -> None:
    site = one_circuit_site(32)
    before = allocate(site, evs(4))
    after = allocate(site, evs(4)[:3])
    assert amps(after) == pytest.approx({"CP0": 32 / 3, "CP1": 32 / 3, "CP2": 32 / 3})
    # the stopped EV's current goes first, then the others rise
    assert send_order(before, after) == (
        Change(station_id="CP3", evse_id=1, from_a=8.0, to_a=0.0),
        *(Change(station_id=f"CP{i}", evse_id=1, from_a=8.0, to_a=32 / 3) for i in range(3)),
    )


def test_six_evs_on_32_a_leave_one_paused_and_the_others_at_least_6_a() -> None:
    # the EV with the most energy delivered waits
    fleet = [
        Ev(station_id=f"CP{i}", evse_id=1, energy_delivered_wh=1000.0 * (i == 2)) for i in range(6)
    ]
    allocation = allocate(one_circuit_site(32), fleet)
    assert amps(allocation) == pytest.approx(
        {"CP0": 6.4, "CP1": 6.4, "CP2": 0.0, "CP3": 6.4, "CP4": 6.4, "CP5": 6.4}
    )
    paused = allocation.evs[2].binding
    assert paused == Binding(kind="paused", circuit_id="grid", phase=1)
    assert str(paused) == "paused: minimums do not fit (circuit grid L1)"


def test_a_higher_priority_tier_is_admitted_first_then_a_higher_weight() -> None:
    fleet = [
        Ev(station_id="CP0", evse_id=1),
        Ev(station_id="CP1", evse_id=1, weight=2.0),
        Ev(station_id="CP2", evse_id=1, priority=1, energy_delivered_wh=9e9),
    ]
    allocation = allocate(one_circuit_site(12), fleet)
    assert amps(allocation) == {"CP0": 0.0, "CP1": 6.0, "CP2": 6.0}


def test_a_three_phase_site_carries_three_times_as_many_single_phase_evs() -> None:
    # stations rotated so that their L1 is on grid L1, L2, L3 in turn
    site = one_circuit_site(32, 12, rotations=("RST", "STR", "TRS"))
    single = allocate(site, evs(12, phases=1))
    assert amps(single) == pytest.approx({f"CP{i}": 8.0 for i in range(12)})
    assert {ev.binding.phase for ev in single.evs} == {1, 2, 3}
    assert single.evs[1].binding == Binding(kind="current_limit", circuit_id="grid", phase=2)
    three = allocate(site, evs(12, phases=3))
    assert sum(ev.current_a > 0 for ev in three.evs) == 5  # 5 x 6 A <= 32 A < 6 x 6 A


def test_single_phase_evs_all_on_one_phase_share_that_phase_only() -> None:
    site = one_circuit_site(32, 4, rotations=("RST", "RST", "STR", "STR"))
    allocation = allocate(site, [*evs(2, phases=1), *evs(4, phases=3)[2:]])
    # CP0, CP1 load only L1; CP2, CP3 (three-phase) load all phases
    assert amps(allocation) == pytest.approx({"CP0": 8.0, "CP1": 8.0, "CP2": 8.0, "CP3": 8.0})
    partial = allocate(site, [*evs(2, phases=1), *evs(3, phases=3)[2:]])
    # L1 carries three EVs (32/3 each); L2 and L3 carry CP2 alone, which rises to 32/3 too
    # with the others, then stops on L1 with them: max-min fair, not "fill L2"
    assert amps(partial) == pytest.approx({"CP0": 32 / 3, "CP1": 32 / 3, "CP2": 32 / 3})


def test_a_sub_circuit_binds_before_the_grid_connection() -> None:
    site = Site(
        site_id="S",
        grid_connection=Circuit(circuit_id="grid", max_current_a=46),
        circuits=(
            Circuit(circuit_id="garage", max_current_a=16),
            Circuit(circuit_id="yard", max_current_a=63),
            Circuit(circuit_id="yard-west", parent_id="yard", max_current_a=63),
        ),
        stations=(
            Station(
                station_id="G1", circuit_id="garage", evses=(Evse(evse_id=1, max_current_a=32),)
            ),
            Station(
                station_id="G2", circuit_id="garage", evses=(Evse(evse_id=1, max_current_a=32),)
            ),
            Station(station_id="Y1", circuit_id="yard", evses=(Evse(evse_id=1, max_current_a=32),)),
            Station(
                station_id="Y2",
                circuit_id="yard-west",
                evses=(Evse(evse_id=1, max_current_a=32), Evse(evse_id=2, max_current_a=32)),
            ),
        ),
    )
    fleet = [
        Ev(station_id="G1", evse_id=1),
        Ev(station_id="G2", evse_id=1),
        Ev(station_id="Y1", evse_id=1),
        Ev(station_id="Y2", evse_id=1),
        Ev(station_id="Y2", evse_id=2),
    ]
    allocation = allocate(site, fleet)
    # the garage binds at 8 A each; the yard's three share the grid's remaining 30 A
    assert [ev.station_id for ev in allocation.evs] == ["G1", "G2", "Y1", "Y2", "Y2"]
    assert [ev.current_a for ev in allocation.evs] == pytest.approx([8, 8, 10, 10, 10])
    assert allocation.evs[0].binding == Binding(kind="current_limit", circuit_id="garage", phase=1)
    assert allocation.evs[4].binding == GRID_L1


def test_a_power_limit_binds_before_the_current_limit() -> None:
    # 4 three-phase EVs at 8 A would be 22,080 W at 230 V: more than 22 kW
    allocation = allocate(one_circuit_site(32, max_power_w=22000.0), evs(4))
    assert amps(allocation) == pytest.approx({f"CP{i}": 22000 / (4 * 3 * 230) for i in range(4)})
    assert allocation.evs[0].binding == Binding(kind="power_limit", circuit_id="grid")
    assert str(allocation.evs[0].binding) == "circuit grid power limit"
    # a single-phase EV counts one phase's power
    single = allocate(one_circuit_site(32, max_power_w=3680.0), evs(1, phases=1))
    assert single.evs[0].current_a == pytest.approx(16.0)


def test_an_ev_at_its_own_bound_leaves_the_rest_to_the_others() -> None:
    fleet = [Ev(station_id="CP0", evse_id=1, ev_max_current_a=6.0), *evs(3)[1:]]
    allocation = allocate(one_circuit_site(32), fleet)
    assert amps(allocation) == pytest.approx({"CP0": 6.0, "CP1": 13.0, "CP2": 13.0})
    assert allocation.evs[0].binding == Binding(kind="ev_bound")
    # an EV whose bound is below its minimum cannot charge
    stuck = allocate(one_circuit_site(32), [Ev(station_id="CP0", evse_id=1, cable_max_current_a=5)])
    assert (stuck.evs[0].current_a, stuck.evs[0].binding.kind) == (0.0, "ev_bound")


def test_weights_scale_shares_and_minimums_are_floors() -> None:
    fleet = [
        Ev(station_id="CP0", evse_id=1, weight=3.0),
        Ev(station_id="CP1", evse_id=1),
        Ev(station_id="CP2", evse_id=1, min_current_a=10.0),
    ]
    # by weight alone 32 A would be 19.2 / 6.4 / 6.4, but minimums are floors: while
    # CP0 rises with weight 3 (from a share of 2 on), CP1 and CP2 wait at 6 and 10 A;
    # the limit binds at a share of 16/3, before either of them starts to rise
    allocation = allocate(one_circuit_site(32), fleet)
    assert amps(allocation) == pytest.approx({"CP0": 16.0, "CP1": 6.0, "CP2": 10.0})


def test_derating_and_unmanaged_load_take_from_the_limit() -> None:
    derated = allocate(one_circuit_site(40, derating=0.8), evs(4))
    assert amps(derated) == pytest.approx({f"CP{i}": 8.0 for i in range(4)})
    # 8 A of other load on L1: the three-phase EVs are held by L1
    busy = allocate(one_circuit_site(32), evs(4), [UnmanagedLoad(current_a=(8.0, 0.0, 0.0))])
    assert amps(busy) == pytest.approx({f"CP{i}": 6.0 for i in range(4)})
    # more than the limit: nobody is admitted, and the result is not below 0
    over = allocate(one_circuit_site(32), evs(2), [UnmanagedLoad(current_a=(40.0, 0.0, 0.0))])
    assert amps(over) == {"CP0": 0.0, "CP1": 0.0}


def test_a_lowered_limit_is_reached_through_decreases_first() -> None:
    site = one_circuit_site(32)
    before = allocate(site, evs(3))
    after = allocate(one_circuit_site(16), evs(2))  # one leaves as the limit drops
    order = send_order(before, after)
    assert [change.is_decrease for change in order] == [True, True, True]
    assert order[0] == Change(station_id="CP2", evse_id=1, from_a=32 / 3, to_a=0.0)
    compiled = site_limits(one_circuit_site(16), evs(3))
    assert overloads(compiled, after.currents()) == ()
    assert first_unsafe_change(compiled, before.currents(), order) == 0  # over before
    raise_first = tuple(reversed(send_order(allocate(site, evs(2)), allocate(site, evs(3)))))
    assert (
        first_unsafe_change(
            site_limits(site, evs(3)), allocate(site, evs(2)).currents(), raise_first
        )
        == 1
    )


def test_the_worked_example_of_docs_smart_charging() -> None:
    site = Site(
        site_id="depot",
        grid_connection=Circuit(circuit_id="grid", max_current_a=40),
        circuits=(Circuit(circuit_id="garage", max_current_a=32, max_power_w=9660),),
        stations=(
            Station(
                station_id="G1", circuit_id="garage", evses=(Evse(evse_id=1, max_current_a=32),)
            ),
            Station(
                station_id="G2", circuit_id="garage", evses=(Evse(evse_id=1, max_current_a=32),)
            ),
            Station(station_id="Y1", evses=(Evse(evse_id=1, max_current_a=32),)),
            Station(
                station_id="Y2", phase_rotation="STR", evses=(Evse(evse_id=1, max_current_a=32),)
            ),
            Station(
                station_id="Y3", phase_rotation="TRS", evses=(Evse(evse_id=1, max_current_a=16),)
            ),
            Station(station_id="Y4", evses=(Evse(evse_id=1, max_current_a=32),)),
        ),
    )
    fleet = [
        Ev(station_id="G1", evse_id=1),
        Ev(station_id="G2", evse_id=1),
        Ev(station_id="Y1", evse_id=1),
        Ev(station_id="Y2", evse_id=1, phases=1),
        Ev(station_id="Y3", evse_id=1, phases=1),
        Ev(station_id="Y4", evse_id=1, phases=1, energy_delivered_wh=5000),
    ]
    first = allocate(site, fleet, [UnmanagedLoad(current_a=(10.0, 0.0, 0.0))])
    assert [(ev.station_id, ev.current_a, str(ev.binding)) for ev in first.evs] == [
        ("G1", pytest.approx(7.0), "circuit garage power limit"),
        ("G2", pytest.approx(7.0), "circuit garage power limit"),
        ("Y1", pytest.approx(8.0), "circuit grid L1 current limit"),
        ("Y2", pytest.approx(18.0), "circuit grid L2 current limit"),
        ("Y3", 16.0, "its own bound"),
        ("Y4", pytest.approx(8.0), "circuit grid L1 current limit"),
    ]
    second = allocate(site, fleet, [UnmanagedLoad(current_a=(22.0, 0.0, 0.0))])
    assert [(ev.station_id, ev.current_a, str(ev.binding)) for ev in second.evs] == [
        ("G1", 6.0, "circuit grid L1 current limit"),
        ("G2", 6.0, "circuit grid L1 current limit"),
        ("Y1", 6.0, "circuit grid L1 current limit"),
        ("Y2", pytest.approx(22.0), "circuit grid L2 current limit"),
        ("Y3", 16.0, "its own bound"),
        ("Y4", 0.0, "paused: minimums do not fit (circuit grid L1)"),
    ]
    assert [(c.station_id, c.to_a) for c in send_order(first, second)] == [
        ("Y4", 0.0),
        ("Y1", 6.0),
        ("G1", 6.0),
        ("G2", 6.0),
        ("Y2", pytest.approx(22.0)),
    ]
