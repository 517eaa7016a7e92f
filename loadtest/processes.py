"""Running plans: in this process, or split over worker processes whose reports are merged.

One process holds at most ``stations_per_process`` stations (default 15,000:
the open-file limit here is 20,000 per process and each station is one
socket; the margin is for the event loop, logs and the reconnect churn of a
storm, where old sockets linger while new ones open). A run with more
stations, or with ``--processes`` above 1, starts that many worker processes
(``python -m loadtest.processes``, spawned, not forked: nothing of this
process's event loop leaks into them). Each gets a :class:`~loadtest.fleet.Plan`
as JSON, the same ``start_at`` so they start together, prints its progress as
one JSON line a second on stdout, and writes its report to a file; this
process prints the live line for all of them and merges the reports with
:func:`loadtest.report.merge`, the same merge ``csms loadtest merge`` applies
to the parts of a Kubernetes Job.

The garbage collector is tamed the way the gateway tames it
(``contracts.service.GcPolicy``: freeze long-lived objects, raise the
thresholds): a full collection over 20,000 connections would stall the
generator for most of a second and show up as latency that the target never
caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import msgspec
import uvloop
from prometheus_client import CollectorRegistry

from contracts.service.gc_policy import GcPolicy
from contracts.service.metrics import ProcessMetrics
from loadtest.fleet import Fleet, Plan
from loadtest.recorder import Progress
from loadtest.report import Report, decode_report, encode_report, merge

__all__ = ["STOP_SIGNALS", "ProgressLine", "run_plan", "run_plans", "split"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def split(plan: Plan, processes: int) -> list[Plan]:
    """``plan`` cut into ``processes`` plans over consecutive station numbers."""
    processes = max(1, min(processes, plan.count))
    part = plan.label.split(" process ")[0]
    plans = []
    first = plan.first
    for j in range(processes):
        count = plan.count // processes + (1 if j < plan.count % processes else 0)
        plans.append(
            msgspec.structs.replace(
                plan,
                first=first,
                count=count,
                passwords={
                    k: v
                    for k, v in plan.passwords.items()
                    if k in {plan.station_id.format(n=n) for n in range(first, first + count)}
                }
                if plan.passwords
                else {},
                label=f"{part} process {j}/{processes}",
            )
        )
        first += count
    return plans


class ProgressLine:
    """The live line on stderr: once a second, overwritten in place on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self._tty = self.stream.isatty()

    def show(
        self,
        answered: int,
        errors: int,
        connected: int,
        stations: int,
        p99_ms: float,
        lag_s: float,
    ) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        line = (
            f"[{elapsed:5.0f}s] connected {connected}/{stations} · {answered:,} answers/s"
            f" · p99 {p99_ms:.1f} ms · errors {errors}/s · generator late {lag_s * 1000:.0f} ms"
        )
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def _on_stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGINT (Ctrl-C) or SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _gc_policy() -> GcPolicy:
    return GcPolicy(
        ProcessMetrics(CollectorRegistry()),
        thresholds=(50_000, 20, 1000),
        freeze_growth=100_000,
        check_interval=5.0,
    )


async def run_plan(plan: Plan, on_progress: Callable[[Progress, float], None] | None) -> Report:
    """Run one plan on the running loop, with the garbage collector tamed.

    SIGINT (Ctrl-C) and SIGTERM end the run early; the report covers what ran.
    """
    fleet = Fleet(plan, progress=on_progress)
    policy = _gc_policy()
    policy.install()
    maintain = asyncio.get_running_loop().create_task(policy.maintain())
    try:
        with _on_stop_signals(fleet.stop):
            return await fleet.run()
    finally:
        maintain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintain
        policy.uninstall()


async def run_plans(plans: list[Plan], progress: ProgressLine) -> Report:
    """Run the plans in worker processes (or the one plan here) and merge their reports."""
    if len(plans) == 1:

        def show(p: Progress, lag: float) -> None:
            progress.show(p.answered, p.errors, p.connected, p.stations, p.p99_ms, lag)

        report = await run_plan(plans[0], show)
        progress.end()
        return merge([report])

    with tempfile.TemporaryDirectory(prefix="csms-loadtest-") as directory:
        paths = [Path(directory) / f"process-{j}.json" for j in range(len(plans))]
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "loadtest.processes",
                msgspec.json.encode(plan).decode(),
                str(path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
            )
            for plan, path in zip(plans, paths, strict=True)
        ]
        latest: list[dict[str, float]] = [{} for _ in children]

        async def follow(j: int, child: asyncio.subprocess.Process) -> None:
            assert child.stdout is not None
            async for line in child.stdout:
                with contextlib.suppress(msgspec.DecodeError):
                    latest[j] = msgspec.json.decode(line)

        async def show_every_second() -> None:
            while True:
                await asyncio.sleep(1.0)
                figures = [f for f in latest if f]
                if figures:
                    progress.show(
                        int(sum(f["answered"] for f in figures)),
                        int(sum(f["errors"] for f in figures)),
                        int(sum(f["connected"] for f in figures)),
                        sum(p.count for p in plans),
                        max(f["p99_ms"] for f in figures),
                        max(f["lag"] for f in figures),
                    )

        def stop() -> None:  # end every worker early; each still writes its report
            for child in children:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)

        ticker = asyncio.get_running_loop().create_task(show_every_second())
        try:
            with _on_stop_signals(stop):
                await asyncio.gather(*(follow(j, c) for j, c in enumerate(children)))
                codes = [await c.wait() for c in children]
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for child in children:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            progress.end()
        failed = [j for j, code in enumerate(codes) if code != 0]
        if failed:
            raise RuntimeError(f"load-generator process(es) {failed} failed (exit {codes})")
        return merge(decode_report(p.read_bytes(), str(p)) for p in paths)


def _child(plan_json: str, report_path: str) -> int:
    plan = msgspec.json.decode(plan_json, type=Plan)

    def emit(p: Progress, lag: float) -> None:
        line = {
            "answered": p.answered,
            "errors": p.errors,
            "connected": p.connected,
            "p99_ms": p.p99_ms,
            "lag": lag,
        }
        sys.stdout.write(msgspec.json.encode(line).decode() + "\n")
        sys.stdout.flush()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(run_plan(plan, emit))
    Path(report_path).write_bytes(encode_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
