"""How a csms process runs: its settings, its event loop, its stop signal, its status port.

The gateway and every worker start the same way::

    def main(args: argparse.Namespace) -> int:
        settings = load(GatewaySettings, args)  # embeds ServiceSettings as ``service``
        configure_logging("gateway", settings.service.instance_name(), settings.service.log_level)
        return run(lambda: serve(settings))

    async def serve(settings: GatewaySettings) -> int:
        registry = CollectorRegistry()
        gateway = Gateway(settings, registry)
        async with ServiceRuntime(
            settings.service, registry=registry, readiness=gateway.readiness
        ) as runtime:
            await gateway.start()
            runtime.gc.freeze(reason="started")  # the start-up objects leave the collector's view
            await runtime.stopping.wait()  # SIGTERM or SIGINT; readiness is off from here
            await gateway.drain()
        return 0

:class:`ServiceRuntime` holds what runs beside the service's own work: the
status port (its readiness adds a ``draining`` check that fails once stopping
begins), the event-loop lag monitor, the GC policy and the signal handlers. A
second SIGTERM or SIGINT while draining exits at once with 128 + the signal
number.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import resource
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

import uvloop
from prometheus_client import CollectorRegistry

from contracts.service.gc_policy import GcPolicy
from contracts.service.loop_lag import LoopLagMonitor
from contracts.service.metrics import ProcessMetrics
from contracts.service.status import Readiness, StatusServer
from contracts.settings import setting

__all__ = [
    "ServiceRuntime",
    "ServiceSettings",
    "Stopping",
    "raise_open_file_limit",
    "run",
    "start_retrying",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """The settings every csms process shares; each service embeds them as a field."""

    instance: str = setting(
        "",
        "This process's name in logs (empty: the host name, the pod name in Kubernetes)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = setting(
        "INFO", "Log level; DEBUG also un-mutes aiokafka and websockets", flag="--log-level"
    )
    status_host: str = setting(
        "0.0.0.0", "Address of the status port (/healthz, /readyz, /metrics)"
    )
    status_port: int = setting(
        9100, "Port of /healthz, /readyz and /metrics (0: any free port)", flag="--status-port"
    )
    status_read_timeout: float = setting(
        5.0, "Seconds a status-port client has to send its request and read the answer"
    )
    status_max_connections: int = setting(
        64, "Concurrent status-port connections; more are closed at once"
    )
    loop_lag_interval: float = setting(0.25, "Seconds between two event-loop lag samples")
    loop_lag_window: float = setting(
        10.0, "Seconds of the window whose largest lag csms_event_loop_lag_max_seconds shows"
    )
    gc_threshold_gen0: int = setting(
        10_000, "GC generation-0 threshold: net allocations before a young collection (Python: 700)"
    )
    gc_threshold_gen1: int = setting(
        10, "GC generation-1 threshold: young collections per generation-1 collection (Python: 10)"
    )
    gc_threshold_gen2: int = setting(
        100, "GC generation-2 threshold: generation-1 collections per full one (Python: 10)"
    )
    gc_freeze: bool = setting(
        True, "Freeze long-lived objects out of the collector's view (gc.freeze)"
    )
    gc_freeze_growth: int = setting(
        50_000,
        "Tracked objects outside the frozen generation that trigger a collection and a freeze",
    )
    gc_freeze_interval: float = setting(
        5.0, "Seconds between two counts of the unfrozen objects (see CSMS_GC_FREEZE_GROWTH)"
    )

    def instance_name(self) -> str:
        """``instance``, or the host name when it is empty."""
        return self.instance or socket.gethostname()


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; returns the limit now.

    Container runtimes often start processes at a soft limit of 1024, far below
    the ~20,000 websockets a gateway holds; the hard limit is what the operator
    granted.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a new uvloop event loop and return its result.

    A factory rather than a coroutine, so that nothing asyncio-bound is created
    before the loop exists. (``uvloop.install()`` is not used: event-loop
    policies are deprecated from Python 3.14.)
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def start_retrying(
    start: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    stopping: Stopping,
    *,
    retry_on: tuple[type[BaseException], ...],
    logger: logging.Logger,
    event: str,
) -> bool:
    """Run ``start`` until it succeeds, closing and waiting 0.5 s doubling to 10 s between tries.

    A try that fails with one of ``retry_on`` (a Kafka that cannot be reached:
    ``KafkaError``, ``OSError``, ``TimeoutError``) logs ``event`` (WARNING) and is
    tried again; any other error propagates. Returns False when ``stopping`` is
    set before a try succeeded.
    """
    delay = 0.5
    while not stopping.is_set():
        try:
            await start()
            return True
        except retry_on as exc:
            logger.warning(event, extra={"error": repr(exc)})
            with contextlib.suppress(Exception):
                await close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, 10.0)
    return False


class Stopping:
    """The process's stop request: set by the first SIGTERM/SIGINT or by :meth:`set`.

    A second signal after the first exits at once through ``exit`` (default
    ``os._exit``) with status 128 + the signal number, for an operator whose
    drain is stuck. ``install()`` needs the running loop and the main thread.
    """

    def __init__(self, *, exit: Callable[[int], object] = os._exit) -> None:
        self._event = asyncio.Event()
        self._exit = exit
        self._installed: list[tuple[asyncio.AbstractEventLoop, int]] = []
        self.reason: str | None = None

    def install(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal, signum)
            self._installed.append((loop, signum))

    def uninstall(self) -> None:
        while self._installed:
            loop, signum = self._installed.pop()
            loop.remove_signal_handler(signum)

    def set(self, reason: str) -> None:
        """Ask the process to stop (a fatal error in a task, say); the first reason is kept."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._event.is_set():
            logger.warning("service.forced_exit", extra={"signal": name})
            self._exit(128 + signum)
            return
        logger.info("service.stopping", extra={"signal": name})
        self.set(name)


