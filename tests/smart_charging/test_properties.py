"""Properties of the allocation over random sites, EVs and unmanaged load.

Tolerances: currents are floats; "within a limit" means within 1e-6 A (for a
power limit, the watts of 1e-6 A on three phases), "tight" means within 1e-6
of the headroom, and shares are compared within 1e-6 A.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.smart_charging.strategies import Scenario, evs_at, scenarios, sites, unmanaged_on
from workers.smart_charging.allocation import Allocation, admission_order, allocate
from workers.smart_charging.limits import SiteLimits, limit_loads, overloads, site_limits
from workers.smart_charging.send_order import first_unsafe_change, send_order
from workers.smart_charging.site import Ev, Site

EPS = 1e-6


def _slack(compiled: SiteLimits, k: int) -> float:
    limit = compiled.limits[k]
    return EPS * (3 * limit.nominal_voltage_v if limit.is_power else 1.0)


def _solve(scenario: Scenario) -> tuple[SiteLimits, Allocation, list[float]]:
    compiled = site_limits(scenario.site, scenario.evs, scenario.unmanaged)
    allocation = allocate(scenario.site, scenario.evs, scenario.unmanaged)
    assert [ev.evse for ev in allocation.evs] == [ev.evse for ev in compiled.evs]
    return compiled, allocation, [ev.current_a for ev in allocation.evs]


@settings(max_examples=300)
@given(scenarios())
def test_no_limit_is_exceeded_on_any_phase(scenario: Scenario) -> None:
    compiled, allocation, _ = _solve(scenario)
    assert overloads(compiled, allocation.currents(), tolerance=EPS) == ()


@settings(max_examples=300)
@given(scenarios())
def test_every_ev_gets_0_or_its_minimum_and_never_more_than_its_bound(scenario: Scenario) -> None:
    compiled, allocation, currents = _solve(scenario)
    for ev, bound, current, result in zip(
        compiled.evs, compiled.bounds, currents, allocation.evs, strict=True
    ):
        assert current == 0.0 or current >= ev.min_current_a - 1e-9
        assert 0.0 <= current <= bound + 1e-9
        if result.binding.kind == "paused":
            assert current == 0.0


@settings(max_examples=300)
@given(scenarios())
def test_admission_follows_the_order_and_leaves_no_minimum_that_fits(scenario: Scenario) -> None:
    """An EV is paused only if its minimum does not fit beside the minimums of the EVs
    admitted before it in the order; so none fits beside all admitted (maximal)."""
    compiled, allocation, _ = _solve(scenario)
    minimums = [0.0] * len(compiled.evs)
    order = sorted(range(len(compiled.evs)), key=lambda i: admission_order(compiled.evs[i]))
    for i in order:
        ev = compiled.evs[i]
        trial = [*minimums]
        trial[i] = ev.min_current_a
        fits = _fits(compiled, trial)
        if allocation.evs[i].binding.kind == "paused":
            assert not fits
            assert compiled.bounds[i] >= ev.min_current_a
        elif compiled.bounds[i] >= ev.min_current_a:
            assert fits
            minimums = trial
    # maximal: every paused EV's minimum is refused beside all admitted minimums
    for i, result in enumerate(allocation.evs):
        if result.binding.kind == "paused":
            trial = [*minimums]
            trial[i] = compiled.evs[i].min_current_a
            assert not _fits(compiled, trial)


def _fits(compiled: SiteLimits, currents: list[float]) -> bool:
    """Within every limit, with the allocator's slack for rounding (1e-9, relative)."""
    loads = limit_loads(compiled, currents)
    return all(
        load <= limit.headroom * (1 + 1e-9) + 1e-9
        for limit, load in zip(compiled.limits, loads, strict=True)
    )


