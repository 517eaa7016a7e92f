"""An outage is one warning per interval and one line when it ends, not a line per retry."""

from __future__ import annotations

import logging

import pytest

from contracts.bus import outage as outage_module
from contracts.bus.outage import Outage

log = logging.getLogger("test.outage")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(outage_module.time, "monotonic", clock)
    return clock


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    return [
        (r.msg, {k: getattr(r, k) for k in ("failed_attempts", "outage_s", "node")})
        for r in caplog.records
    ]


def test_retries_every_100_ms_for_25_s_give_three_warnings_and_one_end(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(log, "x.failed", "x.back", interval=10.0, node=3)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(251):  # 0.0 .. 25.0 s
            outage.failed(ConnectionRefusedError())
            clock.now += 0.1
        outage.succeeded()
        outage.succeeded()  # nothing more to say

    assert _lines(caplog) == [
        ("x.failed", {"failed_attempts": 1, "outage_s": 0.0, "node": 3}),
        ("x.failed", {"failed_attempts": 101, "outage_s": 10.0, "node": 3}),
        ("x.failed", {"failed_attempts": 201, "outage_s": 20.0, "node": 3}),
        ("x.back", {"failed_attempts": 251, "outage_s": 25.1, "node": 3}),
    ]
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.records[-1].levelno == logging.INFO


def test_failures_further_apart_than_the_interval_are_separate_outages(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(log, "x.failed", "x.back", interval=10.0, node=1)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.failed(OSError())
        clock.now += 60  # the broker came back without this client needing it
        outage.failed(OSError())

    assert [fields["failed_attempts"] for _, fields in _lines(caplog)] == [1, 1]
    assert [fields["outage_s"] for _, fields in _lines(caplog)] == [0.0, 0.0]
