"""Suite-wide fixtures: the uvloop event loop and the session's Kafka-protocol broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import uvloop

from tests.support.kafka import KafkaUnderTest, start_kafka


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    # csms runs on uvloop in production; the tests run on the same loop.
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaUnderTest]:
    """The session's broker, with every csms topic created (see tests/support/kafka.py)."""
    with start_kafka() as broker:
        yield broker