@settings(max_examples=300)
@given(scenarios())
def test_max_min_fair_and_nothing_left_on_the_table(scenario: Scenario) -> None:
    """Every admitted EV below its bound loads a tight limit (it could not be raised
    without exceeding one: nothing is left on the table), and on at least one of its
    tight limits every other EV either has a share (current/weight) no larger than
    its own or sits at its minimum (so raising it would take from an EV with a
    share at most its own, or below a minimum: max-min fair with minimums as floors).
    """
    compiled, allocation, currents = _solve(scenario)
    loads = limit_loads(compiled, currents)
    tight = {
        k
        for k, (limit, load) in enumerate(zip(compiled.limits, loads, strict=True))
        if load >= limit.headroom - _slack(compiled, k)
    }
    members: dict[int, list[int]] = {}
    for i, ev_terms in enumerate(compiled.terms):
        for k, _ in ev_terms:
            members.setdefault(k, []).append(i)
    for i, (ev, result) in enumerate(zip(compiled.evs, allocation.evs, strict=True)):
        admitted = result.binding.kind != "paused" and compiled.bounds[i] >= ev.min_current_a
        if not admitted or currents[i] >= compiled.bounds[i] - EPS:
            continue
        its_tight = [k for k, _ in compiled.terms[i] if k in tight]
        assert its_tight, f"{ev.evse} could be raised"
        share = currents[i] / ev.weight
        assert any(
            all(
                currents[j] / compiled.evs[j].weight <= share + EPS
                or currents[j] <= compiled.evs[j].min_current_a + EPS
                for j in members[k]
            )
            for k in its_tight
        ), f"{ev.evse} at share {share} is not on a bottleneck"
        # what binds it is one of those limits
        assert result.binding.kind in ("current_limit", "power_limit")
        named = [
            k
            for k in its_tight
            if (compiled.limits[k].circuit_id, compiled.limits[k].phase)
            == (result.binding.circuit_id, result.binding.phase)
        ]
        assert named, f"{ev.evse} is bound by {result.binding}, not a tight limit of its own"


@settings(max_examples=200)
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_same_answer_for_any_input_order(scenario: Scenario, rng: random.Random) -> None:
    site = scenario.site
    shuffled = Site(
        site_id=site.site_id,
        grid_connection=site.grid_connection,
        circuits=tuple(rng.sample(site.circuits, len(site.circuits))),
        stations=tuple(rng.sample(site.stations, len(site.stations))),
    )
    evs = rng.sample(scenario.evs, len(scenario.evs))
    unmanaged = rng.sample(scenario.unmanaged, len(scenario.unmanaged))
    assert allocate(shuffled, evs, unmanaged) == allocate(site, scenario.evs, scenario.unmanaged)


@st.composite
def two_moments(draw: st.DrawFn) -> tuple[Site, list[Ev], list[Ev], list[Ev], Scenario]:
    """A site, a pool of EVs, and two sets of them (with other weights, priorities and
    EV limits the second time), under the same unmanaged load."""
    site = draw(sites())
    pool = evs_at(draw, site, 10)
    unmanaged = unmanaged_on(draw, site)
    before = [ev for ev in pool if draw(st.booleans())]
    after = []
    for ev in pool:
        if draw(st.booleans()):
            changed = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "weight": st.sampled_from((1.0, 2.0)),
                        "priority": st.sampled_from((0, 1)),
                        "ev_max_current_a": st.sampled_from((6.0, 10.0, 32.0)),
                    },
                )
            )
            after.append(Ev(**{**{f: getattr(ev, f) for f in ev.__struct_fields__}, **changed}))
    return site, pool, before, after, Scenario(site, pool, unmanaged)


@settings(max_examples=300)
@given(two_moments())
def test_every_prefix_of_the_send_order_is_within_every_limit(
    moments: tuple[Site, list[Ev], list[Ev], list[Ev], Scenario],
) -> None:
    site, pool, before, after, scenario = moments
    previous = allocate(site, before, scenario.unmanaged)
    new = allocate(site, after, scenario.unmanaged)
    changes = send_order(previous, new)
    assert all(c.is_decrease for c in changes[: sum(c.is_decrease for c in changes)])
    assert not any(c.is_decrease for c in changes[sum(c.is_decrease for c in changes) :])
    compiled = site_limits(site, pool, scenario.unmanaged)  # every EVSE, its phases
    assert first_unsafe_change(compiled, previous.currents(), changes) is None
    # stronger, and true whatever the limits: no prefix loads a limit more than the
    # larger of before and after
    index = {ev.evse: i for i, ev in enumerate(compiled.evs)}
    currents = [0.0] * len(compiled.evs)
    for evse, current in previous.currents().items():
        currents[index[evse]] = current
    bounds_before = limit_loads(compiled, currents)
    target = [0.0] * len(compiled.evs)
    for evse, current in new.currents().items():
        target[index[evse]] = current
    ceiling = [max(a, b) for a, b in zip(bounds_before, limit_loads(compiled, target), strict=True)]
    for change in changes:
        currents[index[change.evse]] = change.to_a
        for k, load in enumerate(limit_loads(compiled, currents)):
            assert load <= ceiling[k] + 1e-9 * max(1.0, ceiling[k])
    assert currents == target
