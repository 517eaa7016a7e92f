"""Station authentication at the websocket handshake: who is connecting, and may they.

During each handshake the server builds an :class:`Attempt` (the URL identity,
the peer address, the ``Authorization`` header, whether the socket is TLS and
the verified client certificate, the request headers) and asks
:meth:`Authenticator.authenticate` for a :class:`Decision`. The authenticator
does no I/O: it reads the in-memory station registry, hashes at most a few
passwords (about 1.5 µs each, see :mod:`gateway.credentials`) and updates the
throttling tables (:mod:`gateway.throttle`), so a reconnect storm of tens of
thousands of handshakes costs little.

The rules, in the order they are applied (docs/security.md; ADR 0005):

=====================================================  =====  ===================  ======  =====
situation                                              HTTP   reason               event   count
=====================================================  =====  ===================  ======  =====
registry not read to the end yet                       503    not_ready
handshakes from the address above the rate             429    rate_limited
address locked out after failed logins                 429    throttled
unknown station id (RELIABILITY 1)                     404    unknown_station
station id locked out after failed logins              429    throttled
station disabled                                       403    disabled
wrong transport for the profile (RELIABILITY 4)        403    profile_mismatch     yes
profile 1/2: no or malformed Basic credentials         401    missing_credentials  yes     yes
profile 1/2: username is not the identity (case 2)     401    username_mismatch    yes     yes
profile 1/2: wrong password (case 3)                   401    bad_credentials      yes     yes
profile 3: certificate CN/O not this station (case 5)  403    certificate_mismatch yes     yes
=====================================================  =====  ===================  ======  =====

"event" is :attr:`Decision.security_event` (publish a rejected event); "count"
means the failure counts towards the lockouts. Every 401 carries
``WWW-Authenticate: Basic realm="csms"``; every 429 and 503 a ``Retry-After``.

The transport a profile needs (A00.FR.002: the CSMS terminates a connection
made with another profile than the station's): profile 1 plain ``ws://``;
profile 2 TLS; profile 3 TLS with a client certificate. The check comes before
the password is looked at, so a plain connection never tells anyone whether a
profile-2 password was right; that password did travel in clear text, which is
why the mismatch is a security event (rotate it).

Behind a TLS-terminating proxy (``trusted_proxies``, RELIABILITY 7), the client
address, the scheme and the client certificate come from the proxy's headers,
and only when the connection comes from a trusted proxy address; see
:meth:`Authenticator.peer`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, get_args

from contracts.envelopes import SecurityProfile, StationRecord
from contracts.settings import SettingsError, setting
from gateway.credentials import basic_credentials, verify_password
from gateway.throttle import Clock, HandshakeRateLimiter, LoginThrottle

__all__ = [
    "FAILED_LOGIN_REASONS",
    "REASONS",
    "Attempt",
    "AuthSettings",
    "Authenticator",
    "CertificateSubject",
    "Decision",
    "Peer",
    "Reason",
    "StationLookup",
    "parse_distinguished_name",
    "throttle_key",
]

log = logging.getLogger(__name__)

Reason = Literal[
    "ok",
    "not_ready",
    "rate_limited",
    "throttled",
    "unknown_station",
    "disabled",
    "profile_mismatch",
    "missing_credentials",
    "username_mismatch",
    "bad_credentials",
    "certificate_mismatch",
]
REASONS: tuple[Reason, ...] = get_args(Reason)
"""Every :attr:`Decision.reason`, e.g. to initialise a metric's label values."""
FAILED_LOGIN_REASONS: frozenset[Reason] = frozenset(
    ["missing_credentials", "username_mismatch", "bad_credentials", "certificate_mismatch"]
)
"""The refusals that are failed logins: they count towards the lockouts."""