class ServiceRuntime:
    """Runs the status port, lag monitor, GC policy and signal handlers; an async context.

    Entering installs the signal handlers and the GC policy (which freezes the
    start-up objects), starts the periodic tasks and the status port. Exiting
    undoes it all, so that probes are answered until the drained service
    returns. ``handle_signals=False`` leaves the signals alone, for a service
    embedded in a test or in a thread other than the main one (set
    ``stopping`` yourself then).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        registry: CollectorRegistry,
        readiness: Readiness,
        stopping: Stopping | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.handle_signals = handle_signals
        self.stopping = stopping or Stopping()
        self.metrics = ProcessMetrics(registry)
        self.gc = GcPolicy(
            self.metrics,
            thresholds=(
                settings.gc_threshold_gen0,
                settings.gc_threshold_gen1,
                settings.gc_threshold_gen2,
            ),
            freeze=settings.gc_freeze,
            freeze_growth=settings.gc_freeze_growth,
            check_interval=settings.gc_freeze_interval,
        )
        self.loop_lag = LoopLagMonitor(
            self.metrics, interval=settings.loop_lag_interval, window=settings.loop_lag_window
        )
        self.status = StatusServer(
            settings.status_host,
            settings.status_port,
            registry,
            self.readiness,
            read_timeout=settings.status_read_timeout,
            max_connections=settings.status_max_connections,
        )
        self._service_readiness = readiness
        self.open_files = 0  # the soft open-file limit, once entered
        self._tasks: list[asyncio.Task[None]] = []

    def readiness(self) -> Mapping[str, bool]:
        """The service's checks, plus ``draining``, which fails once stopping has begun."""
        checks = dict(self._service_readiness())
        checks["draining"] = not self.stopping.is_set()
        return checks

    async def __aenter__(self) -> ServiceRuntime:
        self.open_files = raise_open_file_limit()
        if self.handle_signals:
            self.stopping.install()
        self.gc.install()
        self._tasks = [
            asyncio.create_task(self.loop_lag.run(), name="csms-loop-lag"),
            asyncio.create_task(self.gc.maintain(), name="csms-gc-policy"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        try:
            await self.status.start()
        except BaseException:
            await self._undo()
            raise
        logger.info(
            "service.started",
            extra={
                "status_port": self.status.port,
                "gc_thresholds": list(self.gc.thresholds),
                "gc_freeze": self.gc.freeze_enabled,
            },
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._undo()
        logger.info("service.stopped", extra={"reason": self.stopping.reason})

    async def _undo(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.status.stop()
        self.gc.uninstall()
        self.stopping.uninstall()

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "service.task_failed",
                extra={"task": task.get_name()},
                exc_info=task.exception(),
            )
