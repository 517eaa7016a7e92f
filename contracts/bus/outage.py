"""One warning per outage, not one per retry.

While Kafka is away, csms's clients retry every 100 ms to 1 s. Logging each
failed attempt would put ten lines a second per client into the logs, all
saying the same thing. An :class:`Outage` warns at the first failure and then
every ``interval`` seconds while failures go on, with how many attempts failed
and for how long; when an attempt succeeds again it logs the end once, at INFO.
Failures more than ``interval`` apart are separate outages.
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["Outage"]

INTERVAL = 10.0  # seconds between warnings while an outage lasts


class Outage:
    def __init__(
        self,
        logger: logging.Logger,
        failed: str,
        recovered: str,
        *,
        interval: float = INTERVAL,
        **extra: Any,
    ) -> None:
        self.logger = logger
        self.failed_event = failed
        self.recovered_event = recovered
        self.interval = interval
        self.extra = extra  # fields of every line (which topic, which broker)
        self.since: float | None = None  # the outage's first failure; None while all is well
        self.attempts = 0
        self._attempted_at = 0.0
        self._logged_at = 0.0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        if self.since is None or now - self._attempted_at > self.interval:
            self.since, self.attempts, self._logged_at = now, 0, now - self.interval
        self.attempts += 1
        self._attempted_at = now
        if now - self._logged_at >= self.interval:
            self._logged_at = now
            self.logger.warning(
                self.failed_event,
                extra={**self.extra, "error": repr(error), **self._figures(now)},
            )

    def succeeded(self) -> None:
        if self.since is None:
            return
        self.logger.info(self.recovered_event, extra={**self.extra, **self._figures()})
        self.since = None

    def _figures(self, now: float | None = None) -> dict[str, Any]:
        assert self.since is not None
        elapsed = (time.monotonic() if now is None else now) - self.since
        return {"failed_attempts": self.attempts, "outage_s": round(elapsed, 1)}
