"""A defect the broker-failure tests found, reduced to a reproduction without any fault.

Found by the rolling-restart test: a command answered by its station ends
``completed``, then ``station_offline`` too when the station disconnects within
``CSMS_OFFLINE_GRACE`` of the command. The offline responder (gateway/offline.py)
decides each command ``offline_grace`` seconds after it was written and asks only
whether someone holds the station *now*; the gateway that delivered and
completed the command has tombstoned the station's presence by then.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from contracts.envelopes import decode_command_result
from contracts.topics import COMMAND_RESULTS
from tests.e2e.test_station_flows import command, publish_command
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect_raw

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

GRACE = 2.0  # CSMS_OFFLINE_GRACE (its default)


@pytest.mark.xfail(
    strict=True,
    reason="gateway/offline.py: a command completed less than CSMS_OFFLINE_GRACE before its "
    "station disconnects also ends station_offline (two results for one command id)",
)
async def test_a_command_answered_just_before_the_station_leaves_ends_once(
    kafka: KafkaUnderTest,
) -> None:
    station = f"FD-{uuid.uuid4().hex[:10]}"
    with GatewayProcess(kafka, env={"CSMS_OFFLINE_GRACE": str(GRACE)}) as gateway:
        async with Collector(kafka, COMMAND_RESULTS.name) as results:
            async with connect_raw(gateway.url(station), "ocpp1.6") as raw:
                assert (await raw.call("Heartbeat", {}))[0] == 3
                get_configuration = command(station, "GetConfiguration", {})
                await publish_command(kafka, get_configuration)
                call = await raw.receive()
                assert call[:3] == [2, call[1], "GetConfiguration"]
                await raw.send([3, call[1], {"configurationKey": []}])
                await results.wait_for(
                    lambda rs: any(get_configuration.command_id.encode() in r.value for r in rs),
                    what="the command's result",
                )
            # the station left right after answering; wait past the offline grace
            await asyncio.sleep(GRACE + 3.0)

            def ended(record: Any) -> bool:
                return bool(
                    decode_command_result(record.value).command_id == get_configuration.command_id
                )

            statuses = [decode_command_result(r.value).status for r in results.records if ended(r)]
    assert statuses == ["completed"]
