"""OCPP payloads: the versions csms speaks and, per version, the table of its actions.

The payload types themselves are generated from the official OCA JSON schemas
(``python -m contracts.codegen``) into one module per version:
``contracts.ocpp.v16`` (1.6J with the security whitepaper), ``v201`` and
``v21``. Each action has a ``<Action>Request`` and a ``<Action>Response``
``msgspec.Struct`` there; the action table below says which is which and which
side sends the request. Decoding and validating a payload against them is
``contracts.ocpp.validation``; the CALLERROR codes are ``contracts.ocpp.errors``.
How the types are made and where they deliberately differ from the schemas:
docs/contracts.md.

>>> from contracts.ocpp import actions
>>> boot = actions("1.6")["BootNotification"]
>>> boot.request.__name__, boot.initiator
('BootNotificationRequest', 'station')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import msgspec

from contracts.ocpp import v16, v21, v201

__all__ = ["SUBPROTOCOLS", "VERSIONS", "Action", "Initiator", "OcppVersion", "actions"]

OcppVersion = Literal["1.6", "2.0.1", "2.1"]
Initiator = Literal["station", "csms", "both"]

VERSIONS: Final[tuple[OcppVersion, ...]] = ("1.6", "2.0.1", "2.1")

# The websocket subprotocol name of each version (OCPP-J 1.6 §3.1.2; 2.0.1 and
# 2.1 Part 4 §3.1.2).
SUBPROTOCOLS: Final[Mapping[str, OcppVersion]] = MappingProxyType(
    {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}
)


@dataclass(frozen=True, slots=True)
class Action:
    """One OCPP action of one version.

    ``response`` is None for a SEND, which has no response (2.1 Part 4 §4.2.4:
    NotifyPeriodicEventStream). ``initiator`` is the side that sends the request:
    ``"station"``, ``"csms"``, or ``"both"`` (DataTransfer).
    """

    name: str
    request: type[msgspec.Struct]
    response: type[msgspec.Struct] | None
    initiator: Initiator


def _table(
    rows: tuple[tuple[str, type[msgspec.Struct], type[msgspec.Struct] | None, Initiator], ...],
) -> Mapping[str, Action]:
    return MappingProxyType({row[0]: Action(*row) for row in rows})


_ACTIONS: Final[Mapping[OcppVersion, Mapping[str, Action]]] = MappingProxyType(
    {"1.6": _table(v16.ACTIONS), "2.0.1": _table(v201.ACTIONS), "2.1": _table(v21.ACTIONS)}
)


def actions(version: OcppVersion) -> Mapping[str, Action]:
    """The actions of ``version`` by name (read-only)."""
    try:
        return _ACTIONS[version]
    except KeyError:
        raise ValueError(f"unknown OCPP version {version!r}; csms speaks {VERSIONS}") from None
