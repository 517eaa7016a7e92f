"""A websocket opening handshake written by hand, for headers no well-behaved client sends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import ssl
from collections.abc import Sequence


@dataclasses.dataclass
class Handshake:
    status: int
    headers: dict[str, str]  # lower-cased names
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()

    async def read_close_frame(self, timeout: float = 5.0) -> tuple[int | None, bytes]:
        """Read frames until a close frame; returns (close code, raw bytes read)."""
        data = b""
        async with asyncio.timeout(timeout):
            while True:
                chunk = await self.reader.read(4096)
                data += chunk
                if not chunk:
                    return None, data
                if len(data) >= 2 and data[0] & 0x0F == 0x8:
                    length = data[1] & 0x7F
                    if len(data) >= 2 + length:
                        code = int.from_bytes(data[2:4], "big") if length >= 2 else None
                        return code, data


async def handshake(
    port: int,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Handshake:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl_context, server_hostname="localhost" if ssl_context else None
    )
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    parsed = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            parsed[name.strip().lower()] = value.strip()
    return Handshake(status, parsed, reader, writer)


def basic(user: str, password: str) -> tuple[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ("Authorization", f"Basic {token}")
