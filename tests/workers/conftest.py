"""Fixtures of the workers' tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.workers import calls


@pytest.fixture(autouse=True)
def _stations_clock() -> None:
    """Timestamps count from the test's start, not from the suite's: a message stamped more
    than the worker's ``offline_after`` (5 min) before it arrives counts as queued offline."""
    calls.NOW = datetime.now(UTC).replace(microsecond=0)
