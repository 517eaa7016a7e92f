"""What the load benchmarks share: the servers under test, the harness as a process, /proc readings.

Every server and every load generator is its own process, so that the CPU
time read from ``/proc/PID/stat`` (utime + stime) before and after a window is
the server's alone. The load generator is ``csms loadtest run``, the same
command a user runs; its JSON report carries per-second timeline buckets with
wall-clock times, so a benchmark can count exactly the calls answered inside a
measurement window that excludes connecting and warming up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from contracts.bus import broker as broker_module
from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import LocalKafka
from loadtest.report import Report, decode_report, histogram, timeline_histogram
from tests.benchmarks._kafka_requests import (
    RequestCounter,
    java_thread_names,
    thread_cpu,
    thread_groups,
)
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CSMS, csms_env

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` line of /proc/PID/status: VmRSS (now), VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False,
        cwd=Path(__file__).parent,
    ).stdout.strip()  # fmt: skip
    return {
        "commit": commit or "unknown",
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
    }


# --------------------------------------------------------------------------- servers


@dataclasses.dataclass
class Server:
    """A server under test: its URL for stations and its processes by role."""

    name: str
    url: str
    pids: dict[str, int]
    stop: Any = None
    broker: Broker | None = None

    def cpu(self) -> dict[str, float]:
        return {role: cpu_seconds(pid) for role, pid in self.pids.items()}

    def broker_readings(self) -> BrokerReadings | None:
        """The broker's threads' CPU and the requests counted so far (None: no broker)."""
        if self.broker is None:
            return None
        counter = self.broker.requests
        return BrokerReadings(
            self.broker.threads(), counter.snapshot() if counter else collections.Counter()
        )


@dataclasses.dataclass
class BrokerReadings:
    threads: dict[int, tuple[str, float]]
    requests: collections.Counter[tuple[str, str]]


def broker_per_call(before: BrokerReadings, after: BrokerReadings, calls: int) -> dict[str, Any]:
    """The broker's CPU µs per call by thread, and requests per call by client and by API."""
    threads = {
        name: round(spent / calls * 1e6, 2)
        for name, spent in thread_groups(before.threads, after.threads).items()
        if spent > 0
    }
    requests = after.requests.copy()
    requests.subtract(before.requests)
    by_api: collections.Counter[str] = collections.Counter()
    for (_, api), count in requests.items():
        by_api[api] += count
    figures: dict[str, Any] = {"broker_threads_us_per_call": threads}
    if by_api:
        figures["requests_per_call"] = {
            f"{client} {api}": round(count / calls, 4)
            for (client, api), count in sorted(requests.items())
            if count
        }
        figures["requests_per_call_by_api"] = {
            api: round(count / calls, 4) for api, count in by_api.most_common() if count
        }
    return figures


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# How the JVM of a benchmark's broker runs: LocalKafka's (tests, ``csms up``: C1 only,
# serial GC, small heap; quick to start) or Kafka's own start script's (C2, G1, 1 GiB).
JVMS = {
    "local": broker_module.JVM_OPTIONS,
    "kafka": (
        "-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
    ),
}  # fmt: skip


@dataclasses.dataclass
class Broker:
    """A benchmark's Kafka node: its settings, its pid, and its request counter if any."""

    kafka: KafkaUnderTest
    pid: int
    requests: RequestCounter | None = None
    thread_names: dict[int, str] = dataclasses.field(default_factory=dict)

    def threads(self) -> dict[int, tuple[str, float]]:
        """Each of the node's threads: its Java name and CPU seconds (:func:`thread_cpu`)."""
        return thread_cpu(self.pid, self.thread_names)


