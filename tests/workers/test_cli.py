"""``csms id-tokens`` and ``csms worker`` as a user runs them."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest

from contracts.bus.broker import free_port
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CsmsProcess, run_csms


def _id_tokens(kafka: KafkaUnderTest, *args: str) -> tuple[int, str, str]:
    result = run_csms("id-tokens", *args, "--bootstrap", kafka.bootstrap)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.kafka
def test_id_tokens_add_change_list_and_remove(kafka: KafkaUnderTest) -> None:
    token = f"CLI{uuid.uuid4().hex[:10].upper()}"
    added = _id_tokens(
        kafka, "add", token, "--expires", "2027-01-01T00:00:00+01:00", "--group", "FLEET"
    )
    assert added == (0, f"added\t{token}\tAccepted\t2026-12-31T23:00:00Z\tFLEET\n", "")
    # a change keeps what it does not name; the token's case is the first one written
    changed = _id_tokens(kafka, "add", token.lower(), "--status", "Blocked")
    assert changed == (0, f"updated\t{token}\tBlocked\t2026-12-31T23:00:00Z\tFLEET\n", "")
    cleared = _id_tokens(kafka, "add", token, "--expires", "", "--group", "")
    assert cleared[1] == f"updated\t{token}\tBlocked\t-\t-\n"
    status, listing, _ = _id_tokens(kafka, "list")
    assert status == 0
    assert f"{token}\tBlocked\t-\t-" in listing.splitlines()
    assert _id_tokens(kafka, "remove", token) == (0, f"removed\t{token}\n", "")
    assert token not in _id_tokens(kafka, "list")[1]
    status, _, error = _id_tokens(kafka, "remove", token)
    assert (status, error) == (2, f"csms id-tokens remove: unknown id token {token!r}\n")


def test_id_tokens_refuses_a_bad_date_and_says_when_kafka_is_away() -> None:
    result = run_csms("id-tokens", "add", "T1", "--expires", "tomorrow", "--bootstrap", "x:1")
    assert result.returncode == 2
    assert "not an ISO 8601 date" in result.stderr
    result = run_csms("id-tokens", "list", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach Kafka" in result.stderr


def test_worker_names_its_workers_and_refuses_others() -> None:
    result = run_csms("worker", "--help")
    assert result.returncode == 0
    assert "sessions" in result.stdout
    assert run_csms("worker", "no-such-worker").returncode == 2


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_worker_without_kafka_is_alive_not_ready_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {"CSMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "CSMS_KAFKA_IDEMPOTENCE": "false"}
    with CsmsProcess("worker", "sessions", "--status-port", str(port), env=env) as worker:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if _status(port, "/healthz") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert _status(port, "/healthz") == 200
        assert _status(port, "/readyz") == 503
        worker.wait_for("worker.kafka_unavailable")
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0
