"""websockets' sans-I/O protocols on asyncio transports: what the gateway and the harness share.

Both drive a websockets protocol object themselves (``gateway/connection.py``,
``loadtest/station.py``) instead of websockets' own asyncio layer, so both must
honour the same two rules of that protocol: what it queues goes to the
transport, an empty chunk meaning "close the TCP connection"; and a protocol
that is done with holds reference cycles that must be broken by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["release_websocket", "write_pending"]


def write_pending(protocol: Any, transport: asyncio.Transport) -> None:
    """Write what ``protocol`` queued to ``transport``; close it where websockets says so."""
    for chunk in protocol.data_to_send():
        if chunk:
            transport.write(chunk)
        else:  # websockets' signal to close the TCP connection (RFC 6455 §7.1.1)
            transport.close()


def release_websocket(protocol: Any) -> None:
    """Break the reference cycles of a websockets protocol that is done with.

    The GC policy freezes long-lived objects and a frozen cycle is never
    collected (contracts/service/gc_policy.py), and a websockets protocol
    refers to itself in several ways: its parser generator (whose frame holds
    the protocol), the exceptions the parser ended with (``parser_exc``,
    ``handshake_exc`` and its cause, whose tracebacks hold that frame), and a
    ``select_subprotocol`` callback, which websockets binds to the protocol.
    Closing the parser and emptying the protocol's attributes breaks them all,
    so reference counting frees it; the protocol is unusable afterwards.
    """
    protocol.parser.close()
    vars(protocol).clear()
