"""What csms's idle processes cost an idle Apache Kafka broker, beside a bare one and one consumer.

    .venv/bin/python -m tests.benchmarks.idle [--seconds 30] [--jvm local|kafka]
        [--variant CSMS_NAME=VALUE|PYTHONPATH=DIR[,...] ...] [--json out.json]

Side by side, each on a Kafka node of its own, all measured over the same
window (% of a core from /proc, utime + stime):

- **bare broker**: a node with the csms topics and no client;
- **one consumer**: the same with one plain aiokafka consumer in a process of
  its own (a consumer group, every partition of ``ocpp.events.v1``, aiokafka's
  defaults: fetches wait 500 ms at the broker, heartbeats every 3 s), the
  smallest thing that keeps a broker busy;
- **csms**: ``csms gateway`` and every worker (``csms worker NAME``) with the
  default settings (what ``csms up --kafka`` runs), no station connected: everything
  they do is background work (their consumers' fetches, group heartbeats,
  the gateway's Kafka probe and peer checks);
- one more csms setup per ``--variant``, with those settings or that
  checkout's code (``PYTHONPATH=DIR``): a change measured against the code
  before it.

Every client reaches its broker through a request counter
(``tests/benchmarks/_kafka_requests.py``), so the table also gives each
setup's requests per second by API and by client, and the broker's CPU by
thread. At a given call rate an idle cost is spread over the calls: 1 % of a
core is 10 µs per call at 1,000 calls/s.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

from tests.benchmarks import _support as support
from tests.benchmarks._kafka_requests import thread_groups
from tests.workers.processes import WorkerProcess
from workers.cli import WORKERS_GROUP

SETTLE = 10.0  # seconds after start-up before the window opens (the worker joins its group)

# the plain consumer of the baseline: aiokafka's defaults, a group, every partition of the events
PLAIN_CONSUMER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer
async def main():
    consumer = AIOKafkaConsumer("ocpp.events.v1", bootstrap_servers=sys.argv[1],
                                group_id="idle-baseline", client_id="plain-consumer")
    await consumer.start()
    print("started", flush=True)
    while True:
        await consumer.getmany(timeout_ms=1000)
asyncio.run(main())
"""


@dataclasses.dataclass
class Setup:
    name: str
    broker: support.Broker
    clients: dict[str, int]  # process -> pid


@contextlib.contextmanager
def plain_consumer(bootstrap: str) -> Iterator[int]:
    with support.child("-c", PLAIN_CONSUMER, bootstrap) as (pid, line):
        if line.strip() != "started":
            raise RuntimeError(f"the plain consumer did not start: {line!r}")
        yield pid


@contextlib.contextmanager
def csms(broker: support.Broker, settings: dict[str, str]) -> Iterator[dict[str, int]]:
    """``csms gateway`` and every ``csms worker NAME`` as ``csms up`` runs them (defaults)."""
    worker_env = {
        # the production defaults, not the test helper's short group timeouts
        "CSMS_WORKER_SESSION_TIMEOUT": "10",
        "CSMS_WORKER_HEARTBEAT_INTERVAL": "3",
        "CSMS_WORKER_CHECKPOINT_INTERVAL": "1",
    } | settings
    names = sorted(ep.name for ep in entry_points(group=WORKERS_GROUP))
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(support.gateway(broker.kafka, **settings))
        workers = {
            name: stack.enter_context(
                WorkerProcess(broker.kafka, group=f"csms-{name}", worker=name, **worker_env)
            )
            for name in names
        }
        for worker in workers.values():
            worker.wait_assigned(timeout=60)
        assert gateway.process is not None
        pids = {"gateway": gateway.process.pid}
        for name, worker in workers.items():
            assert worker.process is not None
            pids[f"{name} worker"] = worker.process.pid
        yield pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--jvm", choices=sorted(support.JVMS), default="local")
    parser.add_argument("--variant", action="append", default=[], metavar="CSMS_NAME=VALUE,...")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    setups: list[Setup] = []
    with contextlib.ExitStack() as stack:

        def node() -> support.Broker:
            return stack.enter_context(support.kafka_node(count_requests=True, jvm=args.jvm))

        setups.append(Setup("bare broker", node(), {}))
        first = node()
        pid = stack.enter_context(plain_consumer(first.kafka.bootstrap))
        setups.append(Setup("one aiokafka consumer", first, {"consumer": pid}))
        for variant in ["", *args.variant]:
            settings = dict(s.split("=", 1) for s in variant.split(",") if s)
            broker = node()
            clients = stack.enter_context(csms(broker, settings))
            setups.append(Setup(f"csms {variant}".strip(), broker, clients))
        time.sleep(SETTLE)
        before = snapshot(setups)
        time.sleep(args.seconds)
        after = snapshot(setups)
    report(setups, before, after, args.seconds, results)
    support.finish(
        results["rows"], results, args.json, headers=("setup", "process", "% of a core, idle")
    )


