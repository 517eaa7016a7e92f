"""A local Apache Kafka: one KRaft node, or a cluster of three, on loopback.

``csms broker``, ``csms up`` (and so ``make run``) and the test suite run the pinned
Apache Kafka of :mod:`contracts.bus.kafka_dist` through :class:`LocalKafka`: the
nodes are formatted (``kafka.tools.StorageTool``) and started (``kafka.Kafka``) as
child processes, with a small JVM (serial GC, C1 only, 512 MiB heap at most), storage
in a temporary folder unless a data folder is given, and no topic created by
accident (``auto.create.topics.enable=false``). With three nodes the settings are a
production cluster's where they matter: replication factor 3 and
``min.insync.replicas=2`` for every topic, the consumer offsets and the transaction
log included.

:meth:`LocalKafka.start` returns once every broker is registered and unfenced (it
answers Metadata listing all of them) and the group and transaction coordinators are
found, or raises :class:`BrokerError` with the
reason and the node's log. The fault tests use :meth:`KafkaNode.kill`,
:meth:`KafkaNode.freeze`, :meth:`KafkaNode.thaw` and :meth:`KafkaNode.restart`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from contracts.bus import kafka_dist
from contracts.cli import Command
from contracts.settings import KafkaSettings, add_arguments, load, setting

__all__ = [
    "BrokerError",
    "BrokerSettings",
    "KafkaNode",
    "LocalKafka",
    "command",
    "coordinator_found",
    "free_port",
    "registered_brokers",
]

HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
METADATA, FIND_COORDINATOR = 3, 10  # Kafka API keys
GROUP, TRANSACTION = 0, 1  # FindCoordinator key types
JVM_OPTIONS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms64m",
    "-Xmx512m",
    "-Djava.awt.headless=true",
)
_LOG4J = """status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