IPV6_THROTTLE_PREFIX = 64
"""IPv6 clients are throttled per /64 network: one host usually holds a whole /64."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """How the gateway authenticates stations (docs/security.md)."""

    allow_unknown_stations: bool = setting(
        False,
        "Development only: accept station ids missing from the registry, without credentials",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "TLS-offload proxies (comma-separated addresses or CIDR networks) whose X-Forwarded-* "
        "and client-certificate headers are believed; empty: no proxy is trusted",
    )
    tls_organization: str = setting(
        "",
        "Profile 3: the O (organization) the station certificate must carry, the CSO name "
        "(A00.FR.404); empty: O is not checked",
    )
    max_failed_logins: int = setting(
        5, "Failed logins for one station id within the window before it is locked out (0: off)"
    )
    max_failed_logins_per_address: int = setting(
        20,
        "Failed logins from one address within the window before it is locked out (0: off); "
        "higher than per station because NAT puts a site's stations behind one address",
    )
    failed_login_window: float = setting(60.0, "Window (s) in which failed logins are counted")
    login_lockout: float = setting(
        300.0, "Lockout (s): handshakes of a locked-out station id or address get 429"
    )
    handshake_rate: float = setting(
        20.0, "Handshakes per second allowed from one address, sustained (0: no limit)"
    )
    handshake_burst: int = setting(100, "Handshakes allowed from one address in a burst")
    throttle_capacity: int = setting(
        100_000, "Addresses and station ids each throttling table remembers (least recent go)"
    )
    accept_octet_passwords: bool = setting(
        True,
        "Also accept a hex OCPP 1.6 AuthorizationKey sent as the octets it encodes "
        "(1.6 security whitepaper A00.FR.205)",
    )
    forwarded_for_header: str = setting(
        "x-forwarded-for", "Offload mode: the header with the client address chain"
    )
    forwarded_proto_header: str = setting(
        "x-forwarded-proto", "Offload mode: the header with the client's scheme (https/http)"
    )
    client_verify_header: str = setting(
        "ssl-client-verify",
        "Offload mode: the header saying the proxy verified a client certificate (SUCCESS)",
    )
    client_subject_header: str = setting(
        "ssl-client-subject-dn",
        "Offload mode: the header with the client certificate's subject DN (RFC 4514)",
    )


class StationLookup(Protocol):
    """The registry as the authenticator sees it (:class:`gateway.registry.StationRegistry`)."""

    @property
    def caught_up(self) -> bool: ...

    def get(self, station_id: str, /) -> StationRecord | None: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One websocket handshake, as the server saw it."""

    station_id: str
    """The identity from the URL (already validated by :mod:`gateway.handshake`)."""
    remote_ip: str
    """The address of the TCP peer (a proxy, in offload mode)."""
    authorization: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    """Whether the socket is TLS."""
    peer_cert: Mapping[str, Any] | None = None
    """The verified client certificate: ``ssl.SSLSocket.getpeercert()``, ``None`` if none."""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """The request headers, names lower-cased (a repeated header joined with ``,``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do with the handshake."""

    accepted: bool
    http_status: int
    """101 when accepted, else the status of the refusal."""
    reason: Reason
    """A short fixed code for metrics and logs (:data:`REASONS`)."""
    security_profile: SecurityProfile | None = None
    """The station's profile when accepted; ``None`` for an unregistered station let in
    (``allow_unknown_stations``), which the ``connected`` event reports as 0."""
    station: StationRecord | None = dataclasses.field(default=None, repr=False)
    """The registry record, when the station is registered (holds the password hash)."""
    security_event: bool = False
    """Publish a security event (a ``rejected`` event) for this refusal."""
    www_authenticate: bool = False
    """Answer with ``WWW-Authenticate: Basic realm="csms"`` (every 401)."""
    retry_after: int | None = None
    """Seconds for a ``Retry-After`` header (429, 503)."""
    remote_address: str = ""
    """The client's address: the TCP peer, or the one a trusted proxy forwarded."""
    tls: bool = False
    """Whether the station reached csms over TLS (at the gateway or at a trusted proxy)."""


