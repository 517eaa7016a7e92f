"""The ``csms`` dispatcher, as installed."""

from __future__ import annotations

from tests.support.processes import run_csms


def test_help_lists_the_registered_commands() -> None:
    result = run_csms("--help")
    assert result.returncode == 0
    for name in ("broker", "topics", "tail"):
        assert name in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_csms("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_bad_setting_in_environment_is_reported() -> None:
    result = run_csms("topics", "list", env={"CSMS_KAFKA_COMPRESSION": "brotli"})
    assert result.returncode == 2
    assert (
        "csms topics: CSMS_KAFKA_COMPRESSION='brotli': "
        "expected one of lz4, zstd, snappy, gzip, none" in result.stderr
    )
    assert "Traceback" not in result.stderr
