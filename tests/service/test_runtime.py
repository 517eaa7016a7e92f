"""The process runtime: settings, the uvloop runner, stop signals, and everything wired."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
import uvloop
from prometheus_client import CollectorRegistry

from contracts.service.runtime import ServiceRuntime, ServiceSettings, Stopping, run
from contracts.settings import describe, load


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    callbacks = list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


# --------------------------------------------------------------------------- settings


def test_every_setting_has_a_csms_variable_a_default_and_help() -> None:
    rows = describe(ServiceSettings)
    assert len(rows) == len(ServiceSettings.__dataclass_fields__)
    for env, _flag, default, help_text in rows:
        assert env.startswith("CSMS_")
        assert default != "" or env == "CSMS_INSTANCE"
        assert len(help_text) > 20
    table = {env: (flag, default) for env, flag, default, _ in rows}
    assert table["CSMS_LOG_LEVEL"] == ("--log-level", "INFO")
    assert table["CSMS_STATUS_HOST"] == (None, "0.0.0.0")
    assert table["CSMS_STATUS_PORT"] == ("--status-port", "9100")
    assert table["CSMS_GC_THRESHOLD_GEN0"] == (None, "10000")
    assert table["CSMS_GC_FREEZE"] == (None, "true")


def test_settings_are_read_from_the_environment() -> None:
    env = {
        "CSMS_LOG_LEVEL": "DEBUG",
        "CSMS_STATUS_PORT": "9999",
        "CSMS_GC_FREEZE": "false",
        "CSMS_GC_THRESHOLD_GEN2": "50",
        "CSMS_LOOP_LAG_INTERVAL": "0.5",
    }
    settings = load(ServiceSettings, None, env=env)
    assert settings.log_level == "DEBUG"
    assert settings.status_port == 9999
    assert settings.gc_freeze is False
    assert settings.gc_threshold_gen2 == 50
    assert settings.loop_lag_interval == 0.5


def test_the_instance_name_defaults_to_the_host_name() -> None:
    assert ServiceSettings().instance_name() == socket.gethostname()
    assert ServiceSettings(instance="gw-3").instance_name() == "gw-3"


# --------------------------------------------------------------------------- run


def test_run_runs_the_main_coroutine_on_uvloop() -> None:
    async def main() -> tuple[str, int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__, 42

    # In a thread of its own: the test session's loop must stay this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        module, answer = pool.submit(run, main).result(timeout=10)
    assert module.startswith("uvloop")
    assert answer == 42


# --------------------------------------------------------------------------- Stopping


async def test_the_first_signal_asks_to_stop_and_the_second_exits() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)  # as in production
    exits: list[int] = []
    stopping = Stopping(exit=exits.append)
    stopping.install()
    try:
        assert not stopping.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(5):
            await stopping.wait()
        assert stopping.reason == "SIGTERM"
        assert exits == []
        os.kill(os.getpid(), signal.SIGINT)
        async with asyncio.timeout(5):
            while not exits:
                await asyncio.sleep(0.01)
        assert exits == [128 + signal.SIGINT]
        assert stopping.reason == "SIGTERM"  # the first reason is kept
    finally:
        stopping.uninstall()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_stopping_can_be_asked_for_without_a_signal() -> None:
    stopping = Stopping()
    stopping.set("kafka.fatal")
    stopping.set("later")
    await stopping.wait()
    assert stopping.reason == "kafka.fatal"


# --------------------------------------------------------------------------- ServiceRuntime


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: status\r\n\r\n".encode())
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


TEST_SETTINGS = ServiceSettings(
    status_host="127.0.0.1", status_port=0, loop_lag_interval=0.01, gc_freeze_interval=0.05
)


@pytest.mark.usefixtures("collector_restored")
async def test_the_runtime_serves_status_and_turns_unready_when_stopping() -> None:
    thresholds = gc.get_threshold()
    callbacks = len(gc.callbacks)
    registry = CollectorRegistry()
    kafka_ok = {"kafka": True}
    runtime = ServiceRuntime(TEST_SETTINGS, registry=registry, readiness=lambda: kafka_ok)
    async with runtime:
        port = runtime.status.port
        assert gc.get_threshold() == (10_000, 10, 100)
        assert gc.get_freeze_count() > 0  # the start-up freeze
        assert await http_get(port, "/healthz") == (200, b"ok\n")
        status, body = await http_get(port, "/readyz")
        assert (status, orjson.loads(body)) == (200, {"ready": True, "failing": []})

        kafka_ok["kafka"] = False
        status, body = await http_get(port, "/readyz")
        assert (status, orjson.loads(body)["failing"]) == (503, ["kafka"])

        kafka_ok["kafka"] = True
        runtime.stopping.set("test")
        status, body = await http_get(port, "/readyz")
        assert (status, orjson.loads(body)["failing"]) == (503, ["draining"])
        assert await http_get(port, "/healthz") == (200, b"ok\n")  # alive while draining

        await asyncio.sleep(0.05)  # a few loop-lag samples
        status, body = await http_get(port, "/metrics")
        assert status == 200
        for name in (
            b"csms_event_loop_lag_seconds_count",
            b"csms_gc_frozen_objects",
            b'csms_gc_collections_total{generation="2"}',
            b"process_open_fds",
            b"python_info",
        ):
            assert name in body
        lag_samples = registry.get_sample_value("csms_event_loop_lag_seconds_count")
        assert lag_samples is not None
        assert lag_samples >= 1
    # Everything is undone: the port, the collector's settings, the signal handlers.
    with pytest.raises(OSError, match=r"refused|Connect call failed"):
        await asyncio.open_connection("127.0.0.1", port)
    assert gc.get_threshold() == thresholds
    assert len(gc.callbacks) == callbacks
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.usefixtures("collector_restored")
async def test_a_status_port_in_use_fails_the_start_and_undoes_it() -> None:
    thresholds = gc.get_threshold()
    callbacks = len(gc.callbacks)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = ServiceSettings(status_host="127.0.0.1", status_port=taken.getsockname()[1])
        runtime = ServiceRuntime(settings, registry=CollectorRegistry(), readiness=dict)
        with pytest.raises(OSError, match="in use"):
            await runtime.__aenter__()
    assert gc.get_threshold() == thresholds
    assert len(gc.callbacks) == callbacks
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("csms-")] == []


@pytest.mark.usefixtures("collector_restored")
async def test_a_failing_background_task_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    runtime = ServiceRuntime(TEST_SETTINGS, registry=CollectorRegistry(), readiness=dict)

    def broken() -> bool:
        raise RuntimeError("bug in the GC check")

    runtime.gc.check = broken  # type: ignore[method-assign]
    async with runtime:
        await asyncio.sleep(0.2)
    failures = [r for r in caplog.records if r.msg == "service.task_failed"]
    assert [getattr(r, "task", None) for r in failures] == ["csms-gc-policy"]


def test_the_operations_guide_documents_every_setting_with_its_default() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): [cell.strip(" `") for cell in line.split("|")[2:4]]
        for line in guide.splitlines()
        if line.startswith("| `CSMS_")
    }
    for env, flag, default, _help in describe(ServiceSettings):
        assert env in rows, f"{env} is missing from docs/operations.md"
        documented_flag, documented_default = rows[env]
        assert documented_flag == (flag or "")
        assert documented_default == (default or "(host name)")


@pytest.mark.usefixtures("collector_restored")
def test_the_runtime_runs_off_the_main_thread_without_signal_handlers() -> None:
    settings = ServiceSettings(status_host="127.0.0.1", status_port=0, gc_freeze=False)

    async def main() -> tuple[int, bytes]:
        runtime = ServiceRuntime(
            settings, registry=CollectorRegistry(), readiness=dict, handle_signals=False
        )
        async with runtime:
            answer = await http_get(runtime.status.port, "/healthz")
            runtime.stopping.set("done")
            await runtime.stopping.wait()
        return answer

    with ThreadPoolExecutor(1) as pool:  # add_signal_handler would refuse this thread
        assert pool.submit(run, main).result(timeout=10) == (200, b"ok\n")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_soft_open_file_limit_is_raised_to_the_hard_limit() -> None:
    import resource

    from contracts.service.runtime import raise_open_file_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        assert raise_open_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
