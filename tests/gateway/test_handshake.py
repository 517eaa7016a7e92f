"""Station identity and subprotocol choice (RELIABILITY 10 and 11), without sockets."""

from __future__ import annotations

import pytest

from gateway.handshake import (
    InvalidIdentity,
    offered_subprotocols,
    select_subprotocol,
    station_identity,
)

ALL = ("1.6", "2.0.1", "2.1")


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/ocpp/CP-1", "CP-1"),
        ("/any/deep/path/CP-1", "CP-1"),
        ("/CP-1", "CP-1"),
        ("/ocpp/RDAM%20123", "RDAM 123"),  # Part 4's own example
        ("/ocpp/CP-1?token=x", "CP-1"),  # a query is not part of the identity
        ("/ocpp/" + "A" * 48, "A" * 48),
        ("/ocpp/a*b-c_d=e+f|g@h.i", "a*b-c_d=e+f|g@h.i"),
    ],
)
def test_case_11_identity_is_the_last_segment_percent_decoded(path: str, identity: str) -> None:
    assert station_identity(path) == identity


@pytest.mark.parametrize(
    "path",
    [
        "/ocpp/",
        "/ocpp/" + "A" * 49,
        "/ocpp/CP:1",
        "/ocpp/CP%3A1",
        "/ocpp/..",
        "/ocpp/a..b",
        "/ocpp/%2e%2E",
        "/ocpp/CP%zz",
        "/ocpp/CP%",
        "/ocpp/CP%2F1",
        "/ocpp/CP%00",
        "/ocpp/%C3%28",  # not UTF-8
        "/ocpp/%20CP",  # leading space
        "/ocpp/CP%0A",
        "/ocpp/Ünïcode",
    ],
)
def test_case_11_identity_edge_cases_are_rejected(path: str) -> None:
    with pytest.raises(InvalidIdentity):
        station_identity(path)


@pytest.mark.parametrize(
    ("headers", "offered"),
    [
        (["ocpp2.0.1, ocpp1.6"], ["ocpp2.0.1", "ocpp1.6"]),
        ([" ocpp1.6 , , ocpp2.0.1,"], ["ocpp1.6", "ocpp2.0.1"]),
        (["ocpp1.6", "ocpp2.1"], ["ocpp1.6", "ocpp2.1"]),  # several header lines
        (["ocpp1.6, ocpp1.6"], ["ocpp1.6"]),
        ([], []),
        ([""], []),
    ],
)
def test_case_10_offered_subprotocols_are_read_leniently(
    headers: list[str], offered: list[str]
) -> None:
    assert offered_subprotocols(headers) == offered


def test_case_10_the_stations_first_supported_choice_wins() -> None:
    assert select_subprotocol(["ocpp2.0.1", "ocpp1.6"], ALL) == ("ocpp2.0.1", "2.0.1")
    assert select_subprotocol(["ocpp1.5", "ocpp1.6"], ALL) == ("ocpp1.6", "1.6")
    assert select_subprotocol(["OCPP1.6"], ALL) == ("OCPP1.6", "1.6")  # answered as offered
    assert select_subprotocol(["ocpp2.1"], ("1.6", "2.0.1")) is None  # not offered by this csms
    assert select_subprotocol([], ALL) is None


def test_unknown_ocpp_versions_in_the_settings_are_refused() -> None:
    from contracts.settings import SettingsError, load
    from gateway.settings import GatewaySettings

    with pytest.raises(SettingsError, match="CSMS_OCPP_VERSIONS"):
        load(GatewaySettings, None, env={"CSMS_OCPP_VERSIONS": "1.6,1.5"})
    assert load(GatewaySettings, None, env={"CSMS_OCPP_VERSIONS": "2.0.1"}).ocpp_versions == (
        "2.0.1",
    )
