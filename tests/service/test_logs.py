"""JSON logs: every line parses, carries the fixed fields and the extras, and never fails."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from rfc3339_validator import validate_rfc3339  # type: ignore[import-untyped]

from contracts.service.logs import QUIET_LOGGERS, RepeatFilter, configure_logging

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """configure_logging() into a StringIO; the root logger is put back afterwards."""
    root = logging.getLogger()
    level = root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    installed: list[logging.Handler] = []

    def _configure(level: str = "INFO") -> io.StringIO:
        stream = io.StringIO()
        installed.append(configure_logging("gateway", "gw-1", level, stream))
        return stream

    yield _configure
    for handler in installed:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_fixed_fields_and_the_extras(
    configure: Configure,
) -> None:
    stream = configure()
    logging.getLogger("gateway.server").info(
        "station.connected",
        extra={"station_id": "CP-1", "remote": "10.0.0.7", "ocpp_version": "ocpp1.6"},
    )
    [line] = lines(stream)
    assert line == {
        "ts": line["ts"],
        "level": "INFO",
        "logger": "gateway.server",
        "msg": "station.connected",
        "service": "gateway",
        "instance": "gw-1",
        "station_id": "CP-1",
        "remote": "10.0.0.7",
        "ocpp_version": "ocpp1.6",
    }


def test_the_timestamp_is_rfc3339_utc_with_milliseconds(configure: Configure) -> None:
    stream = configure()
    before = datetime.now().astimezone()
    logging.getLogger("t").warning("x")
    after = datetime.now().astimezone()
    [line] = lines(stream)
    assert validate_rfc3339(line["ts"])
    assert line["ts"].endswith("Z")
    assert len(line["ts"]) == len("2026-03-01T12:00:00.123Z")
    stamp = datetime.fromisoformat(line["ts"])
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamp <= after


def test_an_exception_is_logged_with_its_traceback(configure: Configure) -> None:
    stream = configure()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("station.handler_failed", extra={"station_id": "CP-2"})
    [line] = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith("ValueError: boom")
    assert line["station_id"] == "CP-2"


def test_values_json_cannot_hold_are_written_as_text(configure: Configure) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    class Remote:
        def __str__(self) -> str:
            return "10.0.0.8:4431"

    stream = configure()
    log = logging.getLogger("t")
    log.info("a", extra={"remote": Remote(), "ids": {3, 4}, "pair": ("x", 1)})
    log.info("b", extra={"huge": 2**70, "by_code": {1006: "abnormal"}})
    log.info("c", extra={"thing": Unprintable()})
    a, b, c = lines(stream)
    assert a["remote"] == "10.0.0.8:4431"
    assert a["ids"] in ("{3, 4}", "{4, 3}")
    assert a["pair"] == ["x", 1]
    assert b["huge"] == str(2**70)  # orjson refuses integers beyond 64 bits
    assert b["by_code"] == {"1006": "abnormal"}
    assert c["thing"] == "<unprintable Unprintable>"


def test_a_message_with_newlines_stays_on_one_line(configure: Configure) -> None:
    stream = configure()
    logging.getLogger("t").info("line one\nline two", extra={"note": "a\nb"})
    assert stream.getvalue().count("\n") == 1
    assert lines(stream)[0]["msg"] == "line one\nline two"


def test_the_fixed_fields_win_over_extras_of_the_same_name(configure: Configure) -> None:
    stream = configure()
    logging.getLogger("t").info("x", extra={"service": "spoofed", "level": "nope"})
    [line] = lines(stream)
    assert (line["service"], line["level"]) == ("gateway", "INFO")


def test_the_level_filters_and_is_read_in_any_case(configure: Configure) -> None:
    stream = configure("warning")
    log = logging.getLogger("t")
    log.info("dropped")
    log.warning("kept")
    assert [line["msg"] for line in lines(stream)] == ["kept"]
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure("LOUD")


def test_third_party_loggers_are_quiet_unless_debugging(configure: Configure) -> None:
    stream = configure("INFO")
    for name in QUIET_LOGGERS:
        logging.getLogger(f"{name}.conn").info("chatter")
        logging.getLogger(f"{name}.conn").warning("trouble")
    assert [line["logger"] for line in lines(stream)] == [f"{n}.conn" for n in QUIET_LOGGERS]
    assert {line["msg"] for line in lines(stream)} == {"trouble"}

    stream = configure("DEBUG")
    logging.getLogger("aiokafka.consumer").debug("detail")
    assert [line["msg"] for line in lines(stream)] == ["detail"]


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, "", 0, msg, args, None)


def test_a_third_party_message_repeated_in_an_outage_is_written_once_per_interval() -> None:
    now = [0.0]
    repeats = RepeatFilter(interval=10.0, clock=lambda: now[0])
    written = []
    for tick in range(25):  # ten a second for 2.5 s, twice: as aiokafka in an outage
        now[0] = tick * 0.1 + (10.0 if tick >= 12 else 0.0)
        record = _record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if repeats.filter(record):
            written.append((now[0], getattr(record, "repeated", None)))
    assert written == [(0.0, None), (11.2, 11)]
    # another message, another logger and csms's own lines are not held back by it
    assert repeats.filter(_record("aiokafka.conn", "Failed fetch messages from %s", 1))
    assert repeats.filter(_record("aiokafka.consumer", "Unable connect to node with id %s", 1))
    assert all(repeats.filter(_record("gateway", "station.connected")) for _ in range(3))


def test_configured_logs_hold_back_third_party_repeats(configure: Configure) -> None:
    stream = configure("INFO")
    for node in range(5):
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s", node)
    assert [line["msg"] for line in lines(stream)] == ["Unable connect to node with id 0"]


def test_configuring_again_replaces_the_handler(configure: Configure) -> None:
    first = configure()
    second = configure()
    logging.getLogger("t").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1
