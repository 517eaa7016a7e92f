"""``csms up``: the whole system on one machine, for development and demos (``make run``).

Starts, as separate processes: a local Apache Kafka node (unless ``--kafka`` names
a cluster; see ``csms broker``), the topics, the gateway, every worker registered in the
``csms.workers`` entry-point group (``csms worker NAME``), and the alerts notifier
(``csms alerts notify``) when ``CSMS_ALERTS_ALERTMANAGER_URL`` or
``CSMS_ALERTS_WEBHOOKS`` says where to deliver. Ctrl-C or SIGTERM
stops them together, in reverse order: the gateway drains first, the broker
goes last.

A worker that exits is started again (:class:`Restarts` says when), as a
static member of its group under the same instance name, so it takes its
partitions back without waiting for the group to notice the dead one; its
replies wait meanwhile (the gateway answers calls past their deadline
itself). A worker that keeps failing at once, or the gateway exiting, stops
everything and ``csms up`` exits 1.

By default it accepts unknown stations and unknown id tokens (development mode,
said in the banner); ``--auth basic`` requires stations registered with
``csms stations add`` and id tokens with ``csms id-tokens add``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path

from contracts.bus.admin import TopicSettings, create_topics
from contracts.bus.broker import BrokerError, LocalKafka
from contracts.cli import Command
from contracts.settings import KafkaSettings, environment, load

__all__ = ["command"]

WORKERS_GROUP = "csms.workers"


class Restarts:
    """When to start an exited worker again: with a back-off, and not forever if it fails at once.

    A run shorter than ``steady`` seconds counts as a failure at once; after
    ``limit`` of them in a row :meth:`exited` returns None (give up). The delay
    doubles from ``first`` up to ``longest`` with each failure in a row; a run
    of ``steady`` seconds or more starts the count again.
    """

    def __init__(
        self, *, first: float = 1.0, longest: float = 30.0, steady: float = 60.0, limit: int = 5
    ) -> None:
        self.first, self.longest, self.steady, self.limit = first, longest, steady, limit
        self.in_a_row = 0

    def exited(self, ran_for: float) -> float | None:
        """The seconds to wait before the next start, or None to give up."""
        self.in_a_row = 1 if ran_for >= self.steady else self.in_a_row + 1
        if self.in_a_row > self.limit:
            return None
        return float(min(self.first * 2 ** (self.in_a_row - 1), self.longest))


class _Service:
    """One process of ``csms up``: how to start it, the one running, its restarts."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.name, self.argv, self.port, self.env = name, argv, port, env
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restarts = Restarts()
        self.restart_at: float | None = None  # exited: when to start it again

    def start(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        return self.process


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=9000, help="OCPP websocket port (default 9000)")
    parser.add_argument(
        "--status-port",
        type=int,
        default=9100,
        help="gateway status port (default 9100); workers get the next ports",
    )
    parser.add_argument(
        "--broker-port", type=int, default=9092, help="local Kafka's port (default 9092)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the local Kafka's data in DIR across runs (default: a temporary folder)",
    )
    parser.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="use this Kafka cluster instead of a local node"
    )
    parser.add_argument(
        "--auth",
        choices=["none", "basic"],
        default="none",
        help="none (default): accept unknown stations; basic: only registered stations",
    )
    parser.add_argument(
        "--partitions", type=int, default=6, help="partitions of the topics it creates (default 6)"
    )


def _csms() -> str:
    return str(Path(sys.executable).with_name("csms"))


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


