"""``csms broker``: the embedded broker as a user runs it."""

from __future__ import annotations

import signal
import socket

from contracts.bus.broker import EmbeddedBroker, free_port
from contracts.settings import KafkaSettings, load
from tests.support.processes import CsmsProcess, children, pid_alive, run_csms, wait_until


def test_broker_runs_until_sigterm_and_leaves_no_process() -> None:
    port = free_port()
    with CsmsProcess("broker", "--port", str(port)) as broker:
        line = broker.wait_for(rf"Kafka protocol on 127\.0\.0\.1:{port}.*\n")[0]
        # the settings a csms process needs against it, to paste into a shell
        variables = dict(word.split("=", 1) for word in line.split("with ", 1)[1].split())
        assert load(KafkaSettings, env=variables) == EmbeddedBroker(port).kafka_settings()
        assert broker.process is not None
        tansu = children(broker.process.pid)
        assert tansu, "the broker runs as a child process"
        socket.create_connection(("127.0.0.1", port), 1).close()

        broker.signal(signal.SIGTERM)
        assert broker.wait() == 0
        assert "stopped" in broker.output
        assert wait_until(lambda: not any(pid_alive(pid) for pid in tansu))


def test_broker_stops_on_sigint() -> None:
    port = free_port()
    with CsmsProcess("broker", "--port", str(port)) as broker:
        broker.wait_for("Kafka protocol on")
        broker.signal(signal.SIGINT)
        assert broker.wait() == 0


def test_broker_port_taken_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_csms("broker", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_broker_port_from_environment() -> None:
    port = free_port()
    with CsmsProcess("broker", env={"CSMS_BROKER_PORT": str(port)}) as broker:
        broker.wait_for(rf"127\.0\.0\.1:{port}")


def test_embedded_broker_context_manager_picks_a_free_port() -> None:
    with EmbeddedBroker(0) as broker:
        assert broker.port > 0
        socket.create_connection(("127.0.0.1", broker.port), 1).close()
        process = broker.process
    assert process is not None and process.poll() is not None


def test_broker_dies_with_the_process_that_started_it() -> None:
    """A csms killed with SIGKILL (or by a test runner's timeout) leaves no broker behind."""
    import subprocess
    import sys

    script = (
        "import time\n"
        "from contracts.bus.broker import EmbeddedBroker\n"
        "broker = EmbeddedBroker(0).start()\n"
        "print(broker.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    assert pid_alive(broker_pid)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    assert wait_until(lambda: not pid_alive(broker_pid), timeout=10)
