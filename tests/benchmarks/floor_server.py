"""The floor: a bare asyncio.Protocol on uvloop answering every CALL with a canned CALLRESULT.

    .venv/bin/python -m tests.benchmarks.floor_server [--port 0]

``bare_server`` without websockets: handshake and frames by hand in one
``asyncio.Protocol``. Each ``data_received`` parses the frames it holds, unmasks
them in C, cuts the id out of ``[2,"<id>",...`` and answers all of them in one
``transport.write``: no task, future or stream reader, no UTF-8 decoding. What
is left is uvloop's socket reads and writes and a few Python lines per message,
so no Python asyncio server on uvloop answers an OCPP call for less CPU.
Fragmented messages are not reassembled; the load generator sends none. Prints
``listening on PORT``; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
from typing import cast

import uvloop

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension: websockets' pure Python version
    from websockets.utils import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_REQUEST = 16384  # bytes of handshake request before it is refused


def _accept(request: bytes) -> bytes | None:
    """The ``101 Switching Protocols`` answer to an OCPP 1.6 upgrade request, or None."""
    line, *fields = request.decode("latin-1").split("\r\n")
    headers = {n.strip().lower(): v.strip() for n, _, v in (f.partition(":") for f in fields)}
    key = headers.get("sec-websocket-key", "")
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if not (
        line.startswith("GET ")
        and headers.get("upgrade", "").lower() == "websocket"
        and "upgrade" in headers.get("connection", "").lower()
        and headers.get("sec-websocket-version") == "13"
        and key
        and "ocpp1.6" in offered
    ):
        return None
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )


def _frame(first: int, payload: bytes) -> bytes:
    """A server frame (unmasked): the FIN + opcode byte ``first``, the length, ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


class Floor(asyncio.Protocol):
    """One station's connection: the upgrade request, then frames."""

    def __init__(self) -> None:
        self.buffer = b""  # bytes received but not yet used: part of a request or frame
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data  # no copy while the buffer is empty
        out = b""
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0 and len(buffer) <= MAX_REQUEST:
                self.buffer = buffer
                return
            answer = _accept(buffer[:end]) if end >= 0 else None
            if answer is None:
                self.transport.write(BAD_REQUEST)
                self.transport.close()
                return
            self.upgraded = True
            out, buffer = answer, buffer[end + 4 :]
        pos, size = 0, len(buffer)
        while size - pos >= 6:  # the shortest client frame: 2 bytes of header, 4 of mask
            first, second = buffer[pos], buffer[pos + 1]
            if second < 0x80:  # not masked: a protocol error
                self.transport.close()
                return
            length, head = second & 0x7F, pos + 2
            if length == 126:
                length, head = int.from_bytes(buffer[head : head + 2], "big"), head + 2
            elif length == 127:
                length, head = int.from_bytes(buffer[head : head + 8], "big"), head + 8
            end = head + 4 + length
            if end > size:
                break  # the rest of this frame is yet to come
            payload = apply_mask(buffer[head + 4 : end], buffer[head : head + 4])
            pos = end
            if first == 0x81 and payload.startswith(b'[2,"'):  # a whole text frame: a CALL
                quote = payload.find(b'"', 4)
                if quote > 0:
                    out += _frame(0x81, b'[3,"' + payload[4:quote] + b'",{}]')
            elif first == 0x89:  # ping
                out += _frame(0x8A, payload)
            elif first == 0x88:  # close: echo its status code, then hang up
                self.transport.write(out + _frame(0x88, payload[:2]))
                self.transport.close()
                return
        self.buffer = buffer[pos:]
        if out:
            self.transport.write(out)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(Floor, "127.0.0.1", port)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(parser.parse_args().port))
