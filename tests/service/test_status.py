"""The status port, served for real on port 0 and spoken to over sockets."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
from collections.abc import AsyncIterator, Mapping

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from contracts.service.status import StatusServer


class Checks:
    """A readiness callable whose answer a test changes."""

    def __init__(self) -> None:
        self.checks: dict[str, bool] = {"kafka": True, "registry": True}
        self.error: Exception | None = None

    def __call__(self) -> Mapping[str, bool]:
        if self.error is not None:
            raise self.error
        return self.checks


@pytest.fixture
def checks() -> Checks:
    return Checks()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("csms_test_requests", "A metric the test knows.", registry=registry).inc(3)
    return registry


@pytest.fixture
async def server(registry: CollectorRegistry, checks: Checks) -> AsyncIterator[StatusServer]:
    server = StatusServer("127.0.0.1", 0, registry, checks, read_timeout=0.3, max_connections=4)
    await server.start()
    yield server
    await server.stop()


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: status\r\n\r\n"


async def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` raw and read until the server closes (b"" if it cut us off)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(5):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    raw = await exchange(port, f"{method} {path} HTTP/1.1\r\nHost: status\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


async def test_healthz_answers_ok(server: StatusServer) -> None:
    status, headers, body = await get(server.port, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["connection"] == "close"
    assert headers["content-length"] == "3"


async def test_healthz_does_not_depend_on_readiness(server: StatusServer, checks: Checks) -> None:
    checks.checks = {"kafka": False}
    checks.error = RuntimeError("readiness is broken")
    status, _, _ = await get(server.port, "/healthz")
    assert status == 200


async def test_readyz_is_200_when_every_check_passes(server: StatusServer) -> None:
    status, headers, body = await get(server.port, "/readyz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body) == {"ready": True, "failing": []}


async def test_readyz_is_503_naming_the_failing_checks(
    server: StatusServer, checks: Checks
) -> None:
    checks.checks = {"kafka": False, "registry": True, "draining": False}
    status, _, body = await get(server.port, "/readyz")
    assert status == 503
    assert orjson.loads(body) == {"ready": False, "failing": ["kafka", "draining"]}


async def test_readyz_is_503_when_the_readiness_callable_fails(
    server: StatusServer, checks: Checks, caplog: pytest.LogCaptureFixture
) -> None:
    checks.error = RuntimeError("bug")
    status, _, body = await get(server.port, "/readyz")
    assert status == 503
    assert orjson.loads(body) == {"ready": False, "failing": ["readiness"]}
    assert [r.msg for r in caplog.records] == ["status.readiness_failed"]


async def test_metrics_are_the_registry_in_prometheus_text_format(server: StatusServer) -> None:
    status, headers, body = await get(server.port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    assert b"# TYPE csms_test_requests_total counter\ncsms_test_requests_total 3.0\n" in body


async def test_head_sends_the_headers_without_the_body(server: StatusServer) -> None:
    _, get_headers, get_body = await get(server.port, "/readyz")
    status, headers, body = await get(server.port, "/readyz", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(get_body)) == get_headers["content-length"]


async def test_a_query_string_is_ignored(server: StatusServer) -> None:
    status, _, body = await get(server.port, "/healthz?verbose=1")
    assert (status, body) == (200, b"ok\n")


@pytest.mark.parametrize("path", ["/", "/health", "/healthz/", "/metrics.json"])
async def test_other_paths_are_404(server: StatusServer, path: str) -> None:
    status, _, _ = await get(server.port, path)
    assert status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_are_405(server: StatusServer, method: str) -> None:
    status, headers, _ = await get(server.port, "/healthz", method=method)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "request_line", [b"GET /healthz\r\n\r\n", b"GET /healthz SPDY/3\r\n\r\n", b"\r\n\r\n"]
)
async def test_a_malformed_request_is_400(server: StatusServer, request_line: bytes) -> None:
    raw = await exchange(server.port, request_line)
    assert raw.startswith(b"HTTP/1.1 400 ")


async def test_a_request_head_over_8_kib_is_431(server: StatusServer) -> None:
    padding = b"X-Padding: " + b"a" * 8192 + b"\r\n"
    raw = await exchange(server.port, b"GET /healthz HTTP/1.1\r\n" + padding + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 431 ")
    # Just under the limit is fine.
    padding = b"X-Padding: " + b"a" * 8000 + b"\r\n"
    raw = await exchange(server.port, b"GET /healthz HTTP/1.1\r\n" + padding + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 200 ")


async def test_a_slow_client_gets_408_and_is_disconnected(server: StatusServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: sta")  # ... and nothing more
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert raw.endswith(b"request timeout\n")  # then end of stream: the server closed


async def test_connections_beyond_the_limit_are_closed_at_once(server: StatusServer) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
    try:
        for _, writer in idle:
            writer.write(b"GET /healthz HTTP/1.1\r\n")  # each holds a slot until the timeout
        await asyncio.sleep(0.05)
        async with asyncio.timeout(0.25):  # sooner than the idle ones' read timeout
            assert await exchange(server.port, HEALTHZ) == b""
    finally:
        for _, writer in idle:
            writer.close()
    # Once the idle connections are gone, the port serves again.
    async with asyncio.timeout(5):
        while not (await exchange(server.port, HEALTHZ)).startswith(b"HTTP/1.1 200 "):
            await asyncio.sleep(0.01)  # until the server has noticed the idle ones leave


async def test_a_standard_http_client_is_served(server: StatusServer, checks: Checks) -> None:
    checks.checks = {"kafka": False}

    def fetch(path: str) -> tuple[int, str | None, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()
        finally:
            connection.close()

    assert await asyncio.to_thread(fetch, "/healthz") == (200, "text/plain; charset=utf-8", b"ok\n")
    status, content_type, body = await asyncio.to_thread(fetch, "/readyz")
    assert (status, content_type) == (503, "application/json")
    assert orjson.loads(body)["failing"] == ["kafka"]


async def test_stop_closes_the_port_and_cuts_connections_in_progress(
    registry: CollectorRegistry, checks: Checks
) -> None:
    server = StatusServer("127.0.0.1", 0, registry, checks, read_timeout=30)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # in progress, and would be for 30 s
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await server.stop()
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
    writer.close()
    with pytest.raises(OSError, match=r"refused|Connect call failed"):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


async def test_start_twice_is_refused(server: StatusServer) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()
