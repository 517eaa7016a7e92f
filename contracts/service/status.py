"""The status port: ``/healthz``, ``/readyz`` and ``/metrics`` on a port of their own.

A deliberately tiny HTTP/1.1 server on ``asyncio.start_server``, so that the
probes and the scrape share nothing with the station-facing listener (its TLS,
its authentication, its connection limits) and need no web framework:

``GET /healthz``
    Liveness. ``200 ok`` whenever the event loop gets to answer. It never looks
    at Kafka or anything else outside the process: a broker outage must make
    pods unready, not restart them all.
``GET /readyz``
    Readiness. Calls the ``readiness`` callable, a mapping of check name to
    ok; ``200`` when every check is ok, else ``503``. The body is JSON either
    way: ``{"ready": false, "failing": ["kafka", "draining"]}``.
``GET /metrics``
    The Prometheus text exposition of the registry passed in.

``HEAD`` works on all three. Any other path is ``404``, any other method
``405``. Every response closes the connection (``Connection: close``), so a
request is one connection and nothing is pipelined. Defences, for a port that
may be reachable from the cluster network:

* request heads larger than ``max_header_bytes`` (8 KiB) get ``431``;
* a client has ``read_timeout`` seconds for the whole exchange; a slow one gets
  ``408`` (or is cut off while being answered), so slowloris holds nothing;
* at most ``max_connections`` connections at a time; beyond that a new one is
  closed at once (file descriptors belong to the stations).

Nothing is logged per request (the project's logging rule); failures of the
readiness callable or of a collector are logged and answered with 503/500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Readiness", "StatusServer"]

logger = logging.getLogger(__name__)

Readiness = Callable[[], Mapping[str, bool]]
"""Returns each readiness check's name and whether it passes; ready iff all pass."""

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"


class _Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = _TEXT,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers

    def encode(self, *, head_only: bool = False) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS[self.status]}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
            "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


def _text(status: int, text: str) -> _Response:
    return _Response(status, text.encode() + b"\n")


class StatusServer:
    """Serves ``/healthz``, ``/readyz`` and ``/metrics`` (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        readiness: Readiness,
        *,
        read_timeout: float = 5.0,
        max_header_bytes: int = 8192,
        max_connections: int = 64,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.readiness = readiness
        self.read_timeout = read_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the server is bound to (the kernel's choice when asked for port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the status server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the status server is already started")
        self._server = await asyncio.start_server(
            self._serve, self.host, self.requested_port, limit=self.max_header_bytes
        )

    async def stop(self) -> None:
        """Stop listening and cut the connections being served."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    # ------------------------------------------------------------------ one exchange

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        answered = False
        try:
            async with asyncio.timeout(self.read_timeout):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    response, head_only = _text(431, "request head too large"), False
                except asyncio.IncompleteReadError:
                    return  # the client left before finishing its request
                else:
                    response, head_only = self._respond(head)
                answered = True
                writer.write(response.encode(head_only=head_only))
                await writer.drain()
        except TimeoutError:
            # Too slow to send its request: say so, if it is still there to read it.
            if not answered and not writer.is_closing():
                writer.write(_text(408, "request timeout").encode())
        except ConnectionError:
            pass
        finally:
            self._connections.discard(task)
            # An answer still buffered means a client that does not read: cut it off.
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()
            else:
                writer.close()

    def _respond(self, head: bytes) -> tuple[_Response, bool]:
        request_line = head.split(b"\r\n", 1)[0]
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _text(400, "bad request"), False
        method, target = parts[0], parts[1]
        if method not in (b"GET", b"HEAD"):
            return _Response(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),)), False
        head_only = method == b"HEAD"
        path = target.split(b"?", 1)[0]
        try:
            if path == b"/healthz":
                return _text(200, "ok"), head_only
            if path == b"/readyz":
                return self._ready(), head_only
            if path == b"/metrics":
                return _Response(
                    200, generate_latest(self.registry), CONTENT_TYPE_LATEST
                ), head_only
        except Exception:
            logger.exception("status.failed", extra={"path": path.decode("latin-1")})
            return _text(500, "internal error"), head_only
        return _text(404, "not found"), head_only

    def _ready(self) -> _Response:
        try:
            checks = dict(self.readiness())
        except Exception:
            logger.exception("status.readiness_failed")
            checks = {"readiness": False}
        failing = [name for name, ok in checks.items() if not ok]
        body = orjson.dumps({"ready": not failing, "failing": failing}) + b"\n"
        return _Response(503 if failing else 200, body, _JSON)
