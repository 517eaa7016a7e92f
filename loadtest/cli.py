"""``csms loadtest``: simulate a charging-station fleet against an OCPP endpoint, merge reports.

::

    csms loadtest run ws://HOST:PORT/ocpp/ [--scenario steady] [--stations N] [--slo 'p99<50ms'] ...
    csms loadtest merge parts/*.json [--report merged.json] [--html merged.html] [--slo ...]
    csms loadtest scenarios [--show NAME] [--check FILE]

Exit status: 0 when every SLO passed (or none was given), 1 when one failed,
2 for a mistake in the command, the scenario or an SLO. See docs/loadtest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop

from contracts.cli import Command
from contracts.settings import SettingsError, add_arguments, load
from loadtest import html
from loadtest.builtin import BUILTIN
from loadtest.fleet import Plan
from loadtest.messages import SIMULATED_VERSIONS
from loadtest.processes import ProgressLine, run_plans, split
from loadtest.report import Report, decode_report, encode_report, merge
from loadtest.scenario import ScenarioError, parse_duration
from loadtest.scenario import load as load_scenario
from loadtest.settings import LoadtestSettings
from loadtest.slo import Slo, SloError, evaluate, parse_slo

__all__ = ["command", "read_passwords", "station_range", "summary_table"]


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="loadtest_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="simulate a fleet against an OCPP endpoint")
    run.add_argument(
        "target",
        metavar="URL",
        help="the CSMS's OCPP URL, ws:// or wss://; the station id is appended, "
        "or replaces {station}",
    )
    add_arguments(run, LoadtestSettings)
    _slo_argument(run)
    merge_parser = sub.add_parser("merge", help="merge part reports into one report")
    merge_parser.add_argument("reports", metavar="REPORT", nargs="+", help="part reports (JSON)")
    merge_parser.add_argument(
        "--report", default="loadtest-report.json", help="merged JSON report (default %(default)s)"
    )
    merge_parser.add_argument(
        "--html",
        default="loadtest-report.html",
        help="merged HTML report (default %(default)s; empty: none)",
    )
    _slo_argument(merge_parser)
    scenarios = sub.add_parser("scenarios", help="list, print or check scenarios")
    scenarios.add_argument("--show", metavar="NAME", help="print a built-in scenario's TOML")
    scenarios.add_argument("--check", metavar="FILE", help="check a scenario file and summarise it")


def _slo_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="SLO",
        help="a pass/fail threshold such as 'p99<50ms', 'Heartbeat:p99<20ms', 'errors<0.1%%', "
        "'rate>=1000/s' (repeatable; exit status 1 when one fails)",
    )


def read_passwords(path: str) -> dict[str, str]:
    """Station id -> password from a file of ``id password`` or ``id,password`` lines."""
    passwords = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        station, sep, password = line.replace(",", " ", 1).partition(" ")
        if not sep or not password.strip():
            raise SettingsError(f"{path}:{number}: expected 'station-id password'")
        passwords[station] = password.strip()
    return passwords


def station_range(stations: int, part: int, parts: int) -> tuple[int, int]:
    """(first station number, count) of ``part`` when ``stations`` are split into ``parts``."""
    if parts < 1 or not 0 <= part < parts:
        raise SettingsError(f"--part {part} is not in 0 .. --parts {parts} - 1")
    if stations < parts:
        raise SettingsError(f"{stations} stations cannot be split into {parts} parts")
    base, extra = divmod(stations, parts)
    first = part * base + min(part, extra)
    return first, base + (1 if part < extra else 0)


def _run(args: argparse.Namespace) -> int:
    settings = load(LoadtestSettings, args)
    try:
        slos = [parse_slo(text) for text in args.slo]
        scenario = load_scenario(settings.scenario)
        duration = parse_duration(settings.duration) if settings.duration else None
    except (ScenarioError, SloError, ValueError) as exc:
        print(f"csms loadtest: {exc}", file=sys.stderr)
        return 2
    unsupported = set(scenario.stations.ocpp) - set(SIMULATED_VERSIONS)
    if unsupported:
        print(
            f"csms loadtest: scenario {scenario.name}: OCPP {', '.join(sorted(unsupported))} "
            f"stations are not simulated (only {', '.join(SIMULATED_VERSIONS)})",
            file=sys.stderr,
        )
        return 2
    stations = settings.stations or scenario.stations.count
    part = settings.part or 0
    first, count = station_range(stations, part, settings.parts)
    processes = settings.processes or math.ceil(count / settings.stations_per_process)
    if math.ceil(count / processes) > settings.stations_per_process:
        raise SettingsError(
            f"{count} stations in {processes} process(es) is more than --stations-per-process "
            f"{settings.stations_per_process} each"
        )
    open_files = _raise_open_file_limit()
    if math.ceil(count / processes) + 200 > open_files:
        raise SettingsError(
            f"{math.ceil(count / processes)} stations per process need about as many open files; "
            f"the limit here is {open_files}: use more --processes"
        )
    passwords = read_passwords(settings.password_file) if settings.password_file else {}
    if passwords:
        ids = {settings.station_id.format(n=n) for n in range(first, first + count)}
        passwords = {k: v for k, v in passwords.items() if k in ids}
    start_at = settings.start_at or time.time() + (1.0 if processes == 1 else 3.0)
    plan = Plan(
        target=args.target,
        scenario=_scenario_text(settings.scenario),
        scenario_source=settings.scenario,
        first=first,
        count=count,
        fleet_stations=stations,
        station_id=settings.station_id,
        password=settings.password,
        passwords=passwords,
        duration=duration,
        rate=settings.rate,
        start_at=start_at,
        connect_timeout=settings.connect_timeout,
        reconnect_backoff=settings.reconnect_backoff,
        reconnect_backoff_max=settings.reconnect_backoff_max,
        local_addresses=settings.local_addresses,
        timeline_interval=settings.timeline_interval,
        ca_file=settings.ca_file,
        label=f"part {part}/{settings.parts} process 0/1",
        seed=settings.seed,
    )
    progress = ProgressLine(enabled=settings.progress)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(run_plans(split(plan, processes), progress))
    suffix = str(part)
    return _finish(
        report,
        settings.report.replace("{part}", suffix),
        settings.html.replace("{part}", suffix),
        slos,
    )


def _raise_open_file_limit() -> int:
    """Raise this process's (and so its workers') soft open-file limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _scenario_text(name_or_path: str) -> str:
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    return Path(name_or_path).read_text()