class BrokerError(RuntimeError):
    """A local Kafka node could not be started; the message says why."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the process that started it dies.

    The nodes run in their own sessions so that a Ctrl-C reaches csms first and they
    are stopped in order; this makes sure none outlives a csms that was killed
    (kill -9, a test runner's timeout).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: no such guarantee
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of a UUID), never starting
    with "-", which the format tool would read as an option (Kafka's Uuid avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _request(port: int, api_key: int, version: int, body: bytes, timeout: float) -> bytes:
    """One request to the broker on ``port`` (client id "csms"); the response after its header.

    Raises OSError (or struct.error) when the broker does not answer.
    """
    request = struct.pack(">hhih", api_key, version, 1, 4) + b"csms" + body
    with socket.create_connection((HOST, port), timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(sock, 4))[0]
        return _read(sock, size)[4:]  # without the correlation id


def registered_brokers(port: int, timeout: float = 2.0) -> set[int]:
    """The node ids a broker lists in its Metadata answer (version 4); empty when it can't answer.

    Kafka lists only registered, unfenced brokers, so this is also the readiness check.
    """
    try:  # no topics, no auto-creation
        body = _request(port, METADATA, 4, struct.pack(">i?", 0, False), timeout)
    except (OSError, struct.error):
        return set()
    # throttle time, then the brokers: node id, host, port, rack
    (count,) = struct.unpack_from(">i", body, 4)
    offset, ids = 8, set()
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", body, offset)
        offset += 6 + host_len + 4
        (rack_len,) = struct.unpack_from(">h", body, offset)
        offset += 2 + max(rack_len, 0)
        ids.add(node_id)
    return ids


def coordinator_found(port: int, key_type: int, timeout: float = 2.0) -> bool:
    """Whether FindCoordinator (version 1) finds a group (0) or transaction (1) coordinator.

    On a fresh cluster the first such request creates ``__consumer_offsets`` or
    ``__transaction_state``; until their leaders are elected the answer is an error.
    """
    try:
        body = _request(
            port, FIND_COORDINATOR, 1, struct.pack(">h4sb", 4, b"csms", key_type), timeout
        )
    except (OSError, struct.error):
        return False
    (error_code,) = struct.unpack_from(">h", body, 4)  # after the throttle time
    return int(error_code) == 0


def _read(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise OSError("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


@dataclasses.dataclass
class KafkaNode:
    """One KRaft process: a broker, a controller, or both (combined)."""

    node_id: int
    roles: tuple[str, ...]
    port: int  # the client listener, 0 for a controller only
    controller_port: int  # 0 for a broker only
    directory: Path
    properties: dict[str, str]
    quiet: bool = True
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def log_path(self) -> Path:
        return self.directory / "node.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties.items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        (self.directory / "log4j2.properties").write_text(_LOG4J)

    @property
    def formatted(self) -> bool:
        return (self.directory / "data" / "meta.properties").exists()

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            kafka_dist.java(),
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.directory / 'logs'}",
            "-cp",
            kafka_dist.classpath(),
            main,
            *args,
        ]

    def format_command(self, cluster_id: str) -> list[str]:
        return self._java(
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(self.config_path),
            "--cluster-id",
            cluster_id,
            "--ignore-formatted",
        )

    def start(self) -> None:
        """Start the process (formatted before); :meth:`LocalKafka.start` waits for it."""
        if self.process is not None and self.process.poll() is None:
            return
        if self._log is None or self._log.closed:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config_path)),
            stdout=self._log if self.quiet else None,
            stderr=subprocess.STDOUT if self.quiet else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crashed node or a lost machine; :meth:`restart` brings it back."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the node holds its connections and answers nothing (a long GC, a hung VM)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL after ``timeout`` seconds."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()

    def restart(self) -> None:
        """Start again with the same ports and data, after :meth:`kill` or :meth:`stop`."""
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class LocalKafka:
    """Apache Kafka on loopback: ``nodes=1`` (combined broker and controller) or 3.

    ``controllers="separate"`` runs three controllers beside three brokers.
    ``port`` is the first broker's client port (0: a free one); the others are free
    ports. ``data_dir`` keeps the storage across runs; by default it is a temporary
    folder removed at :meth:`stop`. A context manager.
    """

    def __init__(
        self,
        port: int = 9092,
        *,
        nodes: Literal[1, 3] = 1,
        controllers: Literal["combined", "separate"] = "combined",
        data_dir: Path | None = None,
        quiet: bool = True,
        startup_timeout: float = 90.0,
        overrides: dict[str, str] | None = None,
    ) -> None:
        if nodes not in (1, 3):
            raise ValueError("a local Kafka has 1 or 3 nodes")
        if controllers == "separate" and nodes != 3:
            raise ValueError("separate controllers need 3 nodes")
        self.size = nodes
        self.controllers = controllers
        self.quiet = quiet
        self.startup_timeout = startup_timeout
        self.overrides = overrides or {}
        self._temporary = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="csms-kafka-")) if data_dir is None else data_dir
        )
        self._first_port = port
        self.nodes: list[KafkaNode] = []

    # ------------------------------------------------------------------ layout

    def _layout(self) -> list[KafkaNode]:
        first = self._first_port or free_port()
        if _port_taken(first):
            raise BrokerError(
                f"port {first} on {HOST} is already in use: another broker or service "
                "listens there (choose another with --port)"
            )
        replicas = min(3, self.size)
        isr = min(2, self.size)
        common = {
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(isr),
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(isr),
            "transaction.state.log.num.partitions": "12",
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": str(isr),
            "group.initial.rebalance.delay.ms": "0",
        }
        specs: list[tuple[int, tuple[str, ...]]]
        if self.controllers == "combined":
            specs = [(i + 1, ("broker", "controller")) for i in range(self.size)]
        else:
            specs = [(i + 1, ("controller",)) for i in range(3)]
            specs += [(i + 4, ("broker",)) for i in range(3)]
        ports: dict[int, tuple[int, int]] = {}
        broker_ports = iter([first])
        for node_id, roles in specs:
            client = (next(broker_ports, 0) or free_port()) if "broker" in roles else 0
            control = free_port() if "controller" in roles else 0
            ports[node_id] = (client, control)
        voters = ",".join(
            f"{node_id}@{HOST}:{control}" for node_id, (_, control) in ports.items() if control
        )
        nodes = []
        for node_id, roles in specs:
            client, control = ports[node_id]
            listeners = []
            if client:
                listeners.append(f"PLAINTEXT://{HOST}:{client}")
            if control:
                listeners.append(f"CONTROLLER://{HOST}:{control}")
            directory = self.data_dir / f"node-{node_id}"
            properties = {
                "process.roles": ",".join(roles),
                "node.id": str(node_id),
                "controller.quorum.voters": voters,
                "listeners": ",".join(listeners),
                "log.dirs": str(directory / "data"),
                **common,
            }
            if client:
                properties["advertised.listeners"] = f"PLAINTEXT://{HOST}:{client}"
            properties.update(self.overrides)
            nodes.append(
                KafkaNode(node_id, roles, client, control, directory, properties, self.quiet)
            )
        return nodes

    # ------------------------------------------------------------------ lifecycle

    @property
    def brokers(self) -> list[KafkaNode]:
        return [node for node in self.nodes if node.is_broker]

    @property
    def port(self) -> int:
        return self.brokers[0].port

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{node.port}" for node in self.brokers)

    def kafka_settings(self) -> KafkaSettings:
        """How csms talks to this cluster: Kafka's defaults, idempotence on."""
        return KafkaSettings(bootstrap=self.bootstrap)

    def start(self) -> LocalKafka:
        """Format (first time only) and start every node; wait until all brokers are ready."""
        try:
            self.nodes = self._layout()
            for node in self.nodes:
                node.write_config()
            self._format()
            for node in self.nodes:
                node.start()
            self.wait_ready(self.startup_timeout)
        except kafka_dist.KafkaNotInstalled as exc:
            self.stop()
            raise BrokerError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _format(self) -> None:
        pending = [node for node in self.nodes if not node.formatted]
        if not pending:
            return
        cluster_id = _cluster_id()
        formats = [
            (
                node,
                subprocess.Popen(
                    node.format_command(cluster_id),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                ),
            )
            for node in pending
        ]
        for node, process in formats:
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise BrokerError(
                    f"formatting node {node.node_id} failed:\n{out.decode(errors='replace')}"
                )

    def wait_ready(self, timeout: float) -> None:
        """Until every broker lists all brokers in Metadata and the group and transaction
        coordinators are found (so consumer groups and idempotent producers work from the
        first request, with no error logged while Kafka creates its internal topics);
        raises :class:`BrokerError`."""
        expected = {node.node_id for node in self.brokers}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise BrokerError(
                        f"node {node.node_id} exited at start with status "
                        f"{node.process.returncode}:\n{node.log_tail()}"
                    )
            if all(registered_brokers(node.port) >= expected for node in self.brokers) and all(
                coordinator_found(self.port, kind) for kind in (GROUP, TRANSACTION)
            ):
                return
            time.sleep(0.1)
        raise BrokerError(
            f"Kafka was not ready within {timeout:.0f} s:\n"
            + "\n".join(node.log_tail(5) for node in self.nodes)
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node and remove temporary storage.

        Nodes with a data folder to keep get SIGTERM (a controlled shutdown; brokers
        first, in parallel, then controllers) and SIGKILL after ``timeout`` seconds.
        Temporary storage is thrown away, so its nodes are killed at once: a controlled
        shutdown of the last nodes of a cluster waits for a quorum that is stopping too.
        """
        if self._temporary:
            for node in self.nodes:
                node.kill()
                node.stop()  # closes its log
        else:
            for group in (self.brokers, [n for n in self.nodes if not n.is_broker]):
                for node in group:  # all of a group at once, then wait for each
                    if node.process is not None and node.process.poll() is None:
                        node.process.send_signal(signal.SIGCONT)
                        node.process.terminate()
                for node in group:
                    node.stop(timeout)
        self.nodes = []
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- csms broker


@dataclasses.dataclass(frozen=True, kw_only=True)
class BrokerSettings:
    port: int = setting(
        9092,
        "Client port of the local Apache Kafka on 127.0.0.1 (the first node's)",
        env="CSMS_BROKER_PORT",
        flag="--port",
    )
    nodes: int = setting(
        1,
        "Nodes of the local Apache Kafka: 1, or 3 (replication factor 3, min.insync.replicas 2)",
        env="CSMS_BROKER_NODES",
        flag="--nodes",
    )
    data_dir: str = setting(
        "",
        "Folder that keeps the local Apache Kafka's data across runs (empty: a temporary "
        "folder, removed at stop)",
        env="CSMS_BROKER_DATA_DIR",
        flag="--data-dir",
    )


def _configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, BrokerSettings)


def local_kafka(settings: BrokerSettings, *, quiet: bool = True) -> LocalKafka:
    """The :class:`LocalKafka` that ``csms broker`` and ``csms up`` run (not started)."""
    if settings.nodes not in (1, 3):
        raise BrokerError(f"--nodes must be 1 or 3, not {settings.nodes}")
    return LocalKafka(
        settings.port,
        nodes=1 if settings.nodes == 1 else 3,
        data_dir=Path(settings.data_dir) if settings.data_dir else None,
        quiet=quiet,
    )


def _run(args: argparse.Namespace) -> int:
    settings = load(BrokerSettings, args)
    started = time.monotonic()
    try:
        kafka = local_kafka(settings, quiet=False).start()
    except BrokerError as exc:
        print(f"csms broker: {exc}", file=sys.stderr)
        return 1
    where = "temporary storage" if not settings.data_dir else f"data in {settings.data_dir}"
    print(
        f"csms broker: Apache Kafka {kafka_dist.KAFKA_VERSION}, {kafka.size} KRaft node(s) on "
        f"{kafka.bootstrap} ({where}), ready in {time.monotonic() - started:.1f} s; "
        f"Ctrl-C stops; point csms at it with CSMS_KAFKA_BOOTSTRAP={kafka.bootstrap}",
        flush=True,
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    exited = None
    while not stopping and exited is None:
        exited = next((node for node in kafka.nodes if not node.alive), None)
        time.sleep(0.2)
    kafka.stop()
    if exited is not None:
        print(f"csms broker: node {exited.node_id} exited", file=sys.stderr)
        return 1
    print("csms broker: stopped", flush=True)
    return 0


command = Command(
    help="run Apache Kafka on loopback (one KRaft node, or three), for development and tests",
    configure=_configure,
    run=_run,
)
