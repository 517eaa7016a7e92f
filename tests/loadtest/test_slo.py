"""SLOs: the grammar, precise refusals, and verdicts against a report."""

from __future__ import annotations

import pytest

from loadtest.recorder import Recorder
from loadtest.report import Report, merge
from loadtest.slo import SloError, evaluate, parse_slo


@pytest.mark.parametrize(
    ("text", "scope", "metric", "op", "threshold", "relative"),
    [
        ("p99<50ms", None, "p99", "<", 50.0, False),
        ("Heartbeat:p99.9<=100ms", "Heartbeat", "p99.9", "<=", 100.0, False),
        (" p50 < 500us ", None, "p50", "<", 0.5, False),
        ("max<2s", None, "max", "<", 2000.0, False),
        ("connect:p99<1s", "connect", "p99", "<", 1000.0, False),
        ("errors<0.1%", None, "errors", "<", 0.001, True),
        ("errors<=0", None, "errors", "<=", 0.0, False),
        ("rate>=1000/s", None, "rate", ">=", 1000.0, False),
        ("MeterValues:rate>10", "MeterValues", "rate", ">", 10.0, False),
    ],
)
def test_parse(
    text: str, scope: str | None, metric: str, op: str, threshold: float, relative: bool
) -> None:
    slo = parse_slo(text)
    assert (slo.scope, slo.metric, slo.op, slo.relative) == (scope, metric, op, relative)
    assert slo.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99 = 50ms", "expected [ACTION:]METRIC OP VALUE"),
        ("p99<50", "a latency needs a unit"),
        ("p95<50ms", "percentile p95 is not reported"),
        ("errors<5ms", "errors are a count or a percentage"),
        ("rate>5%", "a rate is in calls per second"),
        ("connect:rate>5", "connect has no rate"),
        ("", "expected [ACTION:]METRIC OP VALUE"),
    ],
)
def test_refusals_quote_the_slo(text: str, message: str) -> None:
    with pytest.raises(SloError) as caught:
        parse_slo(text)
    assert message in str(caught.value)
    assert repr(text) in str(caught.value)


def _report() -> Report:
    """10 s; 100 Heartbeats at 1..100 ms, 10 MeterValues of which 1 failed, 2 connects."""
    r = Recorder(wall_clock=lambda: 0.0, clock=lambda: 0.0)
    for ms in range(1, 101):
        r.called("Heartbeat")
        r.answered("Heartbeat", 0.0, ms / 1000)
    for _ in range(9):
        r.called("MeterValues")
        r.answered("MeterValues", 0.0, 0.2)
    r.called("MeterValues")
    r.failed("MeterValues", "timeout", 1.0)
    r.connect_started()
    r.connect_started()
    r.connect_succeeded(0.0, 0.3)
    r.error("connect:http_503", 0.0)
    report = r.report(
        scenario="s", target="t", parts=["p"], stations=2, started_at=0.0, ended_at=10.0,
        max_schedule_lag=0.0,
    )  # fmt: skip
    return merge([report])


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("Heartbeat:p99<100ms", True),
        ("Heartbeat:p99<98ms", False),
        ("Heartbeat:p50<=50.1ms", True),
        ("Heartbeat:max<100ms", False),
        ("p99<150ms", False),  # every call: the MeterValues at 200 ms are in the top 1 %
        ("p90<150ms", True),
        ("MeterValues:errors<=1", True),
        ("MeterValues:errors<10%", False),  # 1 of 10
        ("MeterValues:errors<=10%", True),
        ("errors<=1", False),  # the timeout and the refused connection
        ("rate>=10.9/s", True),  # 109 answers in 10 s
        ("rate>11/s", False),
        ("connect:p99<301ms", True),
        ("connect:errors<=0", False),
        ("connect:errors<=50%", True),
        ("Authorize:p99<1s", False),  # nothing measured: not met
    ],
)
def test_verdicts(text: str, passed: bool) -> None:
    (verdict,) = evaluate([parse_slo(text)], _report())
    assert verdict.passed is passed, verdict.describe()
    assert verdict.describe().startswith("PASS" if passed else "FAIL")


def test_nothing_measured_is_said() -> None:
    (verdict,) = evaluate([parse_slo("Authorize:p99<1s")], _report())
    assert verdict.describe() == "FAIL Authorize:p99<1s (nothing measured)"
