"""JSON logs: one object per line on stderr, with the fields an operator filters on.

Every line is a JSON object::

    {"ts": "2026-03-01T12:00:00.123Z", "level": "INFO", "logger": "gateway.server",
     "msg": "station.connected", "service": "gateway", "instance": "gateway-7d9f-abcde",
     "station_id": "CP-1", "remote": "10.0.0.7", "ocpp_version": "ocpp2.0.1"}

``msg`` is a short, stable event name (``station.connected``,
``kafka.producer_stalled``), never a sentence with values pasted in: the values
go in structured fields passed with ``extra={...}``, so that a log query is
``msg = "station.disconnected" and close_code = 1006`` rather than a regular
expression. ``exc`` holds the traceback text when the record carries an
exception. A value that JSON cannot represent is written as its ``str()``;
logging never fails because of a field.

The project's rule, after structlog's "canonical log lines": **never a line per
message at INFO.** A station's connection produces one line when it opens and
one when it closes (with its counters and ``duration_s``); per-message detail
is DEBUG, and volume belongs in metrics. At 20,000 stations a line per
Heartbeat would be the busiest thing the process does.

The level is the setting ``CSMS_LOG_LEVEL`` (default ``INFO``, see
:class:`contracts.service.runtime.ServiceSettings`). The chatty third-party
loggers in :data:`QUIET_LOGGERS` are held at WARNING unless the level is DEBUG,
and what they say is written once per :data:`REPEAT_INTERVAL` per logger and
message (:class:`RepeatFilter`): while a broker is down aiokafka says the same
thing at ERROR about ten times a second per client, and csms's own lines
(``kafka.connect_failed``...) already report the outage once.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

__all__ = ["QUIET_LOGGERS", "REPEAT_INTERVAL", "JsonFormatter", "RepeatFilter", "configure_logging"]

QUIET_LOGGERS = ("aiokafka", "websockets")
"""Third-party loggers held at WARNING unless the level is DEBUG."""

REPEAT_INTERVAL = 10.0
"""Seconds in which a third-party logger's same message is written once."""

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    [*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName"]
)
_OPTIONS = orjson.OPT_NON_STR_KEYS


def _as_text(value: Any) -> str:
    """orjson's fallback for a value it cannot encode: its ``str()``, whatever happens."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _encode_field(value: Any) -> Any:
    """A field that orjson can always encode (it refuses, e.g., integers beyond 64 bits)."""
    try:
        return orjson.Fragment(orjson.dumps(value, default=_as_text, option=_OPTIONS))
    except orjson.JSONEncodeError:
        return _as_text(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring for the fields)."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "instance": self.instance,
        }
        for key, value in vars(record).items():
            # The fixed fields win over an ``extra`` of the same name.
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(line, default=_as_text, option=_OPTIONS).decode()
        except orjson.JSONEncodeError:
            safe = {key: _encode_field(value) for key, value in line.items()}
            return orjson.dumps(safe, option=_OPTIONS).decode()


class RepeatFilter(logging.Filter):
    """Lets a :data:`QUIET_LOGGERS` message through once per ``interval`` seconds.

    The same message is the same logger and format string (its values may differ:
    "Unable connect to node with id %s"). The first line after a quiet interval
    carries ``repeated``: how many were held back since the last one written.
    Records of other loggers always pass. ``clock`` is injected for tests.
    """

    def __init__(
        self, interval: float = REPEAT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # written at, held back

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] not in QUIET_LOGGERS:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.repeated = last[1]
        self._last[key] = (now, 0)
        return True


def configure_logging(
    service: str,
    instance: str,
    level: str = "INFO",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (default: stderr) as JSON lines.

    Replaces the root logger's handlers, so calling it again reconfigures rather
    than duplicating lines. ``level`` is a level name, in any case. Returns the
    installed handler.
    """
    levels = logging.getLevelNamesMapping()
    name = level.upper()
    if name not in levels:
        raise ValueError(f"unknown log level {level!r}")
    # The record attributes no line carries are not gathered (the logging HOWTO's
    # "Optimization"): the caller's frame, thread and process. A quarter of the cost
    # of a line, which matters when thousands of stations disconnect at once.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter(service, instance))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levels[name])
    quiet = logging.NOTSET if levels[name] <= logging.DEBUG else logging.WARNING
    for logger_name in QUIET_LOGGERS:
        logging.getLogger(logger_name).setLevel(quiet)
    return handler
