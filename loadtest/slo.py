"""Pass/fail thresholds on a report: ``--slo 'p99<50ms'``, ``--slo 'Heartbeat:p99.9<=100ms'``.

Grammar (spaces allowed around the operator)::

    slo       = [scope ":"] metric operator value
    scope     = an action (Heartbeat, MeterValues, ...) or "connect"; none: every call
    metric    = p50 | p90 | p99 | p99.9 | max | mean       value = number unit (us, ms, s)
              | errors                                   value = a count, or a number "%"
                                                                 of the calls (connects)
              | rate                                     value = a number, "/s" optional
    operator  = "<" | "<=" | ">" | ">="

Examples: ``p99<50ms``, ``Heartbeat:p99<20ms``, ``connect:p99<1s``,
``errors<=0``, ``errors<0.1%``, ``rate>=1000/s``, ``connect:errors=0`` is
spelt ``connect:errors<=0``.

An SLO whose scope saw nothing (no Heartbeat answered at all) fails: a
threshold that nothing was measured against has not been met.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Iterable
from typing import Final

from loadtest.report import (
    PERCENTILES,
    Report,
    action_histogram,
    all_calls_histogram,
    connect_histogram,
)

__all__ = ["Slo", "SloError", "Verdict", "evaluate", "parse_slo"]

_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LATENCY_METRICS: Final = (*(name for name, _ in PERCENTILES), "max", "mean")
_UNITS_MS: Final = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}

_SLO = re.compile(
    r"^\s*(?:(?P<scope>[A-Za-z][A-Za-z0-9]*)\s*:\s*)?"
    r"(?P<metric>p\d+(?:\.\d+)?|max|mean|errors|rate)\s*"
    r"(?P<op><=|>=|<|>)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s|%|/s)?\s*$"
)


class SloError(ValueError):
    """An SLO that cannot be read; the message quotes it and says what was expected."""


@dataclasses.dataclass(frozen=True)
class Slo:
    text: str
    scope: str | None  # an action, "connect", or None for every call
    metric: str
    op: str
    threshold: float  # ms for latencies, a count or a fraction for errors, calls/s for rate
    relative: bool = False  # errors given in %: threshold is a fraction of the calls


@dataclasses.dataclass(frozen=True)
class Verdict:
    slo: Slo
    measured: float | None  # None: nothing was measured in the scope
    passed: bool

    def describe(self) -> str:
        unit = {"errors": "%" if self.slo.relative else "", "rate": "/s"}.get(self.slo.metric, "ms")
        if self.measured is None:
            got = "nothing measured"
        elif self.slo.relative:
            got = f"measured {self.measured * 100:.4g}{unit}"
        else:
            got = f"measured {self.measured:.6g}{unit}"
        return f"{'PASS' if self.passed else 'FAIL'} {self.slo.text} ({got})"


def parse_slo(text: str) -> Slo:
    match = _SLO.match(text)
    if match is None:
        raise SloError(
            f"SLO {text!r}: expected [ACTION:]METRIC OP VALUE, e.g. 'p99<50ms', "
            "'Heartbeat:p99.9<=100ms', 'errors<0.1%', 'rate>=1000/s'"
        )
    metric, unit, value = match["metric"], match["unit"], float(match["value"])
    scope = match["scope"]
    if metric.startswith("p") and metric not in _LATENCY_METRICS:
        raise SloError(
            f"SLO {text!r}: percentile {metric} is not reported; use one of "
            + ", ".join(_LATENCY_METRICS)
        )
    relative = False
    if metric in _LATENCY_METRICS:
        if unit not in _UNITS_MS:
            raise SloError(f"SLO {text!r}: a latency needs a unit: us, ms or s")
        value *= _UNITS_MS[unit]
    elif metric == "errors":
        if unit not in (None, "%"):
            raise SloError(f"SLO {text!r}: errors are a count or a percentage, not {unit!r}")
        relative = unit == "%"
        if relative:
            value /= 100.0
    elif unit not in (None, "/s"):
        raise SloError(f"SLO {text!r}: a rate is in calls per second ('/s'), not {unit!r}")
    if scope == "connect" and metric == "rate":
        raise SloError(f"SLO {text!r}: connect has no rate; use latency or errors")
    return Slo(text.strip(), scope, metric, match["op"], value, relative)


def _measure(slo: Slo, report: Report) -> float | None:
    summary = report.summary
    duration = max(float(summary.get("duration_s", 0.0)), 1e-9)
    if slo.scope == "connect":
        attempts = report.connects.attempts
        if slo.metric == "errors":
            failed = attempts - report.connects.connected
            return (failed / attempts if attempts else None) if slo.relative else failed
        h = connect_histogram(report)
    elif slo.scope is not None:
        action = report.actions.get(slo.scope)
        if action is None:
            return None
        if slo.metric == "errors":
            if slo.relative:
                return action.errors / action.calls if action.calls else None
            return action.errors
        if slo.metric == "rate":
            return action.answered / duration
        h = action_histogram(action)
    else:
        calls = sum(a.calls for a in report.actions.values())
        if slo.metric == "errors":
            errors = sum(report.errors.values())  # connection errors count for the whole run
            if slo.relative:
                return errors / calls if calls else None
            return errors
        if slo.metric == "rate":
            return sum(a.answered for a in report.actions.values()) / duration
        h = all_calls_histogram(report)
    if not h.get_total_count():
        return None
    if slo.metric == "max":
        value = h.get_max_value()
    elif slo.metric == "mean":
        value = h.get_mean_value()
    else:
        value = h.get_value_at_percentile(float(slo.metric[1:]))
    return float(value) / 1000.0


def evaluate(slos: Iterable[Slo], report: Report) -> list[Verdict]:
    """One verdict per SLO; ``report`` must be summarized (see ``loadtest.report.summarize``)."""
    verdicts = []
    for slo in slos:
        measured = _measure(slo, report)
        passed = measured is not None and _OPERATORS[slo.op](measured, slo.threshold)
        verdicts.append(Verdict(slo, measured, passed))
    return verdicts