_COLUMNS = ("p50", "p90", "p99", "p99.9", "max")


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def summary_table(report: Report) -> str:
    """The report's figures as a text table (what the command prints at the end)."""
    s = report.summary
    lines = [
        f"{report.scenario} against {report.target}: {report.stations} stations, "
        f"{s['duration_s']} s, {len(report.parts)} process(es)",
        f"{'action':<22}{'calls':>9}{'answered':>10}{'errors':>8}{'per s':>9}"
        f"{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}   (ms)",
    ]
    rows = [*s["actions"].items(), ("all calls", s["all"])]
    for name, a in rows:
        lat = a["latency_ms"]
        cells = "".join(f"{_ms(lat[k]) if k in lat else '-':>9}" for k in _COLUMNS)
        lines.append(
            f"{name:<22}{a['calls']:>9}{a['answered']:>10}{a['errors']:>8}{a['rate']:>9.1f}{cells}"
        )
    c = s["connects"]
    lat = c["latency_ms"]
    lines.append(
        f"connects: {c['connected']}/{c['attempts']} succeeded; p50 {lat.get('p50', '-')} ms,"
        f" p99 {lat.get('p99', '-')} ms, max {lat.get('max', '-')} ms"
    )
    if report.errors:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in report.errors.items()))
    for storm in report.storms:
        back = (
            "not all back" if storm.back_after is None else f"all back after {storm.back_after} s"
        )
        lines.append(
            f"reconnect storm at +{storm.at - report.started_at:.1f} s: "
            f"{storm.stations} stations, {back}"
        )
    g = report.generator
    lines.append(
        f"generator: {g.processes} process(es), {g.cpu_seconds} CPU s, "
        f"peak RSS {g.peak_rss_kib // 1024} MiB, at most {g.max_schedule_lag * 1000:.0f} ms late"
    )
    return "\n".join(lines)


def _finish(report: Report, report_path: str, html_path: str, slos: Sequence[Slo]) -> int:
    verdicts = evaluate(slos, report)
    lines = [v.describe() for v in verdicts]
    Path(report_path).write_bytes(encode_report(report))
    if html_path:
        Path(html_path).write_text(html.render(report, lines))
    print(summary_table(report))
    for line in lines:
        print(line)
    print(f"report: {report_path}" + (f", {html_path}" if html_path else ""))
    return 0 if all(v.passed for v in verdicts) else 1


def _merge(args: argparse.Namespace) -> int:
    try:
        slos = [parse_slo(text) for text in args.slo]
        reports = [decode_report(Path(p).read_bytes(), p) for p in args.reports]
        merged = merge(reports)
    except (SloError, ValueError, OSError) as exc:
        print(f"csms loadtest merge: {exc}", file=sys.stderr)
        return 2
    return _finish(merged, args.report, args.html, slos)


def _scenarios(args: argparse.Namespace) -> int:
    if args.show:
        if args.show not in BUILTIN:
            print(f"csms loadtest: no built-in scenario {args.show!r}", file=sys.stderr)
            return 2
        print(BUILTIN[args.show], end="")
        return 0
    if args.check:
        try:
            scenario = load_scenario(args.check)
        except ScenarioError as exc:
            print(f"csms loadtest: {exc}", file=sys.stderr)
            return 2
        print(f"{args.check}: scenario {scenario.name!r} is valid: {scenario}")
        return 0
    for name in BUILTIN:
        scenario = load_scenario(name)
        print(f"{name:<16} {scenario.description}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.loadtest_command == "run":
        return _run(args)
    if args.loadtest_command == "merge":
        return _merge(args)
    return _scenarios(args)


command = Command(
    help="simulate charging-station fleets against an OCPP endpoint (csms or any CSMS)",
    configure=_configure,
    run=_dispatch,
)