@contextlib.contextmanager
def kafka_node(*, count_requests: bool = False, jvm: str = "local") -> Iterator[Broker]:
    """A local Apache Kafka node with every csms topic (4 partitions).

    ``count_requests``: every client reaches it through a :class:`RequestCounter`
    (the node advertises the counter's port). ``jvm``: a key of :data:`JVMS`.
    While it runs, SIGTERM unwinds the benchmark like Ctrl-C does, so that the
    servers it started are stopped rather than left running.
    """
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    with contextlib.ExitStack() as stack:
        stack.callback(signal.signal, signal.SIGTERM, previous)
        counter = stack.enter_context(RequestCounter()) if count_requests else None
        overrides = {}
        if counter is not None:
            overrides["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{counter.port}"
        local = LocalKafka(0, overrides=overrides)
        with mock.patch.object(broker_module, "JVM_OPTIONS", JVMS[jvm]):
            stack.enter_context(local)
        (node,) = local.nodes
        assert node.process is not None
        settings = local.kafka_settings()
        if counter is not None:
            counter.target(node.port)
            settings = dataclasses.replace(settings, bootstrap=f"127.0.0.1:{counter.port}")
        kafka = KafkaUnderTest("local", settings)
        asyncio.run(create_topics(TopicSettings(kafka=kafka.settings, partitions=4)))
        pid = node.process.pid
        yield Broker(kafka, pid, counter, java_thread_names(pid))


@contextlib.contextmanager
def broker() -> Iterator[tuple[KafkaUnderTest, int]]:
    """A local Apache Kafka node with every csms topic, and the node's pid (:func:`kafka_node`)."""
    with kafka_node() as node:
        yield node.kafka, node.pid


@contextlib.contextmanager
def gateway(kafka: KafkaUnderTest, *args: str, **env: str) -> Iterator[GatewayProcess]:
    """``csms gateway`` (on free ports unless ``args`` say otherwise), accepting any station,
    with no handshake limit per address (every simulated station comes from loopback)."""
    environment = {"CSMS_HANDSHAKE_RATE": "0"} | env  # logs at INFO, the production default
    with GatewayProcess(kafka, *args, env=environment) as process:
        yield process


@contextlib.contextmanager
def child(*args: str) -> Iterator[tuple[int, str]]:
    """``python ARGS`` from the repository's root: its pid and the first line it prints.

    SIGTERM at the end (SIGKILL 10 s later).
    """
    process = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None
        yield process.pid, process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def script_server(module: str, name: str) -> Iterator[Server]:
    """``python -m tests.benchmarks.<module>``: prints ``listening on PORT``."""
    with child("-m", f"tests.benchmarks.{module}") as (pid, line):
        match = re.match(r"listening on (\d+)", line)
        if match is None:
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield Server(name, f"ws://127.0.0.1:{match[1]}/ocpp/", {"server": pid})


def metrics(status_port: int) -> dict[str, float]:
    """Every sample of a /metrics page by name (labels included); empty if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


# --------------------------------------------------------------------------- the harness


def scenario(
    *,
    stations: int,
    rate: float = 0.0,
    duration: float,
    connect_rate: float = 0.0,
    heartbeat: float | None = None,
    boot: bool = False,
    mix: str = "{ MeterValues = 4, Heartbeat = 4, StatusNotification = 2 }",
    call_timeout: float = 10.0,
    extra: str = "",
) -> str:
    text = f"""
name = "benchmark"
duration = {duration}
call_timeout = {call_timeout}
[stations]
count = {stations}
ocpp = {{ "1.6" = 1 }}
connect_rate = {connect_rate}
boot = {"true" if boot else "false"}
"""
    if heartbeat:
        text += f"[heartbeat]\ninterval = {heartbeat}\n"
    if rate:
        text += f'[calls]\nrate = {rate}\narrival = "poisson"\nmix = {mix}\nsampled_values = 4\n'
    return text + extra


class LoadRun:
    """``csms loadtest run`` in its own process (or processes), started at a known wall time."""

    def __init__(
        self,
        url: str,
        scenario_text: str,
        *,
        start_in: float = 2.0,
        args: Sequence[str] = (),
    ) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="csms-bench-")
        path = Path(self.directory.name)
        (path / "scenario.toml").write_text(scenario_text)
        self.report_path = path / "report.json"
        # whole seconds, so that the timeline's one-second buckets start at the window's edges
        self.start_at = float(int(time.time() + start_in) + 1)
        self.log = open(path / "log.txt", "w+b")  # noqa: SIM115 - closed in result()
        self.process = subprocess.Popen(
            [
                *CSMS, "loadtest", "run", url, "--scenario", str(path / "scenario.toml"),
                "--start-at", str(self.start_at), "--report", str(self.report_path),
                "--html", "", "--no-progress", *args,
            ],
            env=csms_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def sleep_until(self, offset: float) -> None:
        """Sleep until ``offset`` seconds after the run's start."""
        time.sleep(max(0.0, self.start_at + offset - time.time()))

    def stop(self) -> None:
        """End the run now; the harness still writes its report (SIGTERM)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def result(self, timeout: float = 900) -> Report:
        self.process.wait(timeout)
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        self.log.close()
        try:
            if not self.report_path.exists():
                raise RuntimeError(f"csms loadtest wrote no report:\n{output}")
            return decode_report(self.report_path.read_bytes())
        finally:
            self.directory.cleanup()


def window(report: Report, start: float, end: float) -> dict[str, Any]:
    """Answers, errors and latency percentiles (ms) of the timeline buckets in [start, end)."""
    h = histogram(2)
    answered = errors = 0
    for bucket in report.timeline:
        if start <= bucket.at < end:
            answered += bucket.answered
            errors += bucket.errors
            h.add(timeline_histogram(bucket))
    figures: dict[str, Any] = {
        "answered": answered,
        "errors": errors,
        "rate": answered / (end - start),
    }
    if h.get_total_count():
        for name, p in (("p50", 50), ("p99", 99), ("p99.9", 99.9)):
            figures[name] = h.get_value_at_percentile(p) / 1000
        figures["max"] = h.get_max_value() / 1000
    return figures


def timeline(report: Report) -> list[tuple[float, int, int, int]]:
    """(seconds since the start, stations connected, answers, errors) per timeline bucket."""
    return [
        (round(b.at - report.started_at, 1), b.connected, b.answered, b.errors)
        for b in report.timeline
    ]


# --------------------------------------------------------------------------- profiles


def profile(pid: int, seconds: float, rate: int = 250, *, native: bool = False) -> dict[str, Any]:
    """py-spy's samples of ``pid`` for ``seconds``: the functions with the most CPU, self and total.

    Python frames only: ``--nonblocking`` keeps py-spy from pausing the process
    at each sample, and idle samples (the loop waiting in epoll) are left out,
    so the shares are of the time the process was busy; time spent in C
    (uvloop, system calls) shows as the Python frame that called it
    (``Runner.run`` for the loop itself). ``native``: C frames too (system
    calls by name); py-spy must then pause the process for each sample, and
    idle time in ``epoll_pwait`` is counted.
    """
    out = Path(tempfile.mkstemp(prefix="py-spy-", suffix=".txt")[1])
    mode = ["--native"] if native else ["--nonblocking"]
    try:
        subprocess.run(
            [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid),
             "-d", str(int(seconds)), "-r", str(rate), "-f", "raw", "-o", str(out), *mode],
            check=True, capture_output=True, timeout=seconds + 60,
        )  # fmt: skip
        lines = out.read_text().splitlines()
    finally:
        out.unlink(missing_ok=True)
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        leaf = _short(frames[-1])
        own[leaf] = own.get(leaf, 0) + count
        for name in {_short(f) for f in frames}:
            total[name] = total.get(name, 0) + count

    def top(table: dict[str, int], n: int) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda item: -item[1])[:n]
        return [(name, round(100 * count / max(samples, 1), 1)) for name, count in ranked]

    return {"samples": samples, "self": top(own, 25), "total": top(total, 40)}


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``; the line number is dropped."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if match is None:
        return frame
    path = match[2]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match[1]} ({path})"


# --------------------------------------------------------------------------- output


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (what docs/benchmarks.md holds)."""
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def finish(
    rows: Sequence[Sequence[object]],
    results: dict[str, Any],
    path: str | None,
    headers: Sequence[str] = ("figure", "value"),
) -> None:
    """Print the figures and the machine; write everything as JSON to ``path`` if given."""
    print(table(headers, rows))
    print(results["machine"])
    if path:
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
