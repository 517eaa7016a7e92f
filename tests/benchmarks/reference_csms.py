"""The obvious alternative to csms: a central system written with the ``ocpp`` package.

    .venv/bin/python -m tests.benchmarks.reference_csms [--port 0]

What a team would write first: websockets' asyncio server on uvloop, one
``ocpp.v16.ChargePoint`` per connection, ``@on`` handlers answering
BootNotification, Heartbeat, StatusNotification and MeterValues. No Kafka, no
authentication: it only answers. The ``ocpp`` package validates every payload
against its JSON schema, as it does by default. Prints ``listening on PORT``
once it accepts connections; stops on SIGTERM.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import RegistrationStatus
from websockets.asyncio.server import ServerConnection

from tests.benchmarks.bare_server import run_server


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CentralSystemStation(ChargePoint):  # type: ignore[misc]
    """The central system's side of one station's connection."""

    @on("BootNotification")  # type: ignore[misc]
    def on_boot_notification(self, **kwargs: Any) -> Any:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on("Heartbeat")  # type: ignore[misc]
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")  # type: ignore[misc]
    def on_status_notification(self, **kwargs: Any) -> Any:
        return call_result.StatusNotification()

    @on("MeterValues")  # type: ignore[misc]
    def on_meter_values(self, **kwargs: Any) -> Any:
        return call_result.MeterValues()


async def _handle(connection: ServerConnection) -> None:
    station = CentralSystemStation(connection.request.path.rsplit("/", 1)[-1], connection)
    try:
        await station.start()
    except Exception:  # a station that goes away ends its loop with ConnectionClosed
        return


if __name__ == "__main__":
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    run_server(_handle, __doc__.splitlines()[0])
