"""A real Prometheus Alertmanager for tests, on free loopback ports, and a webhook receiver.

The binary is the pinned Debian package that ``make unit`` unpacks into
``.tools/alertmanager`` (tests/support/install_alertmanager.py). A missing
binary fails the test with what to run; it is never skipped.

:class:`Alertmanager` starts it with its own storage folder, clustering off
(``--cluster.listen-address=`` empty) and a configuration whose one route
sends every group to a webhook URL, after ``group_wait`` 100 ms, resolved
alerts included. :class:`Receiver` is an HTTP server in a thread that records
every POST it gets (and can be told to answer the first ones with 500).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / ".tools" / "alertmanager"
BINARY = FOLDER / "alertmanager"  # run from FOLDER: see tests/support/install_alertmanager.py

__all__ = ["BINARY", "Alertmanager", "Delivery", "Receiver", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary() -> Path:
    if not BINARY.exists():
        pytest.fail(
            f"Alertmanager is not installed at {BINARY.relative_to(ROOT)}: run `make unit`, which "
            "fetches Debian's prometheus-alertmanager first "
            "(tests/support/install_alertmanager.py; needs apt-get and dpkg-deb)"
        )
    return BINARY


_CONFIG = """\
route:
  receiver: test
  group_by: [alertname, station_id]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


class Alertmanager:
    """``prometheus-alertmanager`` as a process of the test's own; a context manager."""

    def __init__(self, webhook_url: str) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="alertmanager-")
        folder = Path(self._folder.name)
        (folder / "alertmanager.yml").write_text(_CONFIG.format(url=webhook_url))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (folder / "alertmanager.log").open("wb")
        self._args = [
            str(binary()),
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> str:
        return (Path(self._folder.name) / "alertmanager.log").read_text(errors="replace")

    def __enter__(self) -> Alertmanager:
        self.process = subprocess.Popen(
            self._args,
            cwd=FOLDER,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return self
            time.sleep(0.05)
        output = self.output
        self.__exit__(None, None, None)
        pytest.fail(f"Alertmanager did not become ready within 20 s; its output:\n{output}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._folder.cleanup()

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts Alertmanager holds (active, silenced, inhibited)."""
        query = "&".join(f"filter={k}%3D%22{v}%22" for k, v in filters.items())
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as answer:
            found: list[dict[str, Any]] = json.loads(answer.read())
            return found


class Delivery:
    """One POST a :class:`Receiver` got: its headers and body."""

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server in a thread recording every POST; the first ``fail_first`` get a 500."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.deliveries: list[Delivery] = []
        self.failures = 0
        self.fail_first = fail_first
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner._lock:
                    failing = owner.failures < owner.fail_first
                    if failing:
                        owner.failures += 1
                    else:
                        owner.deliveries.append(
                            Delivery({k.lower(): v for k, v in self.headers.items()}, body)
                        )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def wait_for(
        self, predicate: Callable[[list[Delivery]], bool], what: str, timeout: float = 20
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get {what} within {timeout:g} s: {got!r}")
