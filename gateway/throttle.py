"""Throttling of websocket handshakes: failed-login lockouts and a handshake rate per address.

RELIABILITY case 8 (CWE-307): floods of handshakes and of failed logins, per
address and per station id, are throttled, and other stations are unaffected.
Two mechanisms, both in bounded memory (least-recently-used tables with a
capacity) and both on an injected clock (seconds, monotonic):

- :class:`LoginThrottle` counts failed logins in a sliding window, per client
  address and per station id. An address or a station id that reaches its limit
  is locked out: its handshakes are refused (429) without looking at the
  password until the lockout ends.

  The per-station lockout does not apply to the address the station last
  logged in from, unless that address itself failed often enough: an attacker
  elsewhere who guesses passwords for a station id cannot keep the real
  station out (CWE-645, an overly restrictive lockout), while a station with a
  wrong password is still locked out. A success clears the station's count from
  that address; it never clears an address's count, so one good login does not
  buy an address more guesses at other stations.

- :class:`HandshakeRateLimiter` is a token bucket per client address: ``rate``
  handshakes a second with bursts of ``burst``, for everything, successful or
  not. Stations of a NAT'ed site share one address, which is why the default is
  generous.

Keys are whatever the caller passes; the authenticator passes an IPv6 address
as its /64 network (one host usually owns a whole /64), see
:func:`gateway.auth.throttle_key`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Clock", "HandshakeRateLimiter", "LoginThrottle"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A dict that forgets the least recently used entry beyond ``capacity``."""

    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class _Failures:
    """Failure times within the window (at most ``limit`` of them) and the end of a lockout."""

    __slots__ = ("locked_until", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.locked_until = 0.0

    def remaining(self, now: float) -> float:
        """Seconds left of the lockout; 0.0 when not locked out."""
        return self.locked_until - now if self.locked_until > now else 0.0

    def add(self, now: float, *, limit: int, window: float, lockout: float) -> bool:
        """Count a failure; True when it starts a lockout."""
        self.times = [t for t in self.times if now - t < window]
        self.times.append(now)
        if len(self.times) >= limit:
            self.times.clear()
            self.locked_until = now + lockout
            return True
        return False

    def idle(self, now: float, window: float) -> bool:
        return self.remaining(now) == 0.0 and all(now - t >= window for t in self.times)


class _Station:
    """A station id's failures: from anywhere, and from the address it last logged in from."""

    __slots__ = ("anywhere", "from_known_address", "known_address")

    def __init__(self) -> None:
        self.anywhere = _Failures()
        self.known_address: str | None = None
        self.from_known_address = _Failures()


class LoginThrottle:
    """Failed-login counts and lockouts per client address and per station id.

    ``max_failures_per_station`` / ``max_failures_per_address`` failures within
    ``window`` seconds lock the station id / the address out for ``lockout``
    seconds; 0 disables that limit. Each table keeps at most ``capacity`` keys.
    """

    def __init__(
        self,
        *,
        max_failures_per_station: int,
        max_failures_per_address: int,
        window: float,
        lockout: float,
        capacity: int,
        clock: Clock,
    ) -> None:
        self.max_failures_per_station = max_failures_per_station
        self.max_failures_per_address = max_failures_per_address
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._addresses: _Lru[str, _Failures] = _Lru(capacity)
        self._stations: _Lru[str, _Station] = _Lru(capacity)

    def address_locked(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0.0 when it may now."""
        failures = self._addresses.get(address)
        return 0.0 if failures is None else failures.remaining(self.clock())

    def station_locked(self, station_id: str, address: str) -> float:
        """Seconds until ``station_id`` may be tried again from ``address``; 0.0 when it may now."""
        station = self._stations.get(station_id)
        if station is None:
            return 0.0
        now = self.clock()
        if address == station.known_address:
            return station.from_known_address.remaining(now)
        return station.anywhere.remaining(now)

    def failed(self, address: str, station_id: str | None) -> None:
        """Count a failed login from ``address``, for ``station_id`` when it is a known station."""
        now = self.clock()
        if self.max_failures_per_address > 0:
            failures = self._addresses.get(address)
            if failures is None:
                failures = _Failures()
                self._addresses.put(address, failures)
            if failures.add(
                now, limit=self.max_failures_per_address, window=self.window, lockout=self.lockout
            ):
                log.warning(
                    "auth.address_locked_out",
                    extra={"remote": address, "lockout_s": self.lockout},
                )
        if station_id is None or self.max_failures_per_station <= 0:
            return
        station = self._stations.get(station_id)
        if station is None:
            station = _Station()
            self._stations.put(station_id, station)
        limit = self.max_failures_per_station
        started = station.anywhere.add(now, limit=limit, window=self.window, lockout=self.lockout)
        if address == station.known_address:
            started = (
                station.from_known_address.add(
                    now, limit=limit, window=self.window, lockout=self.lockout
                )
                or started
            )
        if started:
            log.warning(
                "auth.station_locked_out",
                extra={"station_id": station_id, "remote": address, "lockout_s": self.lockout},
            )

    def succeeded(self, address: str, station_id: str) -> None:
        """A station logged in from ``address``: remember the address, clear its count there."""
        if self.max_failures_per_station <= 0:
            return
        station = self._stations.get(station_id)
        if station is None:
            station = _Station()
            self._stations.put(station_id, station)
        if station.known_address != address:
            station.known_address = address
            station.from_known_address = _Failures()
        else:
            station.from_known_address.times.clear()
        failures = self._addresses.get(address)
        if failures is not None and failures.idle(self.clock(), self.window):
            self._addresses.pop(address)

    @property
    def tracked(self) -> tuple[int, int]:
        """How many (addresses, station ids) the tables hold now."""
        return len(self._addresses), len(self._stations)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class HandshakeRateLimiter:
    """A token bucket per client address: ``rate`` handshakes a second, bursts of ``burst``.

    ``rate`` 0 disables the limit. At most ``capacity`` addresses are tracked;
    a forgotten address starts again with a full bucket.
    """

    def __init__(self, *, rate: float, burst: int, capacity: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.clock = clock
        self._buckets: _Lru[str, _Bucket] = _Lru(capacity)

    def admit(self, address: str) -> float:
        """Take a token for a handshake from ``address``: 0.0 if admitted, else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets.put(address, bucket)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @property
    def tracked(self) -> int:
        return len(self._buckets)
