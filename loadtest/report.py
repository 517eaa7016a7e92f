"""The report of a load test: what one process measured, what many merge into, and its summary.

A :class:`Report` is JSON (``csms-loadtest/1``). Latencies are HDR histograms
in microseconds (1 µs to 10 minutes, 3 significant digits), stored in their
standard compressed encoding (``HISTFAAA...``, the same as HdrHistogram's
Java and C libraries read), so reports from worker processes and from the
parts of a Kubernetes Job merge exactly: counts add up and histograms are
added, never averaged. Percentiles are only ever computed from the merged
histograms: :func:`summarize` writes them into ``summary``, which
:func:`merge` ignores and recomputes.

Errors are counted by kind:

===============================  ==================================================
``callerror:<code>``             the CSMS answered a call with CALLERROR ``<code>``
``timeout``                      no answer within the scenario's ``call_timeout``
``disconnect``                   the connection closed with the call unanswered
``connect:http_<status>``        the websocket handshake was refused with that status
``connect:timeout``              no handshake answer within ``--connect-timeout``
``connect:refused``              the TCP connection was refused or reset
``connect:<errno name>``         another socket error while connecting
``connect:no_subprotocol``       the CSMS accepted without choosing an OCPP version
``dropped``                      the CSMS closed an established connection
===============================  ==================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = [
    "FORMAT",
    "HIGHEST_US",
    "ActionReport",
    "Bucket",
    "ConnectReport",
    "GeneratorReport",
    "Report",
    "StormReport",
    "action_histogram",
    "all_calls_histogram",
    "connect_histogram",
    "decode_report",
    "encode_report",
    "histogram",
    "merge",
    "percentiles",
    "summarize",
    "timeline_histogram",
]

FORMAT: Final = "csms-loadtest/1"
HIGHEST_US: Final = 600_000_000  # ten minutes
SIGNIFICANT_FIGURES: Final = 3
TIMELINE_SIGNIFICANT_FIGURES: Final = 2  # timeline histograms: smaller, precise enough to plot
PERCENTILES: Final = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def histogram(significant_figures: int = SIGNIFICANT_FIGURES) -> HdrHistogram:
    """An empty latency histogram in microseconds."""
    return HdrHistogram(1, HIGHEST_US, significant_figures)


def _decode_histogram(encoded: str, significant_figures: int) -> HdrHistogram:
    h = histogram(significant_figures)
    if encoded:
        h.decode_and_add(encoded.encode())
    return h


def _encode_histogram(h: HdrHistogram) -> str:
    return h.encode().decode() if h.get_total_count() else ""


class ActionReport(msgspec.Struct, kw_only=True):
    """One action: calls whose time came, answers, errors, and the answers' latency."""

    calls: int = 0
    answered: int = 0
    errors: int = 0
    latency: str = ""  # HDR histogram, µs from the scheduled send to the answer


class ConnectReport(msgspec.Struct, kw_only=True):
    attempts: int = 0
    connected: int = 0
    latency: str = ""  # HDR histogram, µs from the scheduled connect to the 101 answer


class Bucket(msgspec.Struct, kw_only=True):
    """One interval of the timeline; ``at``: its start (Unix seconds, a multiple of interval)."""

    at: float
    answered: int = 0
    errors: int = 0
    connected: int = 0  # stations connected at the end of the interval
    latency: str = ""  # HDR histogram of the answers in this interval (2 significant figures)


class StormReport(msgspec.Struct, kw_only=True):
    """A moment every station dropped its connection, and how long until they were all back."""

    at: float  # Unix seconds
    stations: int  # connected just before
    back_after: float | None  # seconds until all were connected again; None: not within the run


class GeneratorReport(msgspec.Struct, kw_only=True):
    """What the load generator itself cost, to tell its limits from the CSMS's."""

    processes: int = 1
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0  # sum over processes of each one's peak
    max_schedule_lag: float = 0.0  # seconds: the latest an event ran after its scheduled time


class Report(msgspec.Struct, kw_only=True):
    format: str = FORMAT
    scenario: str
    target: str
    parts: list[str]  # "part K/N process J/P" of every process that contributed
    stations: int
    started_at: float  # Unix seconds
    ended_at: float
    actions: dict[str, ActionReport] = {}
    connects: ConnectReport = msgspec.field(default_factory=ConnectReport)
    errors: dict[str, int] = {}
    commands: dict[str, int] = {}  # the CSMS's calls answered, by action
    timeline_interval: float = 1.0
    timeline: list[Bucket] = []
    storms: list[StormReport] = []
    generator: GeneratorReport = msgspec.field(default_factory=GeneratorReport)
    summary: dict[str, Any] = {}  # derived by summarize(); ignored when reading


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Report)


def encode_report(report: Report) -> bytes:
    return _encoder.encode(report)


def decode_report(data: bytes | str, source: str = "report") -> Report:
    try:
        report = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{source}: not a csms load-test report: {exc}") from None
    if report.format != FORMAT:
        raise ValueError(f"{source}: format {report.format!r}, expected {FORMAT!r}")
    return report


# --------------------------------------------------------------------------- merge


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value


