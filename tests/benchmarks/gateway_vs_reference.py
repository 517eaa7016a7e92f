"""csms against the obvious alternative and against the transport's ceiling, side by side.

    .venv/bin/python -m tests.benchmarks.gateway_vs_reference [--rounds 3] [--rate 1000]
        [--stations 300] [--window 10] [--profile 15] [--json out.json]

The same open-loop load (OCPP 1.6; 40 % MeterValues with four sampled values,
40 % Heartbeat, 20 % StatusNotification; Poisson arrivals over ``--stations``
connections) goes to four servers, each in its own processes, started once:

- **csms**: ``csms gateway`` (default settings) on one Apache Kafka node
  (``LocalKafka``): decode, validate, publish to ``ocpp.events.v1``, answer
  after Kafka's ack. This load sends nothing through its consumers; their
  fetches wait 500 ms at the broker;
- **reference**: ``tests/benchmarks/reference_csms.py``, the ``ocpp`` package's
  ``ChargePoint`` with ``@on`` handlers on websockets + uvloop, no Kafka;
- **bare**: ``tests/benchmarks/bare_server.py``, websockets + uvloop answering
  every CALL with a canned CALLRESULT without parsing it;
- **floor**: ``tests/benchmarks/floor_server.py``, the same answers from a
  plain ``asyncio.Protocol`` on uvloop that does the handshake and framing
  itself: what any Python server on this loop pays per call (a wake-up, a
  read, a write).

Two figures each:

1. **CPU per answered call**: utime + stime of every server process, read
   from /proc over a window of ``--window`` seconds that starts 3 s after the
   load (connections and warm-up excluded), divided by the calls answered in
   that window (from the report's per-second timeline). For csms the gateway
   and the broker are shown separately and summed. Rounds are interleaved in
   a shuffled order and the median is taken, since the machine is shared.
2. **Highest sustained rate with p99 < 50 ms**: the open-loop rate is raised
   (x1.5) until a step fails (p99 over the step's window at or above 50 ms, any
   error, or fewer than 97 % of the offered calls answered), then bisected
   twice between the last pass and the first failure. The load generator
   shares the machine's cores; its own CPU is shown so that a ceiling it
   causes is not mistaken for the server's.

``--variant CSMS_NAME=VALUE[,CSMS_NAME=VALUE...]`` (repeatable) adds a
further ``csms gateway`` on the same broker with those settings, measured in
the same rounds, so that a setting's effect is read as a ratio in one run.
``PYTHONPATH=DIR`` in a variant runs that gateway from another checkout
(``git worktree add /tmp/before HEAD~1``): a change measured against the
code before it, side by side. ``JVM=kafka`` gives that gateway a broker of
its own in the JVM of Kafka's start script (C2 compiler, G1, 1 GiB heap)
instead of LocalKafka's (C1 only, serial collector: quick to start, for the
tests), see ``_support.JVMS``; its C2 compiler needs a minute or two of
load before the broker's figures settle (``--warmup 60``).

The broker's CPU per call is also given by thread (its network threads,
request handlers, KRaft's, the JIT compiler's...); ``--count-requests`` puts
a request counter between the clients and the broker
(``tests/benchmarks/_kafka_requests.py``) and gives the requests per call by
client and API. The counter is a hop more on every request, so batches grow
a little: count in a run of its own.

Finally, with ``--profile N``, py-spy samples the gateway for N seconds under
the same load and the functions with the largest share of its busy time are
listed (self time, then inclusive time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.benchmarks import _support as support

WARM_UP = 3.0  # seconds of load before a measurement window opens


@contextlib.contextmanager
def servers(
    variants: list[str], *, count_requests: bool = False, jvm: str = "local"
) -> Iterator[list[support.Server]]:
    with (
        support.kafka_node(count_requests=count_requests, jvm=jvm) as broker,
        contextlib.ExitStack() as stack,
        support.script_server("reference_csms", "reference") as reference,
        support.script_server("bare_server", "bare") as bare,
        support.script_server("floor_server", "floor") as floor,
    ):
        gateways = []
        for variant in ["", *variants]:
            settings = dict(s.split("=", 1) for s in variant.split(",") if s)
            own = broker
            if "JVM" in settings:  # a broker of its own, in that JVM
                node = support.kafka_node(count_requests=count_requests, jvm=settings.pop("JVM"))
                own = stack.enter_context(node)
            gw = stack.enter_context(support.gateway(own.kafka, **settings))
            assert gw.process is not None
            pids = {"gateway": gw.process.pid, "broker": own.pid}
            name = f"csms {variant}".strip()
            gateways.append(support.Server(name, gw.url(""), pids, stop=gw, broker=own))
        yield [*gateways, reference, bare, floor]


def measure_cpu(
    server: support.Server, stations: int, rate: float, window: float
) -> dict[str, Any]:
    """One round: CPU of each process of ``server`` per call answered in the window.

    For csms also the broker's CPU per call by thread, and with a request
    counter the requests per call by client and API.
    """
    text = support.scenario(stations=stations, rate=rate, duration=WARM_UP + window + 1.5)
    run = support.LoadRun(server.url, text)
    run.sleep_until(WARM_UP)
    before = server.cpu()
    broker_before = server.broker_readings()
    run.sleep_until(WARM_UP + window)
    after = server.cpu()
    broker_after = server.broker_readings()
    report = run.result()
    figures = support.window(report, run.start_at + WARM_UP, run.start_at + WARM_UP + window)
    answered = max(figures["answered"], 1)
    per_call = {role: (after[role] - before[role]) / answered * 1e6 for role in before}
    per_call["total"] = sum(per_call.values())
    result = {
        "per_call_us": per_call,
        "answered": figures["answered"],
        "p99_ms": figures.get("p99"),
        "errors": sum(report.errors.values()),
        "generator_cpu_s": report.generator.cpu_seconds,
    }
    if broker_before is not None and broker_after is not None:
        result |= support.broker_per_call(broker_before, broker_after, answered)
    return result


def step(server: support.Server, stations: int, rate: float, seconds: float) -> dict[str, Any]:
    text = support.scenario(stations=stations, rate=rate, duration=WARM_UP + seconds + 1.0)
    run = support.LoadRun(server.url, text)
    report = run.result()
    figures = support.window(report, run.start_at + WARM_UP, run.start_at + WARM_UP + seconds)
    p99 = figures.get("p99", float("inf"))
    errors = sum(report.errors.values())
    answered_share = figures["answered"] / (rate * seconds)
    passed = p99 < 50.0 and errors == 0 and answered_share >= 0.97
    print(
        f"    {server.name:>9} {rate:8.0f}/s: p99 {p99:8.1f} ms, answered {answered_share:6.1%},"
        f" errors {errors}, generator late {report.generator.max_schedule_lag * 1000:.0f} ms"
        f" -> {'pass' if passed else 'FAIL'}",
        flush=True,
    )
    return {
        "rate": rate,
        "p99_ms": p99,
        "errors": errors,
        "answered_share": answered_share,
        "passed": passed,
        "generator_lag_ms": report.generator.max_schedule_lag * 1000,
    }


def highest_rate(server: support.Server, stations: int, start: float, seconds: float) -> float:
    """The highest open-loop rate whose step passes (see the module docstring)."""
    passed, failed = 0.0, None
    rate = start
    while failed is None:
        if step(server, stations, rate, seconds)["passed"]:
            passed = rate
            rate *= 1.5
            if rate > 100_000:
                break
        else:
            failed = rate
    for _ in range(2):
        if failed is None:
            break
        middle = (passed + failed) / 2
        if step(server, stations, middle, seconds)["passed"]:
            passed = middle
        else:
            failed = middle
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds per server (median)")
    parser.add_argument("--rate", type=float, default=1000, help="calls/s of the CPU rounds")
    parser.add_argument("--stations", type=int, default=300, help="connections (stations)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per round")
    parser.add_argument("--step", type=float, default=6.0, help="seconds measured per rate step")
    parser.add_argument("--start-rate", type=float, default=500, help="first rate step")
    parser.add_argument("--repeat", type=int, default=1, help="rate searches per server (median)")
    parser.add_argument("--profile", type=float, default=15, help="py-spy seconds (0: none)")
    parser.add_argument("--skip-rate", action="store_true", help="only the CPU rounds")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load per server before the rounds"
    )
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="clients reach the broker through a request counter (a hop more: a run of its own)",
    )
    parser.add_argument(
        "--jvm", choices=sorted(support.JVMS), default="local", help="the broker's JVM options"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="CSMS_NAME=VALUE|PYTHONPATH=DIR|JVM=kafka[,...]",
        help="a further gateway with these settings or code, measured alongside (repeatable)",
    )
    args = parser.parse_args()
    for variant in args.variant:
        names = [s.split("=", 1)[0] for s in variant.split(",") if "=" in s]
        if len(names) != len(variant.split(",")) or not all(
            name.startswith("CSMS_") or name in ("PYTHONPATH", "JVM") for name in names
        ):
            parser.error(
                f"--variant {variant!r}: expected CSMS_NAME=VALUE, PYTHONPATH=DIR or JVM=NAME, "
                "comma-separated"
            )

    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    with servers(args.variant, count_requests=args.count_requests, jvm=args.jvm) as targets:
        by_name = {s.name: s for s in targets}
        print("warming up", flush=True)
        for server in targets:
            measure_cpu(server, args.stations, args.rate, args.warmup)

        print(f"CPU rounds: {args.rounds} x {args.window:g} s at {args.rate:g} calls/s", flush=True)
        rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in targets}
        for r in range(args.rounds):
            order = random.sample(targets, len(targets))
            for server in order:
                figures = measure_cpu(server, args.stations, args.rate, args.window)
                rounds[server.name].append(figures)
                per_call = ", ".join(f"{k} {v:.1f}" for k, v in figures["per_call_us"].items())
                print(
                    f"  round {r}: {server.name:>9}: {per_call} µs/call, "
                    f"p99 {figures['p99_ms']} ms, errors {figures['errors']}",
                    flush=True,
                )
        cpu = {
            name: {
                role: statistics.median(f["per_call_us"][role] for f in figures)
                for role in figures[0]["per_call_us"]
            }
            for name, figures in rounds.items()
        }
        results["cpu_rounds"] = rounds
        results["cpu_per_call_us"] = cpu
        results["broker_per_call"] = {
            name: {
                key: _medians([f[key] for f in figures])
                for key in ("broker_threads_us_per_call", "requests_per_call_by_api",
                            "requests_per_call")
                if key in figures[0]
            }
            for name, figures in rounds.items()
            if "broker_threads_us_per_call" in figures[0]
        }  # fmt: skip

        if not args.skip_rate:
            print("highest rate with p99 < 50 ms", flush=True)
            rates: dict[str, list[float]] = {s.name: [] for s in targets}
            for _ in range(args.repeat):
                for server in random.sample(targets, len(targets)):
                    rates[server.name].append(
                        highest_rate(server, args.stations, args.start_rate, args.step)
                    )
            results["highest_rate"] = {n: statistics.median(v) for n, v in rates.items()}
            results["highest_rate_runs"] = rates

        if args.profile:
            csms = by_name["csms"]
            print(
                f"profiling the gateway for {args.profile:g} s at {args.rate:g} calls/s", flush=True
            )
            text = support.scenario(stations=args.stations, rate=args.rate,
                                    duration=WARM_UP + args.profile + 3)  # fmt: skip
            run = support.LoadRun(csms.url, text)
            run.sleep_until(WARM_UP)
            results["profile"] = support.profile(csms.pids["gateway"], args.profile / 2)
            results["profile_native"] = support.profile(
                csms.pids["gateway"], args.profile / 2, rate=100, native=True
            )
            run.result()

    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def _medians(tables: list[dict[str, float]]) -> dict[str, float]:
    """Key by key, the median over the rounds (a key missing from a round counts as 0)."""
    keys = {key: None for table in tables for key in table}
    return {key: statistics.median(t.get(key, 0.0) for t in tables) for key in keys}


def report(results: dict[str, Any]) -> None:
    cpu = results["cpu_per_call_us"]
    reference = cpu["reference"]["total"]
    bare = cpu["bare"]["total"]
    floor = cpu["floor"]["total"]

    def row(name: str, us: float, *, vs_reference: bool = True) -> list[str]:
        return [
            name,
            f"{us:.1f}",
            f"{reference / us:.1f}x" if vs_reference else "",
            f"{us / bare:.2f}x" if vs_reference else "",
            f"{us / floor:.2f}x" if vs_reference else "",
        ]

    rows = []
    for name in (n for n in cpu if n.startswith("csms")):
        rows += [
            row(f"{name}: gateway process", cpu[name]["gateway"]),
            row(f"{name}: broker process", cpu[name]["broker"], vs_reference=False),
            row(f"{name}: whole system", cpu[name]["total"]),
        ]
    rows += [
        row("reference (ocpp package)", reference),
        row("bare websockets + uvloop", bare),
        row("floor: asyncio protocol + uvloop", floor),
    ]
    headers = ["server", "CPU µs per call", "reference ÷ this", "this ÷ bare", "this ÷ floor"]
    print()
    print(support.table(headers, rows))
    for name, broker in results.get("broker_per_call", {}).items():
        print(f"\n{name}: the broker's CPU per call by thread (µs, medians)")
        top = sorted(broker["broker_threads_us_per_call"].items(), key=lambda item: -item[1])
        print(
            support.table(["broker thread", "µs per call"], [(n, f"{v:.1f}") for n, v in top[:12]])
        )
        if "requests_per_call_by_api" in broker:
            print(support.table(
                ["API", "requests per call"],
                [(n, f"{v:.4f}") for n, v in broker["requests_per_call_by_api"].items()],
            ))  # fmt: skip
            print(support.table(
                ["client and API", "requests per call"],
                [(n, f"{v:.4f}") for n, v in broker["requests_per_call"].items()],
            ))  # fmt: skip
    if "highest_rate" in results:
        rates = results["highest_rate"]
        print()
        print(support.table(
            ["server", "highest rate with p99 < 50 ms (calls/s)", "÷ reference"],
            [[name, f"{rate:.0f}", f"{rate / max(rates['reference'], 1):.1f}x"]
             for name, rate in rates.items()],
        ))  # fmt: skip
    if "profile" in results:
        prof = results["profile"]
        print(f"\ngateway profile: {prof['samples']} samples while busy")
        print(support.table(["function (self)", "% of samples"], prof["self"][:20]))
        print()
        print(support.table(["function (inclusive)", "% of samples"], prof["total"][:30]))
        native = results["profile_native"]
        print(f"\ngateway profile with C frames: {native['samples']} samples, idle included")
        print(support.table(["function (self)", "% of samples"], native["self"][:15]))
    print()
    print(results["machine"])


if __name__ == "__main__":
    main()