# --------------------------------------------------------------------------- certificates


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateSubject:
    """The subject attributes of a client certificate that profile 3 checks."""

    common_names: tuple[str, ...]
    organizations: tuple[str, ...]

    @classmethod
    def from_peer_cert(cls, cert: Mapping[str, Any] | None) -> CertificateSubject | None:
        """From ``getpeercert()``: ``{"subject": ((("commonName", "CP-1"),), ...), ...}``."""
        if not cert:
            return None
        return cls._of((name, value) for rdn in cert.get("subject", ()) for name, value in rdn)

    @classmethod
    def from_distinguished_name(cls, text: str) -> CertificateSubject | None:
        """From a subject DN as a proxy forwards it (see :func:`parse_distinguished_name`)."""
        try:
            attributes = parse_distinguished_name(text)
        except ValueError:
            return None
        return cls._of(attributes) if attributes else None

    @classmethod
    def _of(cls, attributes: Iterable[tuple[str, str]]) -> CertificateSubject:
        common_names: list[str] = []
        organizations: list[str] = []
        for name, value in attributes:
            kind = _ATTRIBUTE_NAMES.get(name.lower())
            if kind == "CN":
                common_names.append(value)
            elif kind == "O":
                organizations.append(value)
        return cls(tuple(common_names), tuple(organizations))


_ATTRIBUTE_NAMES = {
    "cn": "CN",
    "commonname": "CN",
    "2.5.4.3": "CN",
    "o": "O",
    "organizationname": "O",
    "2.5.4.10": "O",
}
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_distinguished_name(text: str) -> list[tuple[str, str]]:
    """The ``(attribute type, value)`` pairs of a DN string, in the order written.

    Two forms, the ones TLS-offload proxies forward (nginx ``$ssl_client_s_dn``):
    RFC 4514 (``CN=CP-1,O=Acme\\, Inc.,C=NL``: ``,`` or ``;`` between RDNs,
    ``+`` inside a multi-valued RDN, ``\\`` escaping a special character or two
    hex digits of UTF-8) and the legacy OpenSSL form (``/C=NL/O=Acme/CN=CP-1``).
    ``ValueError`` when it is neither.
    """
    # HTTP's optional whitespace; an unescaped space at the end of a value is dropped below,
    # an escaped one ("\\ ") is part of it
    text = text.lstrip(" \t")
    pairs: list[tuple[str, str]] = []
    if text.startswith("/"):
        for part in text.rstrip(" \t")[1:].split("/"):
            attribute, equals, text_value = part.partition("=")
            if not equals or not attribute:
                raise ValueError("not a distinguished name")
            pairs.append((attribute.strip(), text_value))
        return pairs
    i, n = 0, len(text)
    while True:
        end = text.find("=", i)
        if end < 0:
            raise ValueError("not a distinguished name")
        name = text[i:end].strip()
        if not name or any(c in name for c in ',;+"\\'):
            raise ValueError("not a distinguished name")
        i = end + 1
        while i < n and text[i] == " ":
            i += 1
        value = bytearray()
        kept = 0  # the value's length up to its last character that is not an unescaped space
        while i < n and text[i] not in ",;+":
            char = text[i]
            if char == "\\":
                pair = text[i + 1 : i + 3]
                if len(pair) == 2 and all(c in _HEX for c in pair):
                    value.append(int(pair, 16))
                    i += 3
                elif i + 1 < n:
                    value += text[i + 1].encode()
                    i += 2
                else:
                    raise ValueError("a distinguished name ends in a lone backslash")
                kept = len(value)
                continue
            value += char.encode()
            if char != " ":
                kept = len(value)
            i += 1
        pairs.append((name, bytes(value[:kept]).decode("utf-8", "replace")))
        if i >= n:
            return pairs
        i += 1
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            raise ValueError("a distinguished name ends in a separator")


