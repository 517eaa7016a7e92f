"""``csms stations``: the registry's operator command, against the session's broker.

The command is run through its ``run()`` function, as ``csms`` runs it; the
last test runs the installed console script when the entry point is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.metadata
import io
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.bus.clients import assign_all
from contracts.envelopes import StationRecord
from contracts.headers import read_headers
from contracts.topics import STATIONS
from gateway.auth import Attempt, Authenticator
from gateway.credentials import verify_password
from gateway.stations import command, read_stations
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import run_csms

PASSWORD = "Zq8-fT2mWx4Lp9Rs1Kd"


@pytest.fixture(autouse=True)
def _kafka_env(kafka: KafkaUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in kafka.env().items():
        monkeypatch.setenv(name, value)


def new_id() -> str:
    return f"CP-{uuid.uuid4().hex[:10]}"


def stations(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``csms stations ARGV``; return (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="csms stations")
    command.configure(parser)
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        if stdin is not None:
            patch.setattr("sys.stdin", io.StringIO(stdin))
        status = command.run(args)
    return status, out.getvalue(), err.getvalue()


def registry(kafka: KafkaUnderTest) -> dict[str, StationRecord]:
    return asyncio.run(read_stations(kafka.settings))


class Registry(dict[str, StationRecord]):
    caught_up = True


def logs_in(record: StationRecord, password: str, *, tls: bool) -> bool:
    token = base64.b64encode(f"{record.station_id}:{password}".encode()).decode()
    auth = Authenticator(Registry({record.station_id: record}))
    attempt = Attempt(
        station_id=record.station_id,
        remote_ip="192.0.2.1",
        authorization=f"Basic {token}",
        tls=tls,
    )
    return auth.authenticate(attempt).accepted


# --------------------------------------------------------------------------- add


def test_add_without_a_password_generates_one_and_prints_it_once(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    status, out, err = stations("add", station_id, "--site", "depot-7")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"added\t{station_id}\t2\tenabled\tdepot-7"
    label, password = lines[1].split("\t")
    assert label == "password"
    assert 16 <= len(password) <= 40
    assert "shown only now" in err
    record = registry(kafka)[station_id]
    assert record.security_profile == 2  # the default: TLS with Basic auth
    assert record.password_hash is not None
    assert password not in record.password_hash
    assert logs_in(record, password, tls=True)
    # the password is not shown again
    status, out, _ = stations("list")
    assert password not in out
    assert record.password_hash not in out


def test_add_with_a_password_stores_only_its_hash(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    status, out, err = stations("add", station_id, "--profile", "1", "--password", PASSWORD)
    assert status == 0, err
    assert PASSWORD not in out + err
    record = registry(kafka)[station_id]
    assert record.password_hash is not None
    assert record.password_hash.startswith("sha256$")
    assert verify_password(record.password_hash, PASSWORD.encode())
    assert logs_in(record, PASSWORD, tls=False)


def test_add_reads_the_password_from_stdin(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    status, _, err = stations("add", station_id, "--password-stdin", stdin=PASSWORD + "\n")
    assert status == 0, err
    assert logs_in(registry(kafka)[station_id], PASSWORD, tls=True)


def test_add_on_an_existing_station_keeps_what_it_does_not_change(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    stations("add", station_id, "--profile", "1", "--password", PASSWORD, "--site", "depot-1")
    assert stations("disable", station_id)[0] == 0
    before = registry(kafka)[station_id]
    status, out, err = stations("add", station_id, "--site", "depot-2")
    assert status == 0, err
    assert out.splitlines() == [f"updated\t{station_id}\t1\tdisabled\tdepot-2"]  # no new password
    after = registry(kafka)[station_id]
    assert after.password_hash == before.password_hash
    assert (after.security_profile, after.enabled, after.site_id) == (1, False, "depot-2")
    assert after.updated_at > before.updated_at
    # a new password replaces the old one
    stations("add", station_id, "--password", "A" * 16)
    rotated = registry(kafka)[station_id]
    assert rotated.password_hash is not None
    assert verify_password(rotated.password_hash, b"A" * 16)
    assert not verify_password(rotated.password_hash, PASSWORD.encode())
    # an empty --site clears the site
    stations("add", station_id, "--site", "")
    assert registry(kafka)[station_id].site_id is None


def test_add_profile_3_has_no_password(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    status, out, err = stations("add", station_id, "--profile", "3")
    assert status == 0, err
    assert "password" not in out
    assert registry(kafka)[station_id].password_hash is None


def test_moving_a_station_to_profile_3_drops_its_password(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    stations("add", station_id, "--password", PASSWORD)
    stations("add", station_id, "--profile", "3")
    assert registry(kafka)[station_id].password_hash is None
    status, out, _ = stations("add", station_id, "--profile", "2")
    assert status == 0
    assert "password\t" in out  # back to Basic auth: a new password is generated


@pytest.mark.parametrize(
    "password", ["x" * 15, "x" * 41, "sixteen chars ok", "tab\tinside-1234567"]
)
def test_add_refuses_a_password_outside_the_rules(password: str) -> None:
    status, out, err = stations("add", new_id(), "--password", password)
    assert status == 2
    assert out == ""
    assert "station password" in err


def test_add_accepts_passwords_of_16_and_40_characters(kafka: KafkaUnderTest) -> None:
    for length in (16, 40):
        status, _, err = stations("add", new_id(), "--password", "p" * length)
        assert status == 0, err


def test_add_refuses_a_password_for_profile_3() -> None:
    status, _, err = stations("add", new_id(), "--profile", "3", "--password", PASSWORD)
    assert status == 2
    assert "certificate" in err


def test_add_refuses_a_password_for_a_station_already_on_profile_3() -> None:
    station_id = new_id()
    stations("add", station_id, "--profile", "3")
    status, _, err = stations("add", station_id, "--password", PASSWORD)
    assert status == 2
    assert "profile 3" in err


@pytest.mark.parametrize("station_id", ["", "a" * 49, "CP:1", "CP/1", "CP..1", " CP-1", "CP%1"])
def test_add_refuses_an_identity_a_station_cannot_have(station_id: str) -> None:
    status, _, err = stations("add", station_id)
    assert status == 2
    assert "station identity" in err


def test_a_bad_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="csms stations")
    command.configure(parser)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["add", "CP-1", "--profile", "4"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------- list


def test_list_prints_one_line_per_station_and_no_secrets(kafka: KafkaUnderTest) -> None:
    first, second = sorted([new_id(), new_id()])
    stations("add", first, "--profile", "1", "--password", PASSWORD, "--site", "depot-9")
    stations("add", second, "--profile", "3")
    stations("disable", second)
    status, out, err = stations("list")
    assert status == 0, err
    mine = [line for line in out.splitlines() if line.split("\t")[0] in (first, second)]
    assert mine == [f"{first}\t1\tenabled\tdepot-9", f"{second}\t3\tdisabled\t-"]
    assert "sha256$" not in out
    assert PASSWORD not in out


# ---------------------------------------------------------------- disable, enable, remove


def test_disable_and_enable(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    stations("add", station_id, "--password", PASSWORD, "--site", "depot-3")
    status, out, _ = stations("disable", station_id)
    assert status == 0
    assert out == f"disabled\t{station_id}\t2\tdisabled\tdepot-3\n"
    disabled = registry(kafka)[station_id]
    assert not disabled.enabled
    assert disabled.site_id == "depot-3"
    assert disabled.password_hash is not None
    assert verify_password(disabled.password_hash, PASSWORD.encode())
    status, out, _ = stations("disable", station_id)
    assert (status, out.split("\t")[0]) == (0, "unchanged")
    status, _, _ = stations("enable", station_id)
    assert status == 0
    assert registry(kafka)[station_id].enabled


@pytest.mark.parametrize("action", ["disable", "enable", "remove"])
def test_an_unknown_station_is_a_usage_error(action: str) -> None:
    station_id = new_id()
    status, out, err = stations(action, station_id)
    assert status == 2
    assert out == ""
    assert f"unknown station '{station_id}'" in err


def test_remove_writes_a_tombstone(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    stations("add", station_id, "--password", PASSWORD)
    status, out, _ = stations("remove", station_id)
    assert status == 0
    assert out == f"removed\t{station_id}\n"
    assert station_id not in registry(kafka)

    async def last_record() -> tuple[bytes | None, str | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: tuple[bytes | None, str | None] = (b"", None)
        try:
            partitions = await assign_all(consumer, STATIONS.name)
            await consumer.seek_to_beginning(*partitions)
            idle = 0
            while idle < 3:
                batches = await consumer.getmany(timeout_ms=300)
                idle = 0 if batches else idle + 1
                for records in batches.values():
                    for record in records:
                        if record.key == station_id.encode():
                            found = (record.value, read_headers(record.headers).ce_type)
        finally:
            await consumer.stop()
        return found

    value, ce_type = asyncio.run(last_record())
    assert value is None
    assert ce_type == "csms.station.deleted"


# --------------------------------------------------------------------------- Kafka away


@pytest.mark.parametrize("argv", [["list"], ["add", "CP-1"], ["disable", "CP-1"]])
def test_kafka_unreachable_is_exit_status_1(argv: list[str]) -> None:
    started = datetime.now(UTC)
    status, out, err = stations(*argv, "--bootstrap", "127.0.0.1:1")
    assert status == 1
    assert out == ""
    assert "cannot reach Kafka at 127.0.0.1:1" in err
    assert (datetime.now(UTC) - started).total_seconds() < 20


# --------------------------------------------------------------------------- the console script


def _installed() -> bool:
    return "stations" in {ep.name for ep in importlib.metadata.entry_points(group="csms.commands")}


@pytest.mark.skipif(not _installed(), reason="the csms stations entry point is not installed yet")
def test_csms_stations_console_script(kafka: KafkaUnderTest) -> None:
    station_id = new_id()
    added = run_csms("stations", "add", station_id, "--profile", "1", env=kafka.env())
    assert added.returncode == 0, added.stderr
    listed = run_csms("stations", "list", env=kafka.env())
    assert f"{station_id}\t1\tenabled\t-" in listed.stdout.splitlines()
    bad = run_csms("stations", "add", new_id(), "--password", "short", env=kafka.env())
    assert bad.returncode == 2
