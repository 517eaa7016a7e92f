"""A crashed gateway's presence: when an instance counts as gone, and who clears its records.

The group's members are given here; that they come from a real coordinator,
and that a SIGKILLed gateway's stations end ``station_offline`` and get a
presence tombstone, is tested end to end in tests/e2e/test_command_cases.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from contracts.envelopes import Presence, encode_presence
from gateway.offline import client_id, instance_of
from gateway.peers import Peers, _client_id
from gateway.presence import PresenceView

GONE_AFTER = 30.0


def _presence(station_id: str, gateway_id: str) -> Presence:
    return Presence(
        station_id=station_id,
        gateway_id=gateway_id,
        connection_id=f"{gateway_id}-{station_id}",
        ocpp_version="1.6",
        connected_at=datetime.now(UTC),
    )


class _Record:
    def __init__(self, presence: Presence) -> None:
        self.key = presence.station_id.encode()
        self.value = encode_presence(presence)


class Tombstones:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.callbacks: list[Callable[[BaseException | None], None]] = []

    def __call__(self, station_id: str, done: Callable[[BaseException | None], None]) -> None:
        self.written.append(station_id)
        self.callbacks.append(done)


def _peers(instance: str, holders: dict[str, str]) -> tuple[Peers, PresenceView, Tombstones]:
    presence = PresenceView(instance, local=lambda _: None, republish=lambda _: None)
    presence.on_records([_Record(_presence(s, g)) for s, g in holders.items()])
    tombstones = Tombstones()
    peers = Peers(None, presence, gone_after=GONE_AFTER, tombstone=tombstones)  # type: ignore[arg-type]
    return peers, presence, tombstones


def test_a_missing_instance_is_gone_only_after_gone_after(caplog: pytest.LogCaptureFixture) -> None:
    peers, presence, _ = _peers("gw-b", {"CP-1": "gw-a", "CP-2": "gw-a", "CP-3": "gw-b"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-b"}, now=129.9)
    assert presence.holder("CP-1") is not None
    with caplog.at_level(logging.WARNING, "gateway.peers"):
        peers.update({"gw-b"}, now=130.0)
    assert presence.holder("CP-1") is None and presence.holder("CP-2") is None
    assert presence.holder("CP-3") is not None
    (line,) = [r for r in caplog.records if r.getMessage() == "gateway.peer_gone"]
    assert (line.gateway_id, line.stations, line.missing_s) == ("gw-a", 2, 30.0)  # type: ignore[attr-defined]


def test_an_instance_seen_again_in_between_starts_its_count_again() -> None:
    peers, presence, _ = _peers("gw-b", {"CP-1": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-a", "gw-b"}, now=120.0)  # back: a rebalance, a long pause
    peers.update({"gw-b"}, now=125.0)
    peers.update({"gw-b"}, now=150.0)
    assert presence.holder("CP-1") is not None
    peers.update({"gw-b"}, now=155.0)
    assert presence.holder("CP-1") is None


def test_a_gone_instance_that_comes_back_holds_its_stations_again() -> None:
    peers, presence, _ = _peers("gw-b", {"CP-1": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-b"}, now=130.0)
    assert presence.holder("CP-1") is None
    peers.update({"gw-a", "gw-b"}, now=140.0)
    assert presence.holder("CP-1") is not None


def test_this_instance_is_never_gone_to_itself() -> None:
    peers, presence, tombstones = _peers("gw-a", {"CP-1": "gw-a"})
    peers.update(set(), now=100.0)  # not (yet) seen in the group
    peers.update(set(), now=200.0)
    assert presence.holder("CP-1") is not None
    assert tombstones.written == []


def test_the_first_live_instance_tombstones_a_gone_ones_stations_once() -> None:
    holders = {"CP-1": "gw-a", "CP-2": "gw-a", "CP-3": "gw-c"}
    first, _, tombstones = _peers("gw-b", holders)
    other, _, not_theirs = _peers("gw-c", holders)
    for peers in (first, other):
        peers.update({"gw-b", "gw-c"}, now=100.0)
        peers.update({"gw-b", "gw-c"}, now=130.0)
    assert sorted(tombstones.written) == ["CP-1", "CP-2"]
    assert not_theirs.written == []
    first.update({"gw-b", "gw-c"}, now=140.0)  # the tombstones are not back yet
    assert len(tombstones.written) == 2
    tombstones.callbacks[0](RuntimeError("Kafka said no"))  # failed: tried again next time
    tombstones.callbacks[1](None)  # written: the same record is not tombstoned twice
    first.update({"gw-b", "gw-c"}, now=150.0)
    assert sorted(tombstones.written) == ["CP-1", "CP-1", "CP-2"]


def test_a_station_that_moved_to_a_live_instance_is_not_cleared() -> None:
    peers, presence, tombstones = _peers("gw-b", {"CP-1": "gw-a", "CP-2": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    presence.on_records([_Record(_presence("CP-2", "gw-b"))])  # reconnected here meanwhile
    peers.update({"gw-b"}, now=130.0)
    assert tombstones.written == ["CP-1"]
    assert presence.holder("CP-2") is not None


def test_records_an_earlier_process_with_this_instance_id_left_are_left_behind() -> None:
    presence = PresenceView("gw-a", local=lambda _: None, republish=lambda _: None)
    holders = {"CP-1": "gw-a", "CP-2": "gw-b", "CP-3": "gw-a"}
    presence.on_records([_Record(_presence(s, g)) for s, g in holders.items()])
    presence.held(_presence("CP-3", "gw-a"))  # this process holds CP-3 now
    assert presence.left_behind() == ["CP-1"]


def test_gateway_instances_are_known_by_their_offline_responders_client_id() -> None:
    assert instance_of(client_id("pod-7-1")) == "pod-7-1"
    member_id = client_id("pod-7-1") + "-e5fd6845-ea4c-4507-8cd7-132d0abe2efb"
    assert _client_id((member_id, "", "", b"", b"")) == client_id("pod-7-1")  # embedded broker
    assert _client_id((member_id, "csms-gateway-x-offline", "", b"", b"")) == (
        "csms-gateway-x-offline"
    )
    assert _client_id(("no-uuid-here", "", "", b"", b"")) == ""
    assert instance_of("csms-gateway-pod-7-1-presence") is None
    assert instance_of("billing-service") is None
    assert instance_of("csms-gateway--offline") is None
