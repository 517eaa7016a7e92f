"""``csms broker`` and :class:`LocalKafka`: Apache Kafka on loopback as a user runs it."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.bus import broker as broker_module
from contracts.bus import kafka_dist
from contracts.bus.broker import LocalKafka, free_port, registered_brokers
from contracts.settings import KafkaSettings, load
from tests.support.processes import CsmsProcess, children, pid_alive, run_csms, wait_until


def test_broker_runs_until_sigterm_and_leaves_no_process() -> None:
    port = free_port()
    with CsmsProcess("broker", "--port", str(port)) as broker:
        line = broker.wait_for(rf"Apache Kafka {kafka_dist.KAFKA_VERSION}, 1 KRaft.*\n")[0]
        # the bootstrap a csms process needs, to paste into a shell
        variables = dict(word.split("=", 1) for word in line.split("with ", 1)[1].split())
        assert load(KafkaSettings, env=variables).bootstrap == f"127.0.0.1:{port}"
        assert broker.process is not None
        java = children(broker.process.pid)
        assert java, "the node runs as a child process"
        assert registered_brokers(port) == {1}

        broker.signal(signal.SIGTERM)
        assert broker.wait(60) == 0
        assert "stopped" in broker.output
        assert wait_until(lambda: not any(pid_alive(pid) for pid in java))


def test_broker_stops_on_sigint() -> None:
    with CsmsProcess("broker", "--port", str(free_port())) as broker:
        broker.wait_for("KRaft node")
        broker.signal(signal.SIGINT)
        assert broker.wait(60) == 0


def test_broker_port_taken_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_csms("broker", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_broker_nodes_other_than_one_or_three_is_a_clear_error() -> None:
    result = run_csms("broker", "--nodes", "2")
    assert result.returncode == 1
    assert "--nodes must be 1 or 3, not 2" in result.stderr


def test_data_dir_keeps_topics_across_runs(tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path)) / "kafka"
    with LocalKafka(0, data_dir=data) as kafka:
        result = run_csms("topics", "create", "--bootstrap", kafka.bootstrap)
        assert result.returncode == 0, result.stderr
    assert data.exists(), "a given data folder is kept at stop"
    with LocalKafka(0, data_dir=data) as kafka:
        listed = run_csms("topics", "list", "--bootstrap", kafka.bootstrap)
    assert "ocpp.events.v1" in listed.stdout.split()


def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    async def describe() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
        finally:
            await admin.close()
        (resource,) = response.resources
        return {entry[0]: entry[1] for entry in resource[4]}

    return asyncio.run(describe())


@pytest.mark.parametrize("controllers", ["combined", "separate"])
def test_three_nodes_start_with_production_replication(controllers: str) -> None:
    with LocalKafka(0, nodes=3, controllers=controllers) as kafka:  # type: ignore[arg-type]
        assert len(kafka.brokers) == 3
        assert len(kafka.nodes) == (3 if controllers == "combined" else 6)
        ids = {node.node_id for node in kafka.brokers}
        assert all(registered_brokers(node.port) == ids for node in kafka.brokers)
        created = run_csms(
            "topics", "create", "--bootstrap", kafka.bootstrap, "--replication-factor", "3"
        )
        assert created.returncode == 0, created.stderr
        config = _topic_config(kafka.bootstrap, "ocpp.events.v1")
    assert config["min.insync.replicas"] == "2"


def test_local_kafka_picks_free_ports_and_stops_its_processes() -> None:
    with LocalKafka(0) as kafka:
        assert kafka.port > 0
        socket.create_connection(("127.0.0.1", kafka.port), 1).close()
        (node,) = kafka.nodes
        process = node.process
        data = kafka.data_dir
        # Kafka's own log reaches the node's log file (which BrokerError quotes)
        assert "Kafka Server started" in node.log_tail()
    assert process is not None and process.poll() is not None
    assert not data.exists(), "temporary storage is removed at stop"


def test_a_killed_node_restarts_with_its_data() -> None:
    with LocalKafka(0) as kafka:
        created = run_csms("topics", "create", "--bootstrap", kafka.bootstrap)
        assert created.returncode == 0, created.stderr
        (node,) = kafka.nodes
        node.kill()
        assert registered_brokers(kafka.port) == set()
        node.restart()
        kafka.wait_ready(60)
        listed = run_csms("topics", "list", "--bootstrap", kafka.bootstrap)
    assert "ocpp.events.v1" in listed.stdout.split()


def test_broker_dies_with_the_process_that_started_it() -> None:
    """A csms killed with SIGKILL (or by a test runner's timeout) leaves no node behind."""
    script = (
        "import time\n"
        "from contracts.bus.broker import LocalKafka\n"
        "kafka = LocalKafka(0).start()\n"
        "print(kafka.nodes[0].process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    node_pid = int(parent.stdout.readline())
    assert pid_alive(node_pid)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    assert wait_until(lambda: not pid_alive(node_pid), timeout=10)


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The format tool would read "-..." as an option and fail (1 start in 64)."""
    ids = iter([uuid.UUID(bytes=b"\xfb" + bytes(15)), uuid.UUID(bytes=bytes(16))])
    monkeypatch.setattr(broker_module.uuid, "uuid4", lambda: next(ids))
    assert broker_module._cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_missing_jars_name_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("CSMS_KAFKA_DIST", str(tmp_path))
    monkeypatch.delenv("CSMS_KAFKA_LIBS", raising=False)
    with pytest.raises(kafka_dist.KafkaNotInstalled, match=r"python -m contracts\.bus\.kafka_dist"):
        kafka_dist.classpath()


def test_installed_jars_match_the_pins() -> None:
    libs = kafka_dist.libs_dir()
    pins = kafka_dist._pins()
    assert {path.name for path in libs.glob("*.jar")} == set(pins)
    kafka_dist._verify(libs)
    assert (kafka_dist._java_major(kafka_dist.java()) or 0) >= kafka_dist.MIN_JAVA
