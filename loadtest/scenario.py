"""Scenarios: what a simulated fleet does, read from a TOML file or taken from the built-ins.

A scenario is TOML (``tomllib`` is in the standard library, comments are
allowed, and nesting stays shallow). Every table is optional except that a
fleet with nothing to do is refused::

    name = "steady"
    description = "Booted stations heartbeating, with a steady mix of routine calls"
    duration = "60s"          # numbers are seconds; strings take ms, s, m, h
    call_timeout = "30s"      # no answer within this: the call counts as a timeout

    [stations]
    count = 100               # --stations overrides it
    ocpp = { "1.6" = 3, "2.0.1" = 1 }   # version mix, relative weights
    connectors = 2
    connect_rate = 200        # new connections per second; 0: all at once
    boot = true               # BootNotification then a StatusNotification per connector

    [heartbeat]
    interval = "60s"          # per station, phases spread evenly

    [calls]                   # open-loop calls at a fixed rate on top of the above
    rate = 50                 # calls per second for the whole fleet (--rate overrides it)
    # interval = "2s"         # ... or per station: rate = stations / interval
    arrival = "poisson"       # or "uniform"
    mix = { MeterValues = 4, Heartbeat = 4, StatusNotification = 2 }
    sampled_values = 4        # sampled values in each MeterValues

    [transactions]            # authorize, start, meter values, stop
    every = "5m"              # a station starts one on average this often (exponential)
    duration = "2m"
    meter_interval = "30s"
    authorize = true
    id_tag = "LT-TAG-{n}"     # {n} is the station's number

    [aligned]                 # clock-aligned meter readings: everyone at hh:00, hh:15, ...
    interval = "15m"
    spread = "1s"             # readings leave within this after the boundary
    sampled_values = 4

    [reconnect]               # every station drops its connection and reconnects
    at = ["30s"]
    spread = "0s"             # reconnects spread over this (0: all at once)

:func:`parse` checks everything and raises :class:`ScenarioError` with the
file, the key and what was expected, e.g. ``steady.toml: calls.rate: expected a
number >= 0, got "fast"``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from contracts.ocpp import VERSIONS

__all__ = [
    "CALL_ACTIONS",
    "Aligned",
    "Calls",
    "Heartbeat",
    "Reconnect",
    "Scenario",
    "ScenarioError",
    "Stations",
    "Transactions",
    "load",
    "parse",
    "parse_duration",
]

# The actions a [calls] mix may name: what a station sends on its own initiative.
CALL_ACTIONS: Final = (
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)

Arrival = Literal["poisson", "uniform"]

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the source, the key and the problem."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stations:
    count: int = 100
    ocpp: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"1.6": 1.0})
    connectors: int = 2
    connect_rate: float = 0.0
    boot: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Heartbeat:
    interval: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Calls:
    rate: float | None = None  # whole fleet, calls per second
    interval: float | None = None  # per station; exactly one of rate and interval is set
    arrival: Arrival = "poisson"
    mix: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"Heartbeat": 1.0})
    sampled_values: int = 4

    def fleet_rate(self, stations: int) -> float:
        """Calls per second for a fleet of ``stations``."""
        if self.rate is not None:
            return self.rate
        assert self.interval is not None
        return stations / self.interval


@dataclasses.dataclass(frozen=True, kw_only=True)
class Transactions:
    every: float
    duration: float
    meter_interval: float = 60.0
    authorize: bool = True
    id_tag: str = "LT-TAG-{n}"
    sampled_values: int = 4


@dataclasses.dataclass(frozen=True, kw_only=True)
class Aligned:
    interval: float
    spread: float = 1.0
    sampled_values: int = 4


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reconnect:
    at: tuple[float, ...]
    spread: float = 0.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str = ""
    duration: float = 60.0
    call_timeout: float = 30.0
    stations: Stations = dataclasses.field(default_factory=Stations)
    heartbeat: Heartbeat | None = None
    calls: Calls | None = None
    transactions: Transactions | None = None
    aligned: Aligned | None = None
    reconnect: Reconnect | None = None


# --------------------------------------------------------------------------- reading

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string: ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError(f'expected a duration such as 30, "500ms", "30s", "5m", got {value!r}')
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return seconds


class _Table:
    """One TOML table being read: each key is taken once; leftovers are unknown keys."""

    def __init__(self, source: str, path: str, data: object) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise self.error(path or "the scenario", f"expected a table, got {data!r}")
        self.data: dict[str, Any] = dict(data)
        self.known: list[str] = []

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key}: {message}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str, default: T, convert: Callable[[Any], T]) -> T:
        self.known.append(name)
        if name not in self.data:
            return default
        value = self.data.pop(name)
        try:
            return convert(value)
        except ValueError as exc:
            raise self.error(self.key(name), str(exc)) from None

    def table(self, name: str) -> _Table | None:
        self.known.append(name)
        if name not in self.data:
            return None
        return _Table(self.source, self.key(name), self.data.pop(name))

    def done(self) -> None:
        if self.data:
            unknown = sorted(self.data)[0]
            raise self.error(
                self.key(unknown),
                "unknown key; expected one of " + ", ".join(sorted(self.known)),
            )


def _number(minimum: float, *, above: bool = False) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (value <= minimum if above else value < minimum):
            sign = ">" if above else ">="
            raise ValueError(f"expected a number {sign} {minimum:g}, got {value!r}")
        return float(value)

    return convert


def _integer(minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
        return value

    return convert


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0, got {value!r}")
    return seconds


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _weights(allowed: tuple[str, ...], what: str) -> Callable[[Any], dict[str, float]]:
    def convert(value: Any) -> dict[str, float]:
        if not isinstance(value, dict) or not value:
            raise ValueError(f"expected a table of {what} = weight, got {value!r}")
        weights = {}
        for name, weight in value.items():
            if name not in allowed:
                raise ValueError(f"{name!r} is not one of " + ", ".join(allowed))
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ValueError(f"the weight of {name!r} must be a number >= 0, got {weight!r}")
            weights[name] = float(weight)
        if sum(weights.values()) <= 0:
            raise ValueError("at least one weight must be above 0")
        return weights

    return convert


def _times(value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, list) else [value]
    times = tuple(sorted(parse_duration(item) for item in items))
    if not times:
        raise ValueError("expected at least one time")
    return times


def _arrival(value: Any) -> Arrival:
    if value == "poisson":
        return "poisson"
    if value == "uniform":
        return "uniform"
    raise ValueError(f'expected "poisson" or "uniform", got {value!r}')


def _template(value: Any) -> str:
    text = _string(value)
    try:
        text.format(n=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a template with only {{n}}: {exc}") from None
    return text


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """The scenario in ``text`` (TOML); ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    top = _Table(source, "", data)
    name = top.take("name", Path(source).stem, _string)
    description = top.take("description", "", _string)
    duration = top.take("duration", 60.0, _positive_duration)
    call_timeout = top.take("call_timeout", 30.0, _positive_duration)

    stations = Stations()
    if (t := top.table("stations")) is not None:
        stations = Stations(
            count=t.take("count", stations.count, _integer(1)),
            ocpp=t.take("ocpp", stations.ocpp, _weights(VERSIONS, "OCPP version")),
            connectors=t.take("connectors", stations.connectors, _integer(1)),
            connect_rate=t.take("connect_rate", 0.0, _number(0)),
            boot=t.take("boot", True, _boolean),
        )
        t.done()

    heartbeat = None
    if (t := top.table("heartbeat")) is not None:
        heartbeat = Heartbeat(interval=t.take("interval", 60.0, _positive_duration))
        t.done()

    calls = None
    if (t := top.table("calls")) is not None:
        rate = t.take("rate", None, _number(0))
        interval = t.take("interval", None, _positive_duration)
        if (rate is None) == (interval is None):
            raise t.error(
                t.path, "give exactly one of rate (whole fleet) and interval (per station)"
            )
        calls = Calls(
            rate=rate,
            interval=interval,
            arrival=t.take("arrival", "poisson", _arrival),
            mix=t.take("mix", {"Heartbeat": 1.0}, _weights(CALL_ACTIONS, "action")),
            sampled_values=t.take("sampled_values", 4, _integer(1)),
        )
        t.done()

    transactions = None
    if (t := top.table("transactions")) is not None:
        transactions = Transactions(
            every=t.take("every", 300.0, _positive_duration),
            duration=t.take("duration", 120.0, _positive_duration),
            meter_interval=t.take("meter_interval", 60.0, _positive_duration),
            authorize=t.take("authorize", True, _boolean),
            id_tag=t.take("id_tag", "LT-TAG-{n}", _template),
            sampled_values=t.take("sampled_values", 4, _integer(1)),
        )
        t.done()

    aligned = None
    if (t := top.table("aligned")) is not None:
        aligned = Aligned(
            interval=t.take("interval", 900.0, _positive_duration),
            spread=t.take("spread", 1.0, parse_duration),
            sampled_values=t.take("sampled_values", 4, _integer(1)),
        )
        t.done()

    reconnect = None
    if (t := top.table("reconnect")) is not None:
        if "at" not in t.data:
            raise t.error(t.key("at"), "required: when the stations drop their connections")
        reconnect = Reconnect(
            at=t.take("at", (), _times),
            spread=t.take("spread", 0.0, parse_duration),
        )
        t.done()
    top.done()

    traffic = (heartbeat, calls, transactions, aligned, reconnect)
    if not stations.boot and all(t is None for t in traffic):
        raise ScenarioError(f"{source}: the stations have nothing to do: no boot and no traffic")
    return Scenario(
        name=name,
        description=description,
        duration=duration,
        call_timeout=call_timeout,
        stations=stations,
        heartbeat=heartbeat,
        calls=calls,
        transactions=transactions,
        aligned=aligned,
        reconnect=reconnect,
    )


def load(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or the scenario in the TOML file at that path."""
    from loadtest.builtin import BUILTIN

    if name_or_path in BUILTIN:
        return parse(BUILTIN[name_or_path], f"built-in {name_or_path}")
    path = Path(name_or_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(
            f"{name_or_path}: neither a built-in scenario ({', '.join(BUILTIN)}) "
            f"nor a readable file: {exc.strerror}"
        ) from None
    return parse(text, str(path))
