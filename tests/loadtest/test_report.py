"""Recording, merging (processes, Job parts), the summary and the HTML page."""

from __future__ import annotations

import random

import pytest

from loadtest import html
from loadtest.recorder import Recorder
from loadtest.report import (
    action_histogram,
    decode_report,
    encode_report,
    histogram,
    merge,
    summarize,
)


def recorded(latencies_ms: list[float], *, label: str, start: float = 1000.0) -> Recorder:
    """A recorder that saw one Heartbeat per latency, one a second from ``start``."""
    recorder = Recorder(wall_clock=lambda: start, clock=lambda: start)
    for i, latency in enumerate(latencies_ms):
        scheduled = start + i
        recorder.called("Heartbeat")
        recorder.answered("Heartbeat", scheduled, scheduled + latency / 1000)
    return recorder


def report_of(recorder: Recorder, label: str, stations: int = 10) -> object:
    return recorder.report(
        scenario="steady",
        target="ws://csms/ocpp/",
        parts=[label],
        stations=stations,
        started_at=1000.0,
        ended_at=1010.0,
        max_schedule_lag=0.002,
    )


def test_merged_histograms_are_the_histogram_of_all_the_values() -> None:
    rng = random.Random(1)
    a = [rng.uniform(1, 50) for _ in range(500)]
    b = [rng.uniform(20, 400) for _ in range(300)]
    merged = merge([report_of(recorded(a, label="a"), "a"), report_of(recorded(b, label="b"), "b")])  # type: ignore[list-item]
    everything = histogram()
    for value in a + b:
        everything.record_value(int(value * 1000))
    got = action_histogram(merged.actions["Heartbeat"])
    assert got.get_total_count() == 800
    for p in (50, 90, 99, 99.9, 100):
        assert got.get_value_at_percentile(p) == everything.get_value_at_percentile(p)
    assert merged.actions["Heartbeat"].calls == 800
    assert merged.actions["Heartbeat"].answered == 800
    assert merged.stations == 20
    assert merged.parts == ["a", "b"]
    assert merged.generator.processes == 2
    assert merged.summary["all"]["latency_ms"]["max"] == pytest.approx(max(a + b), rel=1e-3)


def test_timeline_buckets_of_the_same_interval_add_up() -> None:
    one = recorded([1.0, 2.0, 3.0], label="a")
    two = recorded([5.0, 6.0], label="b")
    merged = merge([report_of(one, "a"), report_of(two, "b")])  # type: ignore[list-item]
    assert [(b.at, b.answered) for b in merged.timeline] == [(1000, 2), (1001, 2), (1002, 1)]


def test_errors_commands_and_connects_are_summed() -> None:
    reports = []
    for label in ("a", "b"):
        r = Recorder(wall_clock=lambda: 0.0, clock=lambda: 0.0)
        r.called("MeterValues")
        r.failed("MeterValues", "callerror:InternalError", 0.5)
        r.error("connect:http_503", 0.5)
        r.command("GetConfiguration")
        r.connect_started()
        r.connect_succeeded(0.0, 0.01)
        reports.append(report_of(r, label))
    merged = merge(reports)  # type: ignore[arg-type]
    assert merged.errors == {"callerror:InternalError": 2, "connect:http_503": 2}
    assert merged.commands == {"GetConfiguration": 2}
    assert merged.actions["MeterValues"].errors == 2
    assert (merged.connects.attempts, merged.connects.connected) == (2, 2)
    assert merged.summary["connects"]["latency_ms"]["p50"] == pytest.approx(10, rel=1e-2)
    assert merged.summary["errors"] == 4


def test_a_storm_is_over_when_the_last_process_is_back() -> None:
    reports = []
    for back in (1.5, 3.0):
        r = Recorder(wall_clock=lambda: 50.0, clock=lambda: 0.0)
        r.connect_succeeded(0.0, 0.0)
        r.connect_succeeded(0.0, 0.0)
        r.storm(10.0)
        r.disconnected()
        r.disconnected()
        r.connect_succeeded(10.0, 10.0 + back / 2)
        assert r.storms[-1].back_after is None  # one of two is back
        r.connect_succeeded(10.0, 10.0 + back)
        assert r.storms[-1].back_after == back
        reports.append(report_of(r, f"p{back}"))
    merged = merge(reports)  # type: ignore[arg-type]
    assert len(merged.storms) == 1
    assert merged.storms[0].stations == 4
    assert merged.storms[0].back_after == 3.0


def test_a_report_survives_json() -> None:
    report = summarize(report_of(recorded([1.0, 2.0], label="a"), "a"))  # type: ignore[arg-type]
    again = decode_report(encode_report(report))
    assert again.actions == report.actions
    assert again.timeline == report.timeline


def test_reading_something_else_says_so() -> None:
    with pytest.raises(ValueError, match=r"x\.json: not a csms load-test report"):
        decode_report(b'{"hello": 1}', "x.json")
    report = report_of(recorded([1.0], label="a"), "a")
    report.format = "csms-loadtest/0"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="format 'csms-loadtest/0'"):
        decode_report(encode_report(report), "old.json")  # type: ignore[arg-type]


def test_reports_of_different_scenarios_do_not_merge() -> None:
    a = report_of(recorded([1.0], label="a"), "a")
    b = report_of(recorded([1.0], label="b"), "b")
    b.scenario = "boot-storm"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="different scenarios"):
        merge([a, b])  # type: ignore[list-item]


def test_the_html_page_draws_the_charts() -> None:
    report = merge([report_of(recorded([1.0, 20.0, 300.0], label="a"), "a")])  # type: ignore[list-item]
    page = html.render(report, ["PASS p99<1s (measured 300ms)", "FAIL p50<1ms (measured 20ms)"])
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 4  # latency over time, rate, connected, percentiles
    assert page.count("<polyline") >= 4  # p50, p99, max over time, and the distribution
    assert '<li class="fail">FAIL p50&lt;1ms' in page
    assert "Heartbeat" in page
