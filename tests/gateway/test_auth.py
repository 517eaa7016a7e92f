"""Station authentication at the handshake: RELIABILITY cases 1-5, 7 and 8, without sockets.

Every test drives :class:`gateway.auth.Authenticator` with an in-memory
registry and a fake clock; the TLS layer that verifies certificate chains is
tested in test_tls.py.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from contracts.envelopes import StationRecord
from contracts.settings import SettingsError, load
from gateway.auth import (
    FAILED_LOGIN_REASONS,
    REASONS,
    Attempt,
    Authenticator,
    AuthSettings,
    CertificateSubject,
    Decision,
    parse_distinguished_name,
    throttle_key,
)
from gateway.credentials import hash_password

PASSWORD = "Zq8-fT2mWx4Lp9Rs1Kd"
HEX_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # an OCPP 1.6 AuthorizationKey: 16 bytes in hex
HASH = hash_password(PASSWORD)
HEX_HASH = hash_password(HEX_KEY)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Registry(dict[str, StationRecord]):
    """The registry as the authenticator sees it: ``get`` and ``caught_up``."""

    caught_up = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def station(
    station_id: str,
    profile: int = 1,
    *,
    password_hash: str | None = HASH,
    enabled: bool = True,
) -> StationRecord:
    return StationRecord(
        station_id=station_id,
        security_profile=profile,  # type: ignore[arg-type]
        password_hash=None if profile == 3 else password_hash,
        enabled=enabled,
        updated_at=NOW,
    )


def basic(username: str | bytes, password: str | bytes) -> str:
    user = username.encode() if isinstance(username, str) else username
    secret = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(user + b":" + secret).decode()


def peer_cert(cn: str | None, o: str | None = "Acme Charging") -> dict[str, Any]:
    """A ``getpeercert()`` dict with the given subject."""
    subject: list[tuple[tuple[str, str], ...]] = [(("countryName", "NL"),)]
    if o is not None:
        subject.append((("organizationName", o),))
    if cn is not None:
        subject.append((("commonName", cn),))
    return {"subject": tuple(subject), "issuer": ((("commonName", "Acme Station CA"),),)}


def attempt(
    station_id: str,
    authorization: str | None = None,
    *,
    ip: str = "198.51.100.7",
    tls: bool = False,
    cert: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Attempt:
    return Attempt(
        station_id=station_id,
        remote_ip=ip,
        authorization=authorization,
        tls=tls,
        peer_cert=cert,
        headers=headers or {},
    )


def make(
    *stations: StationRecord, clock: Clock | None = None, **settings: Any
) -> tuple[Authenticator, Registry]:
    registry = Registry({s.station_id: s for s in stations})
    auth = Authenticator(registry, AuthSettings(**settings), clock=clock or Clock())
    return auth, registry


def assert_refused(decision: Decision, status: int, reason: str) -> None:
    assert (decision.accepted, decision.http_status, decision.reason) == (False, status, reason)


# --------------------------------------------------------------------------- profiles that fit


def test_profile_1_basic_auth_over_plain_ws_is_accepted() -> None:
    auth, _ = make(station("CP-1", 1))
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD)))
    assert decision.accepted
    assert decision.reason == "ok"
    assert decision.security_profile == 1
    assert decision.station is not None
    assert decision.station.station_id == "CP-1"
    assert decision.remote_address == "198.51.100.7"
    assert not decision.tls


def test_profile_2_basic_auth_over_tls_is_accepted_with_or_without_a_client_certificate() -> None:
    auth, _ = make(station("CP-2", 2))
    plain = auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD), tls=True))
    with_cert = auth.authenticate(
        attempt("CP-2", basic("CP-2", PASSWORD), tls=True, cert=peer_cert("CP-2"))
    )
    assert plain.accepted
    assert plain.security_profile == 2
    assert plain.tls
    assert with_cert.accepted


def test_profile_3_certificate_naming_the_station_is_accepted_without_a_password() -> None:
    auth, _ = make(station("CP-3", 3))
    decision = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3")))
    assert decision.accepted
    assert decision.security_profile == 3


# --------------------------------------------------------------------------- case 1


def test_case_1_unknown_station_is_404_without_an_event() -> None:
    auth, _ = make(station("CP-1"))
    decision = auth.authenticate(attempt("CP-404", basic("CP-404", PASSWORD)))
    assert_refused(decision, 404, "unknown_station")
    assert not decision.security_event
    assert not decision.www_authenticate


def test_case_1_unknown_stations_do_not_lock_out_the_address() -> None:
    auth, _ = make(station("CP-1"))
    for n in range(50):
        auth.authenticate(attempt(f"CP-X{n}"))
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD))).accepted


def test_case_1_allow_unknown_stations_lets_unregistered_ids_in_without_credentials() -> None:
    auth, _ = make(station("CP-1"), allow_unknown_stations=True)
    decision = auth.authenticate(attempt("CP-NEW"))
    assert decision.accepted
    assert decision.security_profile is None
    assert decision.station is None


def test_case_1_allow_unknown_stations_still_checks_registered_stations() -> None:
    auth, _ = make(station("CP-1"), allow_unknown_stations=True)
    assert_refused(auth.authenticate(attempt("CP-1")), 401, "missing_credentials")
    assert_refused(
        auth.authenticate(attempt("CP-1", basic("CP-1", "x" * 20))), 401, "bad_credentials"
    )
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD))).accepted


def test_registry_not_read_to_the_end_yet_is_503() -> None:
    auth, registry = make(station("CP-1"))
    registry.caught_up = False
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD)))
    assert_refused(decision, 503, "not_ready")
    assert decision.retry_after == 5


# --------------------------------------------------------------------------- disabled


def test_disabled_station_is_403_before_its_password_is_checked() -> None:
    auth, _ = make(station("CP-1", enabled=False))
    right = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD)))
    wrong = auth.authenticate(attempt("CP-1", basic("CP-1", "wrong-password-1234")))
    assert_refused(right, 403, "disabled")
    assert_refused(wrong, 403, "disabled")
    assert not right.security_event


# --------------------------------------------------------------------------- case 2


def test_case_2_username_differs_from_url_identity_is_401() -> None:
    auth, _ = make(station("CP-1"), station("CP-2"))
    decision = auth.authenticate(attempt("CP-1", basic("CP-2", PASSWORD)))
    assert_refused(decision, 401, "username_mismatch")
    assert decision.www_authenticate
    assert decision.security_event


def test_case_2_username_comparison_is_exact() -> None:
    auth, _ = make(station("CP-1"))
    for username in ("cp-1", "CP-1 ", " CP-1", "CP-1\x00"):
        decision = auth.authenticate(
            attempt("CP-1", basic(username, PASSWORD), ip=f"192.0.2.{len(username)}")
        )
        assert_refused(decision, 401, "username_mismatch")


# --------------------------------------------------------------------------- case 3


def test_case_3_wrong_password_is_401_with_a_challenge_and_a_security_event() -> None:
    auth, _ = make(station("CP-1"))
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD + "x")))
    assert_refused(decision, 401, "bad_credentials")
    assert decision.www_authenticate
    assert decision.security_event
    assert decision.station is not None


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"CP-1-without-a-colon").decode(),
        "Digest username=CP-1",
    ],
)
def test_case_3_missing_credentials_is_401_with_a_challenge_and_a_security_event(
    authorization: str | None,
) -> None:
    auth, _ = make(station("CP-1"))
    decision = auth.authenticate(attempt("CP-1", authorization))
    assert_refused(decision, 401, "missing_credentials")
    assert decision.www_authenticate
    assert decision.security_event


def test_case_3_failed_logins_are_counted() -> None:
    auth, _ = make(station("CP-1"), max_failed_logins=2)
    auth.authenticate(attempt("CP-1", None, ip="192.0.2.1"))
    auth.authenticate(attempt("CP-1", basic("CP-1", "wrong-password-1234"), ip="192.0.2.2"))
    assert_refused(
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.3")),
        429,
        "throttled",
    )


def test_basic_scheme_is_case_insensitive_and_padding_may_be_missing() -> None:
    auth, _ = make(station("CP-1"))
    token = base64.b64encode(b"CP-1:" + PASSWORD.encode()).decode().rstrip("=")
    assert auth.authenticate(attempt("CP-1", f"bAsIc   {token}")).accepted


def test_a_password_may_contain_colons() -> None:
    password = "a:b:c:d:e:f:g:h:i:j"
    auth, _ = make(station("CP-1", password_hash=hash_password(password)))
    assert auth.authenticate(attempt("CP-1", basic("CP-1", password))).accepted


def test_a_station_without_a_password_hash_cannot_log_in_with_basic_auth() -> None:
    auth, _ = make(station("CP-1", password_hash=None))
    assert_refused(auth.authenticate(attempt("CP-1", basic("CP-1", ""))), 401, "bad_credentials")


def test_an_unknown_hash_format_matches_nothing() -> None:
    auth, _ = make(station("CP-1", password_hash="md5$00$" + "0" * 32))
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD)))
    assert_refused(decision, 401, "bad_credentials")


# OCPP 1.6: AuthorizationKey is hex-represented binary; a station may send the octets.


def test_ocpp16_authorization_key_sent_as_its_hex_text_is_accepted() -> None:
    auth, _ = make(station("CP-16", password_hash=HEX_HASH))
    assert auth.authenticate(attempt("CP-16", basic("CP-16", HEX_KEY))).accepted


def test_ocpp16_authorization_key_sent_as_octets_is_accepted() -> None:
    auth, _ = make(station("CP-16", password_hash=HEX_HASH))
    octets = bytes.fromhex(HEX_KEY)
    assert auth.authenticate(attempt("CP-16", basic("CP-16", octets))).accepted


def test_ocpp16_upper_case_hex_key_sent_as_octets_is_accepted() -> None:
    auth, _ = make(station("CP-16", password_hash=hash_password(HEX_KEY.upper())))
    octets = bytes.fromhex(HEX_KEY)
    assert auth.authenticate(attempt("CP-16", basic("CP-16", octets))).accepted


def test_octet_form_is_refused_when_switched_off() -> None:
    auth, _ = make(station("CP-16", password_hash=HEX_HASH), accept_octet_passwords=False)
    octets = bytes.fromhex(HEX_KEY)
    assert_refused(
        auth.authenticate(attempt("CP-16", basic("CP-16", octets))), 401, "bad_credentials"
    )


def test_octet_form_of_a_different_key_is_refused() -> None:
    auth, _ = make(station("CP-16", password_hash=HEX_HASH))
    octets = bytes.fromhex(HEX_KEY[:-2] + "00")
    assert_refused(
        auth.authenticate(attempt("CP-16", basic("CP-16", octets))), 401, "bad_credentials"
    )


# --------------------------------------------------------------------------- case 4


def test_case_4_profile_2_station_over_plain_ws_is_403_and_its_password_is_not_checked() -> None:
    auth, _ = make(station("CP-2", 2), max_failed_logins=1)
    right = auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD)))
    wrong = auth.authenticate(attempt("CP-2", basic("CP-2", "wrong-password-1234")))
    assert_refused(right, 403, "profile_mismatch")
    assert_refused(wrong, 403, "profile_mismatch")
    assert right.security_event  # the password travelled in clear text
    assert not right.www_authenticate
    # not counted: the station is not locked out
    assert auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD), tls=True)).accepted


def test_case_4_profile_1_station_over_tls_is_403() -> None:
    auth, _ = make(station("CP-1", 1))
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), tls=True))
    assert_refused(decision, 403, "profile_mismatch")


def test_case_4_profile_3_station_without_a_client_certificate_is_403() -> None:
    auth, _ = make(station("CP-3", 3))
    over_tls = auth.authenticate(attempt("CP-3", basic("CP-3", PASSWORD), tls=True))
    plain = auth.authenticate(attempt("CP-3", basic("CP-3", PASSWORD), cert=peer_cert("CP-3")))
    empty = auth.authenticate(attempt("CP-3", tls=True, cert={}))
    for decision in (over_tls, plain, empty):
        assert_refused(decision, 403, "profile_mismatch")


# --------------------------------------------------------------------------- case 5


def test_case_5_certificate_naming_another_station_is_403() -> None:
    auth, _ = make(station("CP-3", 3), station("CP-4", 3))
    decision = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-4")))
    assert_refused(decision, 403, "certificate_mismatch")
    assert decision.security_event


@pytest.mark.parametrize("cn", ["cp-3", "CP-3 ", "CP-3x", "", None])
def test_case_5_common_name_must_equal_the_station_id_exactly(cn: str | None) -> None:
    auth, _ = make(station("CP-3", 3))
    decision = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert(cn)))
    assert_refused(decision, 403, "certificate_mismatch")


def test_case_5_certificate_with_two_common_names_is_403() -> None:
    auth, _ = make(station("CP-3", 3))
    cert = peer_cert("CP-3")
    cert["subject"] += ((("commonName", "CP-4"),),)
    assert_refused(
        auth.authenticate(attempt("CP-3", tls=True, cert=cert)), 403, "certificate_mismatch"
    )


def test_case_5_wrong_organization_is_403_when_the_cso_name_is_set() -> None:
    auth, _ = make(station("CP-3", 3), tls_organization="Acme Charging")
    good = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3", "Acme Charging")))
    other = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3", "Evil Corp")))
    missing = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3", None)))
    assert good.accepted
    assert_refused(other, 403, "certificate_mismatch")
    assert_refused(missing, 403, "certificate_mismatch")


def test_case_5_organization_is_not_checked_when_the_cso_name_is_not_set() -> None:
    auth, _ = make(station("CP-3", 3))
    assert auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3", "Anyone"))).accepted


def test_case_5_certificate_mismatches_are_counted() -> None:
    auth, _ = make(station("CP-3", 3), max_failed_logins=2)
    for ip in ("192.0.2.1", "192.0.2.2"):
        auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-9"), ip=ip))
    decision = auth.authenticate(attempt("CP-3", tls=True, cert=peer_cert("CP-3"), ip="192.0.2.3"))
    assert_refused(decision, 429, "throttled")


# --------------------------------------------------------------------------- case 7

PROXY = "10.0.0.5"
OFFLOAD_HEADERS = {
    "x-forwarded-for": "203.0.113.9",
    "x-forwarded-proto": "https",
    "ssl-client-verify": "SUCCESS",
    "ssl-client-subject-dn": "CN=CP-3,O=Acme Charging,C=NL",
}


def test_case_7_proxy_headers_from_an_untrusted_address_are_ignored() -> None:
    auth, _ = make(station("CP-2", 2), station("CP-3", 3), trusted_proxies=("10.0.0.0/24",))
    profile_2 = auth.authenticate(
        attempt("CP-2", basic("CP-2", PASSWORD), ip="192.0.2.50", headers=OFFLOAD_HEADERS)
    )
    profile_3 = auth.authenticate(attempt("CP-3", ip="192.0.2.50", headers=OFFLOAD_HEADERS))
    assert_refused(profile_2, 403, "profile_mismatch")  # not TLS: the proto header was ignored
    assert_refused(profile_3, 403, "profile_mismatch")  # no certificate: the DN header was ignored
    assert profile_2.remote_address == "192.0.2.50"


def test_case_7_proxy_headers_are_ignored_when_no_proxy_is_trusted() -> None:
    auth, _ = make(station("CP-3", 3))
    decision = auth.authenticate(attempt("CP-3", ip=PROXY, headers=OFFLOAD_HEADERS))
    assert_refused(decision, 403, "profile_mismatch")
    assert decision.remote_address == PROXY


def test_case_7_trusted_proxy_gives_the_client_address_tls_and_certificate() -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/24",))
    decision = auth.authenticate(attempt("CP-3", ip=PROXY, headers=OFFLOAD_HEADERS))
    assert decision.accepted
    assert decision.remote_address == "203.0.113.9"
    assert decision.tls


def test_case_7_trusted_proxy_profile_2_over_https() -> None:
    auth, _ = make(station("CP-2", 2), trusted_proxies=("10.0.0.5",))
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    decision = auth.authenticate(
        attempt("CP-2", basic("CP-2", PASSWORD), ip=PROXY, headers=headers)
    )
    assert decision.accepted
    assert decision.tls


def test_case_7_trusted_proxy_forwarding_plain_http_is_not_tls() -> None:
    auth, _ = make(station("CP-1", 1), station("CP-2", 2), trusted_proxies=("10.0.0.0/8",))
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "http"}
    # even if the proxy-to-gateway hop itself is TLS
    assert auth.authenticate(
        attempt("CP-1", basic("CP-1", PASSWORD), ip=PROXY, tls=True, headers=headers)
    ).accepted
    assert_refused(
        auth.authenticate(
            attempt("CP-2", basic("CP-2", PASSWORD), ip=PROXY, tls=True, headers=headers)
        ),
        403,
        "profile_mismatch",
    )


def test_case_7_last_forwarded_proto_counts_not_what_the_client_prepended() -> None:
    auth, _ = make(station("CP-2", 2), trusted_proxies=("10.0.0.0/8",))
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https, http"}
    decision = auth.authenticate(
        attempt("CP-2", basic("CP-2", PASSWORD), ip=PROXY, headers=headers)
    )
    assert_refused(decision, 403, "profile_mismatch")


def test_case_7_forwarded_for_is_read_from_the_right_past_trusted_proxies() -> None:
    auth, _ = make(station("CP-1"), trusted_proxies=("10.0.0.0/8",))
    # the client prepended a fake address; the outer proxy 10.1.1.1 appended the real one
    headers = {"x-forwarded-for": "1.2.3.4, 203.0.113.9, 10.1.1.1"}
    decision = auth.authenticate(
        attempt("CP-1", basic("CP-1", PASSWORD), ip=PROXY, headers=headers)
    )
    assert decision.remote_address == "203.0.113.9"


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("not-an-address", PROXY),
        ("10.0.0.9, 10.0.0.8", "10.0.0.9"),
    ],
)
def test_case_7_forwarded_for_entries_are_parsed_tolerantly(chain: str, client: str) -> None:
    auth, _ = make(station("CP-1"), trusted_proxies=("10.0.0.0/8",))
    headers = {"x-forwarded-for": chain}
    decision = auth.authenticate(
        attempt("CP-1", basic("CP-1", PASSWORD), ip=PROXY, headers=headers)
    )
    assert decision.remote_address == client


def test_case_7_trusted_proxy_without_forwarded_for_leaves_the_proxy_address() -> None:
    auth, _ = make(station("CP-1"), trusted_proxies=("10.0.0.0/8",))
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip=PROXY))
    assert decision.remote_address == PROXY


@pytest.mark.parametrize("verify", [None, "NONE", "FAILED:certificate has expired", "success"])
def test_case_7_certificate_headers_count_only_when_the_proxy_verified_it(
    verify: str | None,
) -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/8",))
    headers = dict(OFFLOAD_HEADERS)
    if verify is None:
        del headers["ssl-client-verify"]
    else:
        headers["ssl-client-verify"] = verify
    assert_refused(
        auth.authenticate(attempt("CP-3", ip=PROXY, headers=headers)), 403, "profile_mismatch"
    )


def test_case_7_subject_header_naming_another_station_is_a_certificate_mismatch() -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/8",))
    headers = OFFLOAD_HEADERS | {"ssl-client-subject-dn": "CN=CP-4,O=Acme Charging"}
    assert_refused(
        auth.authenticate(attempt("CP-3", ip=PROXY, headers=headers)), 403, "certificate_mismatch"
    )


def test_case_7_escaped_comma_cannot_smuggle_an_organization() -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/8",), tls_organization="Acme")
    headers = OFFLOAD_HEADERS | {"ssl-client-subject-dn": "CN=CP-3\\,O=Acme,O=Evil"}
    assert_refused(
        auth.authenticate(attempt("CP-3", ip=PROXY, headers=headers)), 403, "certificate_mismatch"
    )


def test_case_7_behind_a_proxy_the_socket_certificate_is_not_the_station_certificate() -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/8",))
    headers = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    decision = auth.authenticate(
        attempt("CP-3", ip=PROXY, tls=True, cert=peer_cert("CP-3"), headers=headers)
    )
    assert_refused(decision, 403, "profile_mismatch")


def test_case_7_header_names_are_settings() -> None:
    auth, _ = make(
        station("CP-3", 3),
        trusted_proxies=("10.0.0.0/8",),
        forwarded_for_header="X-Real-Client",
        forwarded_proto_header="x-scheme",
        client_verify_header="x-client-verified",
        client_subject_header="x-client-dn",
    )
    headers = {
        "x-real-client": "203.0.113.9",
        "x-scheme": "https",
        "x-client-verified": "SUCCESS",
        "x-client-dn": "/C=NL/O=Acme/CN=CP-3",
    }
    decision = auth.authenticate(attempt("CP-3", ip=PROXY, headers=headers))
    assert decision.accepted
    assert decision.remote_address == "203.0.113.9"


def test_case_7_ipv4_mapped_proxy_address_is_trusted() -> None:
    auth, _ = make(station("CP-3", 3), trusted_proxies=("10.0.0.0/8",))
    assert auth.authenticate(
        attempt("CP-3", ip="::ffff:10.0.0.5", headers=OFFLOAD_HEADERS)
    ).accepted


def test_trusted_proxies_that_are_not_networks_are_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="CSMS_TRUSTED_PROXIES"):
        make(trusted_proxies=("10.0.0.0/33",))


def test_auth_settings_are_read_from_the_environment() -> None:
    settings = load(
        AuthSettings,
        env={
            "CSMS_ALLOW_UNKNOWN_STATIONS": "true",
            "CSMS_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "CSMS_TLS_ORGANIZATION": "Acme",
            "CSMS_MAX_FAILED_LOGINS": "3",
            "CSMS_LOGIN_LOCKOUT": "30",
            "CSMS_HANDSHAKE_RATE": "0",
        },
    )
    assert settings.allow_unknown_stations
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert settings.tls_organization == "Acme"
    assert settings.max_failed_logins == 3
    assert settings.login_lockout == 30.0
    assert settings.handshake_rate == 0.0


# --------------------------------------------------------------------------- case 8


def _fail(auth: Authenticator, station_id: str, ip: str, times: int = 1) -> None:
    for _ in range(times):
        decision = auth.authenticate(
            attempt(station_id, basic(station_id, "wrong-password-1234"), ip=ip)
        )
        assert decision.reason in ("bad_credentials", "throttled")


def test_case_8_failed_logins_lock_the_station_id_out_without_checking_the_password() -> None:
    clock = Clock()
    auth, _ = make(station("CP-1"), station("CP-2"), clock=clock)
    _fail(auth, "CP-1", "192.0.2.1", 5)
    # from another address, with the right password: still locked out
    decision = auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.99"))
    assert_refused(decision, 429, "throttled")
    assert decision.retry_after == 300
    assert not decision.security_event
    # other stations, from the same address too, are unaffected
    assert auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD), ip="192.0.2.1")).accepted
    assert auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD), ip="192.0.2.99")).accepted


def test_case_8_the_lockout_ends() -> None:
    clock = Clock()
    auth, _ = make(station("CP-1"), clock=clock, login_lockout=120)
    _fail(auth, "CP-1", "192.0.2.1", 5)
    clock.advance(119)
    assert (
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.9")).retry_after == 1
    )
    clock.advance(1)
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.9")).accepted


def test_case_8_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    auth, _ = make(station("CP-1"), clock=clock, failed_login_window=60)
    for _ in range(10):
        _fail(auth, "CP-1", "192.0.2.1", 4)
        clock.advance(61)
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")).accepted


def test_case_8_failed_logins_lock_the_address_out() -> None:
    auth, _ = make(*(station(f"CP-{n}") for n in range(30)))
    # 20 failures from one address, 4 per station: no station reaches its limit
    for n in range(5):
        _fail(auth, f"CP-{n}", "192.0.2.1", 4)
    decision = auth.authenticate(attempt("CP-29", basic("CP-29", PASSWORD), ip="192.0.2.1"))
    assert_refused(decision, 429, "throttled")
    # the same station from another address is fine
    assert auth.authenticate(attempt("CP-29", basic("CP-29", PASSWORD), ip="192.0.2.2")).accepted
    # a locked-out address gets 429 even for an unknown station: nothing is revealed
    assert_refused(auth.authenticate(attempt("CP-X", ip="192.0.2.1")), 429, "throttled")


def test_case_8_a_successful_login_does_not_reset_the_address_count() -> None:
    auth, _ = make(*(station(f"CP-{n}") for n in range(30)))
    for n in range(19):
        _fail(auth, f"CP-{n}", "192.0.2.1")
    assert auth.authenticate(attempt("CP-25", basic("CP-25", PASSWORD), ip="192.0.2.1")).accepted
    _fail(auth, "CP-20", "192.0.2.1")
    decision = auth.authenticate(attempt("CP-26", basic("CP-26", PASSWORD), ip="192.0.2.1"))
    assert_refused(decision, 429, "throttled")


def test_case_8_guessing_elsewhere_does_not_lock_the_station_out_at_its_own_address() -> None:
    auth, _ = make(station("CP-1"))
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")).accepted
    _fail(auth, "CP-1", "203.0.113.66", 5)  # an attacker
    assert_refused(
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="203.0.113.67")),
        429,
        "throttled",
    )
    # the station reconnecting from where it last logged in is let in
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")).accepted


def test_case_8_a_station_failing_at_its_own_address_is_locked_out() -> None:
    auth, _ = make(station("CP-1"))
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")).accepted
    _fail(auth, "CP-1", "192.0.2.1", 5)
    assert_refused(
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")),
        429,
        "throttled",
    )


def test_case_8_lockouts_can_be_switched_off() -> None:
    auth, _ = make(station("CP-1"), max_failed_logins=0, max_failed_logins_per_address=0)
    _fail(auth, "CP-1", "192.0.2.1", 50)
    assert auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="192.0.2.1")).accepted


def test_case_8_handshake_flood_from_one_address_is_rate_limited() -> None:
    clock = Clock()
    auth, _ = make(
        station("CP-1"), station("CP-2"), clock=clock, handshake_rate=10, handshake_burst=20
    )
    results = [auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD))) for _ in range(25)]
    assert [d.accepted for d in results] == [True] * 20 + [False] * 5
    assert_refused(results[-1], 429, "rate_limited")
    assert results[-1].retry_after == 1
    # other addresses are unaffected
    assert auth.authenticate(attempt("CP-2", basic("CP-2", PASSWORD), ip="192.0.2.200")).accepted
    # the bucket refills at the rate
    clock.advance(0.5)
    refilled = [auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD))) for _ in range(6)]
    assert [d.accepted for d in refilled] == [True] * 5 + [False]


def test_case_8_handshake_rate_limit_can_be_switched_off() -> None:
    auth, _ = make(station("CP-1"), handshake_rate=0)
    assert all(
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD))).accepted for _ in range(1000)
    )


def test_case_8_an_ipv6_slash_64_is_one_address() -> None:
    auth, _ = make(station("CP-1"), max_failed_logins=0, max_failed_logins_per_address=3)
    for host in ("1", "2", "3"):
        _fail(auth, "CP-1", f"2001:db8:1:2::{host}")
    assert_refused(
        auth.authenticate(attempt("CP-1", basic("CP-1", PASSWORD), ip="2001:db8:1:2:ffff::9")),
        429,
        "throttled",
    )
    assert auth.authenticate(
        attempt("CP-1", basic("CP-1", PASSWORD), ip="2001:db8:1:3::1")
    ).accepted


def test_case_8_memory_is_bounded() -> None:
    auth, _ = make(station("CP-1"), throttle_capacity=100)
    for n in range(5000):
        auth.authenticate(
            attempt("CP-1", basic("CP-1", "wrong-password-1234"), ip=f"10.{n // 256}.{n % 256}.1")
        )
    addresses, stations = auth.throttle.tracked
    assert addresses <= 100
    assert stations <= 100
    assert auth.rate_limiter.tracked <= 100


def test_throttle_key() -> None:
    assert throttle_key("192.0.2.1") == "192.0.2.1"
    assert throttle_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert throttle_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle_key("not an address:x") == "not an address:x"


# --------------------------------------------------------------------------- the decision


def test_reasons_are_a_fixed_vocabulary() -> None:
    assert set(REASONS) == {
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
    }


def test_failed_logins_are_the_refusals_that_tried_a_credential() -> None:
    assert {
        "missing_credentials",
        "username_mismatch",
        "bad_credentials",
        "certificate_mismatch",
    } == FAILED_LOGIN_REASONS


def test_attempt_and_decision_reprs_hold_no_secrets() -> None:
    auth, _ = make(station("CP-1"))
    try_ = attempt(
        "CP-1", basic("CP-1", PASSWORD), headers={"authorization": basic("CP-1", PASSWORD)}
    )
    decision = auth.authenticate(try_)
    text = repr(try_) + repr(decision)
    assert base64.b64encode(b"CP-1:" + PASSWORD.encode()).decode() not in text
    assert HASH not in text
    assert PASSWORD not in text


def test_attempt_and_decision_are_frozen_and_slotted() -> None:
    decision = Decision(accepted=True, http_status=101, reason="ok")
    with pytest.raises(AttributeError):
        decision.accepted = False  # type: ignore[misc]
    assert not hasattr(decision, "__dict__")
    assert not hasattr(attempt("CP-1"), "__dict__")


def test_a_reconnect_storm_costs_microseconds_per_handshake() -> None:
    """19,000 profile-2 stations reconnecting at once: the authenticator's share stays small."""
    stations = [station(f"CP-{n:05d}", 2) for n in range(19_000)]
    auth, _ = make(*stations)
    attempts = [
        attempt(
            s.station_id, basic(s.station_id, PASSWORD), tls=True, ip=f"10.{n // 250}.{n % 250}.1"
        )
        for n, s in enumerate(stations)
    ]
    started = time.perf_counter()
    decisions = [auth.authenticate(a) for a in attempts]
    elapsed = time.perf_counter() - started
    assert all(d.accepted for d in decisions)
    # about 10 µs each on the 2-core development machine; the bound leaves room for slow CI
    assert elapsed / len(attempts) < 200e-6, f"{elapsed / len(attempts) * 1e6:.1f} µs per handshake"