def _stop(services: list[_Service], timeout: float = 30.0) -> None:
    for service in reversed(services):
        process = service.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _run(args: argparse.Namespace) -> int:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    broker: LocalKafka | None = None
    if args.kafka:
        kafka = load(KafkaSettings, bootstrap=args.kafka)  # with the CSMS_KAFKA_* of the shell
    else:
        try:
            data_dir = Path(args.data_dir) if args.data_dir else None
            broker = LocalKafka(args.broker_port, data_dir=data_dir).start()
        except BrokerError as exc:
            print(f"csms up: {exc}", file=sys.stderr)
            return 1
        kafka = broker.kafka_settings()
    services: list[_Service] = []
    try:
        asyncio.run(create_topics(TopicSettings(kafka=kafka, partitions=args.partitions)))
        env = dict(os.environ)
        env.update(
            {
                **environment(kafka, complete=True),  # not what the shell says for another broker
                "CSMS_ALLOW_UNKNOWN_STATIONS": "true" if args.auth == "none" else "false",
                # development mode accepts unknown id tokens too (sessions worker)
                "CSMS_ALLOW_UNKNOWN_ID_TOKENS": "true" if args.auth == "none" else "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        gateway = [_csms(), "gateway", "--port", str(args.port)]
        gateway += ["--status-port", str(args.status_port)]
        services.append(_Service("gateway", gateway, args.status_port, env))
        for offset, name in enumerate(sorted(ep.name for ep in entry_points(group=WORKERS_GROUP))):
            port = args.status_port + 1 + offset
            worker_env = env | {
                # the same member of the group across restarts: its partitions come back at once
                "CSMS_INSTANCE": f"up-{name}",
                "CSMS_WORKER_STATIC_MEMBERSHIP": "true",
            }
            argv = [_csms(), "worker", name, "--status-port", str(port)]
            services.append(_Service(f"worker {name}", argv, port, worker_env))
        if env.get("CSMS_ALERTS_ALERTMANAGER_URL") or env.get("CSMS_ALERTS_WEBHOOKS"):
            port = args.status_port + len(services)  # the port after the last worker's
            argv = [_csms(), "alerts", "notify", "--status-port", str(port)]
            services.append(_Service("alerts notify", argv, port, env | {"CSMS_INSTANCE": "up"}))
        for service in services:
            service.start()
        for service in services:
            assert service.process is not None
            if not _wait_ready(f"http://127.0.0.1:{service.port}/readyz", service.process, 60):
                print(f"csms up: {service.name} did not become ready", file=sys.stderr)
                return 1
        print(
            "\n"
            f"csms up: connect chargers to ws://127.0.0.1:{args.port}/ocpp/<station id>\n"
            "         OCPP 1.6J, 2.0.1 and 2.1 on the same port\n"
            + (
                "         accepting UNKNOWN stations and id tokens (development mode; --auth basic "
                "requires 'csms stations add' and 'csms id-tokens add')\n"
                if args.auth == "none"
                else "         only stations registered with 'csms stations add' are accepted\n"
            )
            + f"         Kafka: {kafka.bootstrap}"
            + (
                " (local Apache Kafka, "
                + ("temporary storage)" if not args.data_dir else f"data in {args.data_dir})")
                if broker is not None
                else ""
            )
            + "\n"
            f"         status: http://127.0.0.1:{args.status_port}/metrics, /healthz, /readyz\n"
            f"         watch events: csms tail ocpp.events.v1 --bootstrap {kafka.bootstrap}\n"
            "         running: "
            + ", ".join(service.name for service in services)
            + " (Ctrl-C stops all)\n",
            flush=True,
        )
        while not stopping:
            for service in services:
                if not _supervise(service):
                    return 1
            time.sleep(0.2)
        print("csms up: stopping", flush=True)
        return 0
    finally:
        _stop(services)
        if broker is not None:
            broker.stop()


def _supervise(service: _Service) -> bool:
    """Start an exited worker again when its back-off is over; False: stop everything."""
    process = service.process
    assert process is not None
    now = time.monotonic()
    if service.restart_at is not None:
        if now >= service.restart_at:
            service.start()
            print(f"csms up: {service.name} started again", file=sys.stderr, flush=True)
        return True
    if process.poll() is None:
        return True
    delay = None if service.name == "gateway" else service.restarts.exited(now - service.started_at)
    if delay is None:
        print(
            f"csms up: {service.name} exited with {process.returncode}"
            + ("" if service.name == "gateway" else f" ({service.restarts.in_a_row - 1} in a row)")
            + "; stopping",
            file=sys.stderr,
        )
        return False
    print(
        f"csms up: {service.name} exited with {process.returncode}; starting it again in "
        f"{delay:g} s",
        file=sys.stderr,
        flush=True,
    )
    service.restart_at = now + delay
    return True


command = Command(
    help="run the whole system locally: Apache Kafka, topics, gateway, workers",
    configure=_configure,
    run=_run,
)
