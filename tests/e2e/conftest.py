"""End-to-end fixtures: a real gateway process on the session's broker, real websocket clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from contracts.topics import COMMAND_RESULTS, EVENTS
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector


@pytest.fixture(scope="module")
def gateway(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    """One gateway per test module, accepting unknown stations (development mode)."""
    with GatewayProcess(kafka) as process:
        yield process


@pytest.fixture
async def events(kafka: KafkaUnderTest) -> AsyncIterator[Collector]:
    """Records written to ocpp.events.v1 from the start of the test."""
    async with Collector(kafka, EVENTS.name) as collector:
        yield collector


@pytest.fixture
async def results(kafka: KafkaUnderTest) -> AsyncIterator[Collector]:
    """Records written to ocpp.command-results.v1 from the start of the test."""
    async with Collector(kafka, COMMAND_RESULTS.name) as collector:
        yield collector
