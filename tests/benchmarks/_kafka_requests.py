"""Where a Kafka broker's CPU goes: the requests each client sends it, and its threads' CPU.

:class:`RequestCounter` is a TCP relay in front of one broker, on a thread of
the benchmark's own process: the broker advertises the relay's port, so every
client's connections pass through it, and it counts each request by client id
and API (the request header: API key, version, correlation id, client id)
without changing a byte. It adds a hop to every request, so benchmarks count
requests in a run of their own, not in the rounds whose CPU they report.

:func:`thread_cpu` reads the CPU time of each of a JVM's threads from
``/proc/PID/task``; :func:`thread_groups` sums them by name (Kafka's network
threads, request handlers, KRaft's threads, the JIT compiler, the collector).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import struct
import subprocess
import threading
from pathlib import Path

from contracts.bus import kafka_dist
from contracts.bus.broker import free_port

__all__ = ["API_NAMES", "RequestCounter", "thread_cpu", "thread_groups"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# the API keys csms's clients and Kafka's own send (the Kafka protocol's numbering)
API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    15: "DescribeGroups",
    16: "ListGroups",
    17: "SaslHandshake",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
    32: "DescribeConfigs",
    60: "DescribeCluster",
}


class RequestCounter:
    """Relays ``127.0.0.1:port`` to the broker's port and counts requests by (client id, API).

    Start it before the broker (its port goes into ``advertised.listeners``),
    point it at the broker with :meth:`target`, read :meth:`snapshot` before
    and after a window. A context manager; the relay runs on a thread.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._target = 0
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-relay", daemon=True)

    def target(self, port: int) -> None:
        self._target = port

    def snapshot(self) -> collections.Counter[tuple[str, str]]:
        with self._lock:
            return collections.Counter(self._counts)

    def __enter__(self) -> RequestCounter:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client_w.close()
            return
        back = asyncio.ensure_future(self._pipe(broker_r, client_w))
        try:
            while True:
                head = await client_r.readexactly(4)
                (size,) = struct.unpack(">i", head)
                body = await client_r.readexactly(size)
                self._count(body)
                broker_w.write(head + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            broker_w.close()
            back.cancel()
            client_w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
        writer.close()

    def _count(self, body: bytes) -> None:
        api_key, _version, _correlation, length = struct.unpack_from(">hhih", body)
        client = body[10 : 10 + length].decode(errors="replace") if length >= 0 else ""
        api = API_NAMES.get(api_key, f"api {api_key}")
        with self._lock:
            self._counts[(client, api)] += 1


def thread_cpu(pid: int, names: dict[int, str] | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each thread of ``pid``, with its name.

    The name is the one in ``names`` (:func:`java_thread_names`), else the
    kernel's (the first 15 letters of a Java thread's name).
    """
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = (task / "stat").read_text()
            tid = int(task.name)
            name = (names or {}).get(tid) or text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            threads[tid] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return threads


def java_thread_names(pid: int) -> dict[int, str]:
    """Each thread's full Java name by its Linux thread id (``jcmd PID Thread.print``)."""
    jcmd = Path(os.path.realpath(kafka_dist.java())).with_name("jcmd")
    try:
        dump = subprocess.run(
            [str(jcmd), str(pid), "Thread.print"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        int(nid, 16): name
        for name, nid in re.findall(r'^"([^"]+)".*? nid=0x([0-9a-f]+)', dump, re.M)
    }


def thread_groups(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds between two :func:`thread_cpu` readings, summed by kernel thread name.

    Numbers in a name are dropped (``kafka-request-h`` of every handler adds up
    under one name); threads started in between count from zero.
    """
    groups: dict[str, float] = collections.defaultdict(float)
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        groups[re.sub(r"[-#]?\d+", "", name).strip(" -") or name] += spent
    return dict(sorted(groups.items(), key=lambda item: -item[1]))