def merge(reports: Iterable[Report]) -> Report:
    """One report from several (processes, Job parts): counts summed, histograms added."""
    reports = list(reports)
    if not reports:
        raise ValueError("nothing to merge")
    intervals = {r.timeline_interval for r in reports}
    if len(intervals) > 1:
        raise ValueError(f"reports have different timeline intervals: {sorted(intervals)}")
    scenarios = {r.scenario for r in reports}
    if len(scenarios) > 1:
        raise ValueError(f"reports are of different scenarios: {sorted(scenarios)}")

    actions: dict[str, tuple[ActionReport, HdrHistogram]] = {}
    connect_latency = histogram()
    connects = ConnectReport()
    errors: dict[str, int] = {}
    commands: dict[str, int] = {}
    buckets: dict[float, tuple[Bucket, HdrHistogram]] = {}
    storms: dict[float, StormReport] = {}
    generator = GeneratorReport(processes=0)
    for r in reports:
        for name, a in r.actions.items():
            merged, h = actions.setdefault(name, (ActionReport(), histogram()))
            merged.calls += a.calls
            merged.answered += a.answered
            merged.errors += a.errors
            if a.latency:
                h.decode_and_add(a.latency.encode())
        connects.attempts += r.connects.attempts
        connects.connected += r.connects.connected
        if r.connects.latency:
            connect_latency.decode_and_add(r.connects.latency.encode())
        _add(errors, r.errors)
        _add(commands, r.commands)
        for b in r.timeline:
            merged_bucket, h = buckets.setdefault(
                b.at, (Bucket(at=b.at), histogram(TIMELINE_SIGNIFICANT_FIGURES))
            )
            merged_bucket.answered += b.answered
            merged_bucket.errors += b.errors
            merged_bucket.connected += b.connected
            if b.latency:
                h.decode_and_add(b.latency.encode())
        for s in r.storms:
            # the same storm seen by several processes: the fleet is back when the last one is
            key = round(s.at)
            seen = storms.get(key)
            if seen is None:
                storms[key] = StormReport(at=s.at, stations=s.stations, back_after=s.back_after)
            else:
                seen.stations += s.stations
                if seen.back_after is None or s.back_after is None:
                    seen.back_after = None
                else:
                    seen.back_after = max(seen.back_after, s.back_after)
        generator.processes += r.generator.processes
        generator.cpu_seconds += r.generator.cpu_seconds
        generator.peak_rss_kib += r.generator.peak_rss_kib
        generator.max_schedule_lag = max(generator.max_schedule_lag, r.generator.max_schedule_lag)

    for a, h in actions.values():
        a.latency = _encode_histogram(h)
    connects.latency = _encode_histogram(connect_latency)
    timeline = []
    for at in sorted(buckets):
        b, h = buckets[at]
        b.latency = _encode_histogram(h)
        timeline.append(b)
    merged_report = Report(
        scenario=reports[0].scenario,
        target=reports[0].target,
        parts=sorted(part for r in reports for part in r.parts),
        stations=sum(r.stations for r in reports),
        started_at=min(r.started_at for r in reports),
        ended_at=max(r.ended_at for r in reports),
        actions={name: a for name, (a, _) in sorted(actions.items())},
        connects=connects,
        errors=dict(sorted(errors.items())),
        commands=dict(sorted(commands.items())),
        timeline_interval=reports[0].timeline_interval,
        timeline=timeline,
        storms=[storms[k] for k in sorted(storms)],
        generator=generator,
    )
    return summarize(merged_report)


# --------------------------------------------------------------------------- summary


def percentiles(h: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in milliseconds (empty when nothing was recorded)."""
    if not h.get_total_count():
        return {}
    figures = {name: h.get_value_at_percentile(p) / 1000.0 for name, p in PERCENTILES}
    figures["max"] = h.get_max_value() / 1000.0
    figures["mean"] = round(h.get_mean_value() / 1000.0, 3)
    return figures


def summarize(report: Report) -> Report:
    """Fill ``report.summary``: per action and for all calls, counts, rate and percentiles (ms)."""
    duration = max(report.ended_at - report.started_at, 1e-9)
    every = histogram()
    actions: dict[str, Any] = {}
    calls = answered = failed = 0
    for name, a in report.actions.items():
        h = _decode_histogram(a.latency, SIGNIFICANT_FIGURES)
        every.add(h)
        actions[name] = {
            "calls": a.calls,
            "answered": a.answered,
            "errors": a.errors,
            "rate": round(a.answered / duration, 2),
            "latency_ms": percentiles(h),
        }
        calls += a.calls
        answered += a.answered
        failed += a.errors
    connect = _decode_histogram(report.connects.latency, SIGNIFICANT_FIGURES)
    report.summary = {
        "duration_s": round(duration, 3),
        "all": {
            "calls": calls,
            "answered": answered,
            "errors": failed,
            "rate": round(answered / duration, 2),
            "latency_ms": percentiles(every),
        },
        "actions": actions,
        "connects": {
            "attempts": report.connects.attempts,
            "connected": report.connects.connected,
            "latency_ms": percentiles(connect),
        },
        "errors": sum(report.errors.values()),
    }
    return report


def timeline_histogram(bucket: Bucket) -> HdrHistogram:
    return _decode_histogram(bucket.latency, TIMELINE_SIGNIFICANT_FIGURES)


def action_histogram(action: ActionReport) -> HdrHistogram:
    return _decode_histogram(action.latency, SIGNIFICANT_FIGURES)


def connect_histogram(report: Report) -> HdrHistogram:
    return _decode_histogram(report.connects.latency, SIGNIFICANT_FIGURES)


def all_calls_histogram(report: Report) -> HdrHistogram:
    every = histogram()
    for a in report.actions.values():
        every.add(action_histogram(a))
    return every
