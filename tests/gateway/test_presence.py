"""Presence: a holder that let its station go itself, and the commands it handled.

A command answered by its station just before the station left must not also end
``station_offline``: the holder's own tombstone says up to which command offset it
handled the station (``csms-commands-handled``), and the view keeps that until the
station is held again. End to end: tests/e2e/test_command_cases.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.envelopes import Presence, encode_presence
from contracts.headers import gateway_source, tombstone_headers
from contracts.topics import PRESENCE
from gateway.presence import PresenceView

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _presence(gateway_id: str, connected_at: datetime = NOW) -> Presence:
    return Presence(
        station_id="CP-1",
        gateway_id=gateway_id,
        connection_id=f"{gateway_id}-{connected_at.timestamp()}",
        ocpp_version="1.6",
        connected_at=connected_at,
    )


class _Record:
    def __init__(self, presence: Presence) -> None:
        self.key = presence.station_id.encode()
        self.value = encode_presence(presence)
        self.headers: list[tuple[str, bytes]] = []


class _Tombstone:
    def __init__(self, written_by: str, handled: int | None) -> None:
        self.key = b"CP-1"
        self.value = None
        self.headers = tombstone_headers(
            PRESENCE, "CP-1", source=gateway_source(written_by), at=NOW, commands_handled=handled
        )


def _view(instance: str = "gw-b") -> PresenceView:
    return PresenceView(instance, local=lambda _: None, republish=lambda _: None)


def test_the_holders_own_tombstone_says_which_commands_it_handled() -> None:
    view = _view()
    held = _presence("gw-a")
    view.on_records([_Record(held), _Tombstone("gw-a", 42)])
    assert view.holder("CP-1") is None
    assert view.departed("CP-1") == (held, 42)


def test_a_tombstone_without_the_header_or_by_another_gateway_says_nothing() -> None:
    view = _view()
    view.on_records([_Record(_presence("gw-a")), _Tombstone("gw-a", None)])
    assert view.departed("CP-1") is None
    # a peer clearing a crashed holder's record: that holder answered nothing after its crash
    view.on_records([_Record(_presence("gw-a")), _Tombstone("gw-c", 42)])
    assert view.departed("CP-1") is None


def test_a_station_held_again_forgets_the_departed_holder() -> None:
    view = _view()
    view.on_records([_Record(_presence("gw-a")), _Tombstone("gw-a", 42)])
    view.on_records([_Record(_presence("gw-a", NOW - timedelta(minutes=1)))])  # older, late
    assert view.departed("CP-1") is not None
    view.on_records([_Record(_presence("gw-c", NOW + timedelta(seconds=5)))])
    assert view.departed("CP-1") is None


def test_a_station_released_here_is_departed_at_once() -> None:
    """The tombstone comes back through the topic later; this gateway's own offline
    responder may decide before it does."""
    view = _view("gw-a")
    mine = _presence("gw-a")
    view.held(mine)
    view.released("CP-1", mine.connection_id, 7)
    assert view.departed("CP-1") == (mine, 7)
    view.held(_presence("gw-a", NOW + timedelta(seconds=1)))
    assert view.departed("CP-1") is None
