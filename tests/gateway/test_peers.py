"""A crashed gateway's presence: when an instance counts as gone, and who clears its records.

The group's members are given here; that they come from a real coordinator,
and that a SIGKILLed gateway's stations end ``station_offline`` and get a
presence tombstone, is tested end to end in tests/e2e/test_command_cases.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from contracts.envelopes import Presence, encode_presence
from contracts.headers import gateway_source, tombstone_headers
from contracts.topics import PRESENCE
from gateway.offline import CLOCK_SKEW, SESSION_TIMEOUT, client_id, instance_of
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


class _Tombstone:
    def __init__(self, station_id: str, written_by: str) -> None:
        self.key = station_id.encode()
        self.value = None
        self.headers = tombstone_headers(
            PRESENCE, station_id, source=gateway_source(written_by), at=datetime.now(UTC)
        )


class Tombstones:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.callbacks: list[Callable[[BaseException | None], None]] = []

    def __call__(self, record: Presence, done: Callable[[BaseException | None], None]) -> None:
        self.written.append(record.station_id)
        self.callbacks.append(done)


class Gone:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, instance: str, died_after_ms: float) -> None:
        self.calls.append((instance, died_after_ms))


def _peers(instance: str, holders: dict[str, str]) -> tuple[Peers, PresenceView, Tombstones, Gone]:
    presence = PresenceView(instance, local=lambda _: None, republish=lambda _: None)
    presence.on_records([_Record(_presence(s, g)) for s, g in holders.items()])
    tombstones, gone = Tombstones(), Gone()
    peers = Peers(
        None,  # type: ignore[arg-type]  # the members are given here
        presence,
        gone_after=GONE_AFTER,
        clear=tombstones,
        holder_gone=gone,
    )
    return peers, presence, tombstones, gone


def test_a_missing_instance_is_gone_only_after_gone_after(caplog: pytest.LogCaptureFixture) -> None:
    peers, presence, _, _ = _peers("gw-b", {"CP-1": "gw-a", "CP-2": "gw-a", "CP-3": "gw-b"})
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
    peers, presence, _, _ = _peers("gw-b", {"CP-1": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-a", "gw-b"}, now=120.0)  # back: a rebalance, a long pause
    peers.update({"gw-b"}, now=125.0)
    peers.update({"gw-b"}, now=150.0)
    assert presence.holder("CP-1") is not None
    peers.update({"gw-b"}, now=155.0)
    assert presence.holder("CP-1") is None


def test_a_gone_instance_that_comes_back_holds_its_stations_again() -> None:
    peers, presence, _, _ = _peers("gw-b", {"CP-1": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-b"}, now=130.0)
    assert presence.holder("CP-1") is None
    peers.update({"gw-a", "gw-b"}, now=140.0)
    assert presence.holder("CP-1") is not None


def test_this_instance_is_never_gone_to_itself_and_says_when_it_is_not_in_the_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peers, presence, tombstones, _ = _peers("gw-a", {})
    presence.held(_presence("CP-1", "gw-a"))
    with caplog.at_level(logging.INFO, "gateway.peers"):
        peers.update(set(), now=100.0)  # not (yet) seen in the group
        assert peers.in_group
        peers.update(set(), now=115.0)  # gone_after / 2: the others are about to count it out
        assert not peers.in_group
        peers.update({"gw-a"}, now=120.0)
        assert peers.in_group
    assert presence.holder("CP-1") is not None
    assert tombstones.written == []
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert logged == [("ERROR", "gateway.not_in_group"), ("INFO", "gateway.in_group")]


def test_commands_left_to_a_gone_instance_since_it_died_are_decided() -> None:
    peers, _, _, gone = _peers("gw-b", {"CP-1": "gw-a"})
    peers.update({"gw-b"}, now=100.0)
    before = time.time()
    peers.update({"gw-b"}, now=130.0)
    ((instance, died_after_ms),) = gone.calls
    # missing for 30 s, lost one or two session timeouts after, missed up to a round late
    expected = before - 30.0 - 2 * SESSION_TIMEOUT - GONE_AFTER / 3 - CLOCK_SKEW
    assert instance == "gw-a"
    assert abs(died_after_ms / 1000 - expected) < 1.0


def test_an_instance_whose_records_another_gateway_cleared_is_still_declared_gone() -> None:
    peers, presence, _, gone = _peers("gw-c", {"CP-1": "gw-a"})
    peers.update({"gw-b", "gw-c"}, now=100.0)  # missed, holding CP-1
    peers.update({"gw-b", "gw-c"}, now=120.0)
    presence.on_records([_Tombstone("CP-1", "gw-b")])  # gw-b, the first, declared it gone
    peers.update({"gw-b", "gw-c"}, now=125.0)
    assert gone.calls == []
    peers.update({"gw-b", "gw-c"}, now=130.0)  # the commands left to it are decided here too
    assert [instance for instance, _ in gone.calls] == ["gw-a"]
    peers.update({"gw-b", "gw-c"}, now=140.0)
    peers.update({"gw-b", "gw-c"}, now=180.0)  # then forgotten: declared once
    assert len(gone.calls) == 1 and presence.gone == set()


def test_an_instance_whose_stations_reconnected_elsewhere_before_it_was_missed_is_gone() -> None:
    peers, presence, _, gone = _peers("gw-c", {"CP-1": "gw-a"})
    peers.update({"gw-a", "gw-b", "gw-c"}, now=100.0)  # holding CP-1, then killed
    presence.on_records([_Record(_presence("CP-1", "gw-b"))])  # CP-1 is back, on gw-b
    peers.update({"gw-b", "gw-c"}, now=110.0)  # missed, holding nothing any more
    peers.update({"gw-b", "gw-c"}, now=140.0)
    assert [instance for instance, _ in gone.calls] == ["gw-a"]


def test_an_instance_whose_stations_reconnected_here_before_it_was_missed_is_gone() -> None:
    peers, presence, _, gone = _peers("gw-c", {"CP-1": "gw-a"})
    peers.update({"gw-a", "gw-c"}, now=100.0)
    presence.held(_presence("CP-1", "gw-c"))  # CP-1 is back, on this gateway
    peers.update({"gw-c"}, now=110.0)
    peers.update({"gw-c"}, now=140.0)
    assert [instance for instance, _ in gone.calls] == ["gw-a"]


def test_an_instance_that_let_go_of_its_stations_itself_stopped_and_is_not_gone() -> None:
    peers, presence, _, gone = _peers("gw-c", {"CP-1": "gw-a"})
    peers.update({"gw-b", "gw-c"}, now=100.0)  # missed while its tombstones are on their way
    presence.on_records([_Tombstone("CP-1", "gw-a")])  # its own, written as it drained
    peers.update({"gw-b", "gw-c"}, now=110.0)
    peers.update({"gw-b", "gw-c"}, now=140.0)
    assert gone.calls == []


def test_the_first_live_instance_tombstones_a_gone_ones_stations_once() -> None:
    holders = {"CP-1": "gw-a", "CP-2": "gw-a", "CP-3": "gw-c"}
    first, _, tombstones, _ = _peers("gw-b", holders)
    other, held_by_other, not_theirs, _ = _peers("gw-c", holders)
    held_by_other.held(_presence("CP-3", "gw-c"))
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
    # records still there gone_after after: any member clears (the first may not)
    other.update({"gw-b", "gw-c"}, now=159.0)
    assert not_theirs.written == []
    other.update({"gw-b", "gw-c"}, now=160.0)
    assert sorted(not_theirs.written) == ["CP-1", "CP-2"]


def test_a_record_cleared_while_another_instance_stays_gone_is_cleared_again_later() -> None:
    peers, _, tombstones, _ = _peers("gw-b", {"CP-1": "gw-a", "CP-2": "gw-x"})
    peers.update({"gw-b"}, now=100.0)
    peers.update({"gw-b"}, now=130.0)  # gw-a and gw-x gone; CP-1 and CP-2 cleared
    assert sorted(tombstones.written) == ["CP-1", "CP-2"]
    peers.update({"gw-a", "gw-b"}, now=140.0)  # gw-a was alive after all (it writes CP-1 again)
    peers.update({"gw-b"}, now=150.0)  # ... then really crashes, while gw-x stays gone
    peers.update({"gw-b"}, now=180.0)
    assert sorted(tombstones.written) == ["CP-1", "CP-1", "CP-2"]


def test_a_station_that_moved_to_a_live_instance_is_not_cleared() -> None:
    peers, presence, tombstones, _ = _peers("gw-b", {"CP-1": "gw-a", "CP-2": "gw-a"})
    peers.update({"gw-b", "gw-c"}, now=100.0)
    presence.on_records([_Record(_presence("CP-2", "gw-c"))])  # reconnected there meanwhile
    peers.update({"gw-b", "gw-c"}, now=130.0)
    assert tombstones.written == ["CP-1"]
    assert presence.holder("CP-2") is not None


def test_records_an_earlier_process_with_this_instance_id_left_are_cleared_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peers, presence, tombstones, _ = _peers("gw-a", {"CP-1": "gw-a", "CP-2": "gw-b"})
    presence.on_records([_Record(_presence("CP-3", "gw-a"))])
    presence.held(_presence("CP-3", "gw-a"))  # this process holds CP-3 now
    assert [p.station_id for p in presence.left_behind()] == ["CP-1"]
    with caplog.at_level(logging.WARNING, "gateway.peers"):
        peers.clear_left_behind()  # at start, before it listens
        peers.update({"gw-a", "gw-b"}, now=100.0)
    assert tombstones.written == ["CP-1"]
    (line,) = [r for r in caplog.records if r.getMessage() == "gateway.presence_left_behind"]
    assert line.stations == 1  # type: ignore[attr-defined]


def test_gateway_instances_are_known_by_their_offline_responders_client_id() -> None:
    assert instance_of(client_id("pod-7-1")) == "pod-7-1"
    member_id = client_id("pod-7-1") + "-e5fd6845-ea4c-4507-8cd7-132d0abe2efb"
    assert _client_id((member_id, "csms-gateway-x-offline", "", b"", b"")) == (
        "csms-gateway-x-offline"
    )
    assert instance_of("csms-gateway-pod-7-1-presence") is None
    assert instance_of("billing-service") is None
    assert instance_of("csms-gateway--offline") is None
