"""The parts of the websocket handshake that are OCPP's: the station identity and the subprotocol.

Pure functions over the request's path and headers, unit-tested without sockets.

Identity (OCPP 2.0.1 Part 4 §3.1.1, the same rule in 1.6J §3.1.1 and 2.1): the
station appends ``/`` and its identity, percent-encoded (RFC 3986), to the
endpoint URL; csms takes the last path segment whatever the path before it. The
identity is an identifierString of at most 48 characters without ``:`` (it is
the Basic-auth username). Part 4's own example ("RDAM 123") has a space, so a
space is accepted too. Rejected, always with 400: an empty identity, more than 48
characters, a character outside that set (``:``, ``/``, ``%`` after decoding,
control characters), ``..``, and malformed percent-encoding.

Subprotocol (Part 4 §3.2): the station lists the OCPP versions it speaks in
``Sec-WebSocket-Protocol``, most preferred first; csms picks the first one it
supports. Stations are sloppy with this header (spaces, empty items, several
header lines), so it is parsed leniently here rather than by websockets. When
nothing matches, the handshake completes without the header and the connection
is closed at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes, urlsplit

from contracts.ocpp import SUBPROTOCOLS, OcppVersion

__all__ = [
    "MAX_IDENTITY_LENGTH",
    "InvalidIdentity",
    "offered_subprotocols",
    "select_subprotocol",
    "station_identity",
]

MAX_IDENTITY_LENGTH = 48
_IDENTITY = re.compile(r"[A-Za-z0-9*\-_=+|@. ]{1,48}")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidIdentity(ValueError):
    """The request path does not end in a usable station identity (answered with 400)."""


def station_identity(path: str) -> str:
    """The station identity: the last segment of the request path, percent-decoded."""
    raw = urlsplit(path).path.rsplit("/", 1)[-1]
    if not raw:
        raise InvalidIdentity("the path does not end with a station identity")
    if _PERCENT.search(raw):
        raise InvalidIdentity("malformed percent-encoding in the station identity")
    try:
        identity = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidIdentity("the station identity is not UTF-8") from exc
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentity(f"the station identity is longer than {MAX_IDENTITY_LENGTH}")
    if not _IDENTITY.fullmatch(identity) or ".." in identity or identity.strip() != identity:
        raise InvalidIdentity("the station identity has characters OCPP does not allow")
    return identity


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """The subprotocols a station offers, in its order, from every header line, tolerantly."""
    offered: list[str] = []
    for value in header_values:
        for item in value.split(","):
            item = item.strip()
            if item and item not in offered:
                offered.append(item)
    return offered


def select_subprotocol(
    offered: Iterable[str], supported: Iterable[OcppVersion]
) -> tuple[str, OcppVersion] | None:
    """The station's most preferred subprotocol that csms supports, with its OCPP version."""
    allowed = set(supported)
    for name in offered:
        version = SUBPROTOCOLS.get(name.lower())
        if version is not None and version in allowed:
            return name, version
    return None