# --------------------------------------------------------------------------- addresses


def throttle_key(address: str) -> str:
    """The key an address is throttled under: itself, an IPv6 address as its /64 network.

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, from a dual-stack
    socket) is its IPv4 address.
    """
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, IPV6_THROTTLE_PREFIX), strict=False))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a socket or an X-Forwarded-For entry (brackets and a port tolerated)."""
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.1:5555"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise SettingsError(
                f"CSMS_TRUSTED_PROXIES: {entry!r} is not an address or network"
            ) from exc
    return tuple(networks)


@dataclasses.dataclass(frozen=True, slots=True)
class Peer:
    """Who is connecting, once proxy headers were believed or ignored."""

    address: str
    tls: bool
    certificate: CertificateSubject | None
    via_proxy: bool


# --------------------------------------------------------------------------- the authenticator


class Authenticator:
    """Decides each handshake (see the module docstring for the rules)."""

    def __init__(
        self,
        stations: StationLookup,
        settings: AuthSettings | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        settings = AuthSettings() if settings is None else settings
        self.settings = settings
        self.stations = stations
        self.trusted_proxies = _networks(settings.trusted_proxies)
        self.throttle = LoginThrottle(
            max_failures_per_station=settings.max_failed_logins,
            max_failures_per_address=settings.max_failed_logins_per_address,
            window=settings.failed_login_window,
            lockout=settings.login_lockout,
            capacity=settings.throttle_capacity,
            clock=clock,
        )
        self.rate_limiter = HandshakeRateLimiter(
            rate=settings.handshake_rate,
            burst=settings.handshake_burst,
            capacity=settings.throttle_capacity,
            clock=clock,
        )
        self._headers = (
            settings.forwarded_for_header.lower(),
            settings.forwarded_proto_header.lower(),
            settings.client_verify_header.lower(),
            settings.client_subject_header.lower(),
        )
        self._warned_no_forwarded_for = False
        if settings.allow_unknown_stations:
            log.warning(
                "auth.unknown_stations_allowed", extra={"setting": "allow_unknown_stations"}
            )

    # ------------------------------------------------------------------ who

    def _trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in network for network in self.trusted_proxies)

    def peer(self, attempt: Attempt) -> Peer:
        """The client behind the attempt: the TCP peer, or what a trusted proxy says.

        Only when ``attempt.remote_ip`` is in ``trusted_proxies`` (RELIABILITY 7):

        - address: walk ``X-Forwarded-For`` from the right, past trusted proxies;
          the first address that is not a trusted proxy is the client (nginx
          ``real_ip_recursive``). No header: the proxy's own address.
        - TLS: the last ``X-Forwarded-Proto`` value, the one the proxy next to
          the gateway wrote: ``https``/``wss`` is TLS, ``http``/``ws`` is not;
          absent, the gateway's own socket decides.
        - client certificate: ``ssl-client-verify: SUCCESS`` and the subject from
          ``ssl-client-subject-dn``; the proxy verified the chain. The socket's
          own peer certificate is not used.

        From any other address these headers are ignored.
        """
        if not self.trusted_proxies or not self._trusted(_ip(attempt.remote_ip)):
            certificate = (
                CertificateSubject.from_peer_cert(attempt.peer_cert) if attempt.tls else None
            )
            return Peer(attempt.remote_ip, attempt.tls, certificate, via_proxy=False)
        forwarded_for, forwarded_proto, verify, subject = self._headers
        headers = attempt.headers
        address = attempt.remote_ip
        chain = headers.get(forwarded_for)
        if chain:
            for entry in reversed(chain.split(",")):
                ip = _ip(entry)
                if ip is None:
                    break
                address = str(ip)
                if not self._trusted(ip):
                    break
        elif not self._warned_no_forwarded_for:
            self._warned_no_forwarded_for = True
            log.warning(
                "auth.proxy_without_forwarded_for",
                extra={"remote": attempt.remote_ip, "header": forwarded_for},
            )
        tls = attempt.tls
        proto = headers.get(forwarded_proto)
        if proto:
            scheme = proto.rsplit(",", 1)[-1].strip().lower()
            if scheme in ("https", "wss"):
                tls = True
            elif scheme in ("http", "ws"):
                tls = False
        certificate = None
        dn = headers.get(subject)
        if dn and headers.get(verify, "").strip() == "SUCCESS":
            certificate = CertificateSubject.from_distinguished_name(dn)
        return Peer(address, tls, certificate, via_proxy=True)

    # ------------------------------------------------------------------ decide

    def authenticate(self, attempt: Attempt) -> Decision:
        """Decide one handshake. No I/O; updates the throttling state."""
        peer = self.peer(attempt)
        key = throttle_key(peer.address)

        def refuse(
            status: int,
            reason: Reason,
            *,
            station: StationRecord | None = None,
            event: bool = False,
            retry_after: float | None = None,
        ) -> Decision:
            if reason in FAILED_LOGIN_REASONS:
                self.throttle.failed(key, None if station is None else station.station_id)
            return Decision(
                accepted=False,
                http_status=status,
                reason=reason,
                station=station,
                security_event=event,
                www_authenticate=status == 401,
                retry_after=None if retry_after is None else max(1, math.ceil(retry_after)),
                remote_address=peer.address,
                tls=peer.tls,
            )

        if not self.stations.caught_up:
            return refuse(503, "not_ready", retry_after=5)
        wait = self.rate_limiter.admit(key)
        if wait:
            return refuse(429, "rate_limited", retry_after=wait)
        wait = self.throttle.address_locked(key)
        if wait:
            return refuse(429, "throttled", retry_after=wait)
        station = self.stations.get(attempt.station_id)
        if station is None:
            if self.settings.allow_unknown_stations:
                return Decision(
                    accepted=True,
                    http_status=101,
                    reason="ok",
                    remote_address=peer.address,
                    tls=peer.tls,
                )
            return refuse(404, "unknown_station")
        wait = self.throttle.station_locked(station.station_id, key)
        if wait:
            return refuse(429, "throttled", station=station, retry_after=wait)
        if not station.enabled:
            return refuse(403, "disabled", station=station)

        profile = station.security_profile
        if profile == 1:
            transport_fits = not peer.tls
        elif profile == 2:
            transport_fits = peer.tls
        else:
            transport_fits = peer.tls and peer.certificate is not None
        if not transport_fits:
            return refuse(403, "profile_mismatch", station=station, event=True)

        if profile == 3:
            assert peer.certificate is not None
            if not self._certificate_fits(peer.certificate, station.station_id):
                return refuse(403, "certificate_mismatch", station=station, event=True)
        else:
            credentials = basic_credentials(attempt.authorization)
            if credentials is None:
                return refuse(401, "missing_credentials", station=station, event=True)
            if credentials.username != station.station_id.encode():
                return refuse(401, "username_mismatch", station=station, event=True)
            if station.password_hash is None or not verify_password(
                station.password_hash,
                credentials.password,
                octet_form=self.settings.accept_octet_passwords,
            ):
                return refuse(401, "bad_credentials", station=station, event=True)

        self.throttle.succeeded(key, station.station_id)
        return Decision(
            accepted=True,
            http_status=101,
            reason="ok",
            security_profile=profile,
            station=station,
            remote_address=peer.address,
            tls=peer.tls,
        )

    def _certificate_fits(self, subject: CertificateSubject, station_id: str) -> bool:
        """A00.FR.405: the one CN is the station; A00.FR.404: the one O is the CSO (if set)."""
        if subject.common_names != (station_id,):
            return False
        organization = self.settings.tls_organization
        return not organization or subject.organizations == (organization,)
