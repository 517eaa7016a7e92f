"""The report as one HTML page with inline SVG charts: no dependency, opens anywhere, mails well.

Charts: latency over time (p50, p99 and max of each timeline interval, on a
logarithmic scale), answered calls and errors per second, connected stations,
and the percentile distribution of each action (the classic HDR plot: the
x axis stretches the tail, 90 %, 99 %, 99.9 %, ... equally spaced). Tables
below them give the figures.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from loadtest.report import Report, action_histogram, timeline_histogram

__all__ = ["render"]

_W: Final = 860
_H: Final = 260
_LEFT: Final = 64
_RIGHT: Final = 16
_TOP: Final = 24
_BOTTOM: Final = 36
_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")

Series = tuple[str, str, Sequence[tuple[float, float]]]  # (name, colour, points)


def _fmt_ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    if value >= 1:
        return f"{value:.3g} ms"
    return f"{value * 1000:.3g} µs"


def _chart(
    title: str,
    series: Sequence[Series],
    *,
    log_y: bool = False,
    x_label: str = "",
    y_format: str = "ms",
    x_ticks: Sequence[tuple[float, str]] | None = None,
    bars: bool = False,
) -> str:
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return f"<h3>{html.escape(title)}</h3><p>(nothing recorded)</p>"
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x1 = x0 + 1
    if log_y:
        floor = max(min(y for y in ys if y > 0) if any(y > 0 for y in ys) else 0.001, 0.001)
        y0 = 10 ** math.floor(math.log10(floor))
        y1 = 10 ** math.ceil(math.log10(max(max(ys), y0 * 10)))
    else:
        y0, y1 = 0.0, max(max(ys), 1.0) * 1.1

    def sx(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * (_W - _LEFT - _RIGHT)

    def sy(y: float) -> float:
        if log_y:
            y = max(y, y0)
            frac = (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0))
        else:
            frac = (y - y0) / (y1 - y0)
        return _H - _BOTTOM - frac * (_H - _TOP - _BOTTOM)

    out = [f'<h3>{html.escape(title)}</h3><svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}">']
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out.append(
        _el("rect", x=_LEFT, y=_TOP, width=plot_w, height=plot_h, fill="#fafafa", stroke="#ccc")
    )
    # y grid
    if log_y:
        ticks = []
        v = y0
        while v <= y1 * 1.0001:
            ticks.append(v)
            v *= 10
    else:
        step = 10 ** math.floor(math.log10(y1 / 4)) if y1 > 0 else 1
        while y1 / step > 8:
            step *= 2
        ticks = [i * step for i in range(int(y1 / step) + 1)]
    for v in ticks:
        y = sy(v)
        label = _fmt_ms(v) if y_format == "ms" else f"{v:g}"
        out.append(_el("line", x1=_LEFT, x2=_W - _RIGHT, y1=y, y2=y, stroke="#e4e4e4"))
        out.append(_el("text", label, x=_LEFT - 6, y=y + 4, text_anchor="end", font_size=11))
    # x ticks
    if x_ticks is None:
        span = x1 - x0
        step = 10 ** math.floor(math.log10(span / 5)) if span > 0 else 1
        while span / step > 10:
            step *= 2
        first = math.ceil(x0 / step) * step
        x_ticks = [(first + i * step, f"{first + i * step:g}") for i in range(int(span / step) + 1)]
    for x, label in x_ticks:
        if x0 <= x <= x1:
            px = sx(x)
            out.append(_el("line", x1=px, x2=px, y1=_TOP, y2=_H - _BOTTOM, stroke="#eee"))
            out.append(
                _el("text", label, x=px, y=_H - _BOTTOM + 14, text_anchor="middle", font_size=11)
            )
    out.append(
        _el("text", x_label, x=(_LEFT + _W) / 2, y=_H - 4, text_anchor="middle", font_size=11)
    )
    # series
    width = max(1.0, plot_w / max(len(points), 1) * 0.8)
    for i, (name, colour, pts) in enumerate(series):
        if bars:
            for x, y in pts:
                height = max(0.0, sy(y0) - sy(y))
                out.append(
                    _el(
                        "rect",
                        x=sx(x) - width / 2,
                        y=sy(y),
                        width=width,
                        height=height,
                        fill=colour,
                        opacity=0.7,
                    )
                )
        else:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(_el("polyline", points=path, fill="none", stroke=colour, stroke_width=1.6))
        out.append(_el("rect", x=_LEFT + 10 + i * 130, y=6, width=10, height=10, fill=colour))
        out.append(_el("text", name, x=_LEFT + 24 + i * 130, y=15, font_size=12))
    out.append("</svg>")
    return "".join(out)


def _el(tag: str, text: str | None = None, **attributes: object) -> str:
    """One SVG element; ``font_size=11`` is written ``font-size="11"``, floats to 0.1."""
    attrs = " ".join(
        f'{name.replace("_", "-")}="{f"{value:.1f}" if isinstance(value, float) else value}"'
        for name, value in attributes.items()
    )
    if text is None:
        return f"<{tag} {attrs}/>"
    return f"<{tag} {attrs}>{html.escape(text)}</{tag}>"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _latency_cells(figures: dict[str, float]) -> list[str]:
    return [
        _fmt_ms(figures[k]) if k in figures else "" for k in ("p50", "p90", "p99", "p99.9", "max")
    ]


def render(report: Report, verdicts: Sequence[str] = ()) -> str:
    """The HTML page of a summarized report; ``verdicts`` are the SLO lines to show."""
    start = report.started_at
    timeline = report.timeline
    p50, p99, top, rate, errors, connected = [], [], [], [], [], []
    for b in timeline:
        t = b.at - start
        h = timeline_histogram(b)
        if h.get_total_count():
            p50.append((t, h.get_value_at_percentile(50) / 1000))
            p99.append((t, h.get_value_at_percentile(99) / 1000))
            top.append((t, h.get_max_value() / 1000))
        rate.append((t, b.answered / report.timeline_interval))
        errors.append((t, b.errors / report.timeline_interval))
        connected.append((t, float(b.connected)))
    parts = [
        _chart(
            "Latency over time (from the scheduled send to the answer)",
            [("p50", _COLOURS[0], p50), ("p99", _COLOURS[1], p99), ("max", "#999", top)],
            log_y=True,
            x_label="seconds since the start",
        ),
        _chart(
            "Answered calls and errors per second",
            [("answered/s", _COLOURS[2], rate), ("errors/s", _COLOURS[1], errors)],
            x_label="seconds since the start",
            y_format="count",
            bars=True,
        ),
        _chart(
            "Connected stations",
            [("connected", _COLOURS[3], connected)],
            x_label="seconds since the start",
            y_format="count",
        ),
    ]
    distribution: list[Series] = []
    for i, (name, action) in enumerate(report.actions.items()):
        h = action_histogram(action)
        if not h.get_total_count():
            continue
        pts = []
        for nines in range(51):  # 0 .. 5 nines in steps of a tenth
            p = 100 * (1 - 10 ** (-nines / 10))
            pts.append((nines / 10, h.get_value_at_percentile(p) / 1000))
        pts.append((5.0, h.get_max_value() / 1000))
        distribution.append((name, _COLOURS[i % len(_COLOURS)], pts))
    parts.append(
        _chart(
            "Latency by percentile",
            distribution,
            log_y=True,
            x_label="percentile",
            x_ticks=[(0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%"), (5, "max")],
        )
    )
    summary = report.summary
    rows = [
        [name, a["calls"], a["answered"], a["errors"], a["rate"], *_latency_cells(a["latency_ms"])]
        for name, a in summary.get("actions", {}).items()
    ]
    every = summary.get("all", {})
    if every:
        rows.append(
            [
                "all calls",
                every["calls"],
                every["answered"],
                every["errors"],
                every["rate"],
                *_latency_cells(every["latency_ms"]),
            ]
        )
    connects = summary.get("connects", {})
    tables = [
        "<h3>Calls</h3>",
        _table(
            [
                "action",
                "calls",
                "answered",
                "errors",
                "answered/s",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "max",
            ],
            rows,
        ),
        "<h3>Connections</h3>",
        _table(
            ["attempts", "connected", "p50", "p90", "p99", "p99.9", "max"],
            [
                [
                    connects.get("attempts", 0),
                    connects.get("connected", 0),
                    *_latency_cells(connects.get("latency_ms", {})),
                ]
            ],
        ),
        "<h3>Errors</h3>",
        _table(["kind", "count"], sorted(report.errors.items()))
        if report.errors
        else "<p>none</p>",
    ]
    if report.storms:
        tables += [
            "<h3>Reconnect storms</h3>",
            _table(
                ["at (s)", "stations", "all back after (s)"],
                [
                    [
                        round(s.at - start, 1),
                        s.stations,
                        "not all" if s.back_after is None else s.back_after,
                    ]
                    for s in report.storms
                ],
            ),
        ]
    if report.commands:
        tables += [
            "<h3>Calls from the CSMS, answered</h3>",
            _table(["action", "count"], sorted(report.commands.items())),
        ]
    g = report.generator
    tables += [
        "<h3>Load generator</h3>",
        _table(
            ["processes", "CPU seconds", "peak RSS (MiB)", "latest scheduled event (ms late)"],
            [
                [
                    g.processes,
                    g.cpu_seconds,
                    round(g.peak_rss_kib / 1024, 1),
                    round(g.max_schedule_lag * 1000, 1),
                ]
            ],
        ),
    ]
    started = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    verdict_html = "".join(
        f'<li class="{"pass" if v.startswith("PASS") else "fail"}">{html.escape(v)}</li>'
        for v in verdicts
    )
    title = f"csms loadtest: {report.scenario}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 900px; }}
table {{ border-collapse: collapse; margin-bottom: 8px; }}
td, th {{ border: 1px solid #ddd; padding: 3px 8px; text-align: right; font-size: 13px; }}
th {{ background: #f2f2f2; }} td:first-child {{ text-align: left; }}
.pass {{ color: #2a7d2a; }} .fail {{ color: #c62828; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(report.target)} · {report.stations} stations
· {summary.get("duration_s", 0)} s from {started} · {len(report.parts)} process(es)</p>
<ul>{verdict_html}</ul>
{"".join(parts)}
{"".join(tables)}
</body></html>
"""
