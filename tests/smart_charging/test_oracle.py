"""The water-filling against an exact oracle: lexicographic max-min fairness by linear programming.

For the EVs the allocator admitted, the oracle computes the allocation whose
shares (current / weight), sorted ascending, are lexicographically largest,
with each EV between its minimum and its bound and every limit respected. It
is HiGHS (through ``scipy.optimize.linprog``) in the textbook loop:

1. maximise ``z`` such that every EV not yet fixed has ``current >= weight * z``
   (fixed EVs at their value, the others within [minimum, bound]);
2. an unfixed EV is saturated when, with every unfixed EV kept at
   ``current >= weight * z*``, its current cannot exceed ``max(minimum,
   weight * z*)``: fix it there;
3. repeat until every EV is fixed.

Over a convex set the leximin point is unique, so the two must agree (to 1e-6 A).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from scipy.optimize import linprog

from tests.smart_charging.sites import one_circuit_site
from tests.smart_charging.strategies import Scenario, scenarios
from workers.smart_charging.allocation import allocate
from workers.smart_charging.limits import SiteLimits, site_limits
from workers.smart_charging.site import Ev

TOLERANCE = 1e-6


def leximin(compiled: SiteLimits, admitted: list[int]) -> dict[int, float]:
    """The lexicographic max-min fair currents of the ``admitted`` EVs (indices into
    ``compiled.evs``); every other EV at 0 A."""
    n = len(admitted)
    a = np.zeros((len(compiled.limits), n))
    for column, i in enumerate(admitted):
        for k, coefficient in compiled.terms[i]:
            a[k, column] += coefficient
    b = np.array([limit.headroom for limit in compiled.limits])
    weights = np.array([compiled.evs[i].weight for i in admitted])
    lower = np.array([compiled.evs[i].min_current_a for i in admitted])
    upper = np.array([compiled.bounds[i] for i in admitted])
    fixed: dict[int, float] = {}
    while len(fixed) < n:
        free = [c for c in range(n) if c not in fixed]
        bounds = [(fixed[c], fixed[c]) if c in fixed else (lower[c], upper[c]) for c in range(n)]
        # variables: the n currents, then z; rows: limits, then weight·z - current <= 0
        share_rows = np.zeros((len(free), n + 1))
        for row, c in enumerate(free):
            share_rows[row, c], share_rows[row, n] = -1.0, weights[c]
        a_ub = np.vstack([np.hstack([a, np.zeros((len(b), 1))]), share_rows])
        b_ub = np.concatenate([b, np.zeros(len(free))])
        objective = np.zeros(n + 1)
        objective[n] = -1.0
        level = linprog(
            objective, A_ub=a_ub, b_ub=b_ub, bounds=[*bounds, (0, None)], method="highs"
        )
        assert level.status == 0, level.message
        z = level.x[n]
        newly = []
        for c in free:
            floor = max(lower[c], weights[c] * z)
            objective = np.zeros(n + 1)
            objective[c] = -1.0
            best = linprog(
                objective,
                A_ub=a_ub,
                b_ub=b_ub,
                bounds=[*bounds[:n], (z, z)],
                method="highs",
            )
            assert best.status == 0, best.message
            if best.x[c] <= floor + 1e-7:
                newly.append((c, min(floor, upper[c])))
        assert newly, "some EV is saturated at the optimal level"
        for c, value in newly:
            fixed[c] = value
    return {i: fixed[column] for column, i in enumerate(admitted)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_evs=8, max_circuits=3, max_stations=6))
def test_water_filling_is_the_lexicographic_max_min_fair_allocation(scenario: Scenario) -> None:
    compiled = site_limits(scenario.site, scenario.evs, scenario.unmanaged)
    allocation = allocate(scenario.site, scenario.evs, scenario.unmanaged)
    admitted = [
        i
        for i, (ev, result) in enumerate(zip(compiled.evs, allocation.evs, strict=True))
        if result.binding.kind != "paused" and compiled.bounds[i] >= ev.min_current_a
    ]
    expected = leximin(compiled, admitted) if admitted else {}
    for i, result in enumerate(allocation.evs):
        assert abs(result.current_a - expected.get(i, 0.0)) <= TOLERANCE, (
            f"{result.evse}: water-filling {result.current_a}, oracle {expected.get(i, 0.0)}"
        )


def test_the_oracle_agrees_on_a_worked_example() -> None:
    """Three EVs on 32 A with weights 3, 1, 1 and minimums 6, 6, 10 (as in test_allocation)."""
    evs = [
        Ev(station_id="CP0", evse_id=1, weight=3.0),
        Ev(station_id="CP1", evse_id=1),
        Ev(station_id="CP2", evse_id=1, min_current_a=10.0),
    ]
    result = leximin(site_limits(one_circuit_site(32), evs), [0, 1, 2])
    assert result == pytest.approx({0: 16.0, 1: 6.0, 2: 10.0}, abs=1e-7)
