"""A station's connection gives its objects back to reference counting when it ends.

The gateway freezes long-lived objects out of the garbage collector's view
(contracts/service/gc_policy.py), so a reference cycle left behind by a closed
connection would never be freed: websockets' protocol and its parser generator
form one until the generator is closed.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from gateway.connection import StationConnection
from gateway.settings import GatewaySettings


class _Transport:
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Gateway:
    """What a connection asks of the gateway before its handshake completes."""

    settings = GatewaySettings()

    def handshake_started(self, connection: StationConnection) -> None:
        pass

    def connection_lost(self, connection: StationConnection, exc: Exception | None) -> None:
        connection.release()  # as the gateway does, at once before the handshake, else in slices


async def test_a_closed_connection_is_freed_without_the_garbage_collector() -> None:
    connection = StationConnection(_Gateway(), tls=False)  # type: ignore[arg-type]
    connection.connection_made(_Transport())  # type: ignore[arg-type]
    assert connection.ws is not None
    protocol = weakref.ref(connection.ws)
    gc.disable()
    try:
        connection.connection_lost(ConnectionResetError())
        assert protocol() is None, "the websocket protocol waits for the garbage collector"
    finally:
        gc.enable()
    assert connection.ws is None and connection.transport is None