# --------------------------------------------------------------------------- distinguished names


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("CN=CP-1,O=Acme,C=NL", [("CN", "CP-1"), ("O", "Acme"), ("C", "NL")]),
        ("CN=CP-1, O=Acme Charging", [("CN", "CP-1"), ("O", "Acme Charging")]),
        ("CN=CP-1;O=Acme", [("CN", "CP-1"), ("O", "Acme")]),
        ("CN=CP-1+serialNumber=42,O=Acme", [("CN", "CP-1"), ("serialNumber", "42"), ("O", "Acme")]),
        ("O=Acme\\, Inc.,CN=CP-1", [("O", "Acme, Inc."), ("CN", "CP-1")]),
        ("CN=Caf\\C3\\A9,O=A", [("CN", "Café"), ("O", "A")]),
        ("CN=\\ padded\\ ,O=A", [("CN", " padded "), ("O", "A")]),
        ("CN=a\\+b\\=c\\\\d", [("CN", "a+b=c\\d")]),
        ("/C=NL/O=Acme/CN=CP-1", [("C", "NL"), ("O", "Acme"), ("CN", "CP-1")]),
        ("CN=", [("CN", "")]),
    ],
)
def test_distinguished_names_are_parsed(text: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_distinguished_name(text) == pairs


@pytest.mark.parametrize("text", ["", "CP-1", "CN=CP-1,", "CN=x\\", "/CN", "=x", "C,N=x"])
def test_malformed_distinguished_names_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="distinguished name"):
        parse_distinguished_name(text)
    assert CertificateSubject.from_distinguished_name(text) is None


def test_subject_attribute_names_are_case_insensitive_and_may_be_long_or_oids() -> None:
    subject = CertificateSubject.from_distinguished_name("commonName=CP-1,2.5.4.10=Acme,o=Two")
    assert subject == CertificateSubject(("CP-1",), ("Acme", "Two"))


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping of an attribute value."""
    out = []
    for n, char in enumerate(value):
        if (
            char in ',+"\\<>;='
            or (char == "#" and n == 0)
            or (char == " " and n in (0, len(value) - 1))
        ):
            out.append("\\" + char)
        elif ord(char) < 0x20:
            out.append("".join(f"\\{b:02X}" for b in char.encode()))
        else:
            out.append(char)
    return "".join(out)


@example([("CN", " ")])
@example([("CN", "\x85")])  # Unicode whitespace (NEL) is a value, not padding
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["CN", "O", "OU", "C", "L", "serialNumber"]), st.text(max_size=20)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_distinguished_names_round_trip(pairs: list[tuple[str, str]]) -> None:
    text = ",".join(f"{name}={_escape(value)}" for name, value in pairs)
    assert parse_distinguished_name(text) == pairs