def snapshot(setups: list[Setup]) -> dict[str, Any]:
    return {
        setup.name: {
            "broker": support.cpu_seconds(setup.broker.pid),
            "threads": setup.broker.threads(),
            "clients": {name: support.cpu_seconds(pid) for name, pid in setup.clients.items()},
            "requests": setup.broker.requests.snapshot() if setup.broker.requests else {},
        }
        for setup in setups
    }


def report(
    setups: list[Setup],
    before: dict[str, Any],
    after: dict[str, Any],
    seconds: float,
    results: dict[str, Any],
) -> None:
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    bare = None
    for setup in setups:
        b, a = before[setup.name], after[setup.name]
        broker = 100 * (a["broker"] - b["broker"]) / seconds
        bare = broker if bare is None else bare
        clients = {
            name: 100 * (a["clients"][name] - b["clients"][name]) / seconds for name in a["clients"]
        }
        requests = collections.Counter(a["requests"])
        requests.subtract(b["requests"])
        by_api: collections.Counter[str] = collections.Counter()
        for (_, api), count in requests.items():
            by_api[api] += count
        threads = {
            name: round(100 * spent / seconds, 2)
            for name, spent in thread_groups(b["threads"], a["threads"]).items()
            if spent > 0
        }
        figures[setup.name] = {
            "broker_percent": broker,
            "broker_over_bare_percent": broker - bare,
            "clients_percent": clients,
            "requests_per_s": {
                f"{client} {api}": round(count / seconds, 2)
                for (client, api), count in sorted(requests.items())
                if count
            },
            "requests_per_s_by_api": {
                api: round(count / seconds, 2) for api, count in by_api.most_common() if count
            },
            "broker_threads_percent": threads,
        }
        total_requests = sum(by_api.values()) / seconds
        rows.append([setup.name, "broker", f"{broker:.2f}"])
        if setup is not setups[0]:
            rows.append(["", "broker above the bare one", f"{broker - bare:.2f}"])
        for name, share in clients.items():
            rows.append(["", name, f"{share:.2f}"])
        apis = ", ".join(
            f"{api} {count / seconds:.1f}"
            for api, count in by_api.most_common()
            if count / seconds >= 0.05  # not the start-up's
        )
        rows.append(["", f"requests/s: {total_requests:.1f} ({apis or 'none'})", ""])
    results["setups"] = figures
    results["rows"] = rows
    for name, setup_figures in figures.items():
        print(f"\n{name}: requests per second by client and API")
        for key, rate in setup_figures["requests_per_s"].items():
            print(f"  {rate:7.2f}  {key}")
        top = list(setup_figures["broker_threads_percent"].items())[:8]
        print("  broker threads (% of a core): " + ", ".join(f"{n} {v}" for n, v in top))
    print()


if __name__ == "__main__":
    main()
