"""RELIABILITY.md §"Connection and authentication", end to end through a gateway process.

The rules themselves are unit-tested in tests/gateway/test_auth.py and
test_handshake.py; here each case is driven through real sockets, real TLS and
the real registry topic, so that the wiring is what is tested.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
import websockets
from ocpp.v16 import call as call16

from contracts.envelopes import StationRecord, decode_event, decode_rejected_payload
from gateway.credentials import hash_password
from gateway.stations import write_station
from tests.support.gateway import GatewayProcess
from tests.support.handshake import basic, handshake
from tests.support.kafka import KafkaUnderTest
from tests.support.records import Collector
from tests.support.stations import connect16, connect_raw

OPERATOR = "Acme Charging"


@dataclass(frozen=True)
class Fleet:
    """Registered stations (unique per run: the broker is shared by the whole session)."""

    p1: str
    p1_failing: str  # collects failed logins (cases 2, 3): kept apart so p1 is never locked out
    p2: str
    p2_locked: str  # locked out by case 8
    p3: str
    password: str


@dataclass(frozen=True)
class Pki:
    server_cert: Path
    server_key: Path
    station_ca: Path
    client: trustme.LeafCert  # CN = the profile-3 station
    client_wrong_cn: trustme.LeafCert
    client_wrong_o: trustme.LeafCert
    csms_ca: trustme.CA


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    suffix = uuid.uuid4().hex[:6]
    return Fleet(
        p1=f"P1-{suffix}",
        p1_failing=f"P1F-{suffix}",
        p2=f"P2-{suffix}",
        p2_locked=f"P2L-{suffix}",
        p3=f"P3-{suffix}",
        password="correct-horse-battery-1",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    csms_ca = trustme.CA(organization_name="csms test")
    station_ca = trustme.CA(organization_name="Station CA")
    server = csms_ca.issue_cert("localhost")
    server.cert_chain_pems[0].write_to_path(folder / "server.pem")
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(folder / "server.pem", append=True)
    server.private_key_pem.write_to_path(folder / "server.key")
    station_ca.cert_pem.write_to_path(folder / "station-ca.pem")
    return Pki(
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        station_ca=folder / "station-ca.pem",
        client=station_ca.issue_cert(
            "station.test", common_name=fleet.p3, organization_name=OPERATOR
        ),
        client_wrong_cn=station_ca.issue_cert(
            "station.test", common_name=fleet.p1, organization_name=OPERATOR
        ),
        client_wrong_o=station_ca.issue_cert(
            "station.test", common_name=fleet.p3, organization_name="Someone Else"
        ),
        csms_ca=csms_ca,
    )


@pytest.fixture(scope="module")
def secure_gateway(kafka: KafkaUnderTest, fleet: Fleet, pki: Pki) -> Iterator[GatewayProcess]:
    """A production-like gateway: registered stations only, a TLS listener, mTLS for profile 3."""
    now = datetime.now(UTC)

    async def register() -> None:
        stations = (
            (fleet.p1, 1),
            (fleet.p1_failing, 1),
            (fleet.p2, 2),
            (fleet.p2_locked, 2),
            (fleet.p3, 3),
        )
        for station, profile in stations:
            await write_station(
                kafka.settings,
                station,
                StationRecord(
                    station_id=station,
                    security_profile=profile,  # type: ignore[arg-type]
                    password_hash=hash_password(fleet.password) if profile < 3 else None,
                    updated_at=now,
                ),
            )

    asyncio.run(register())
    env = {
        "CSMS_TLS_CERT": str(pki.server_cert),
        "CSMS_TLS_KEY": str(pki.server_key),
        "CSMS_TLS_CLIENT_CA": str(pki.station_ca),
        "CSMS_TLS_ORGANIZATION": OPERATOR,
        "CSMS_MAX_FAILED_LOGINS": "3",
    }
    with GatewayProcess(kafka, "--tls-port", "0", allow_unknown=False, env=env) as gateway:
        yield gateway


def _client_context(pki: Pki, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki.csms_ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    return context


@pytest.fixture
async def events(kafka: KafkaUnderTest) -> AsyncIterator[Collector]:
    async with Collector(kafka, "ocpp.events.v1") as collector:
        yield collector


async def _refused(
    gateway: GatewayProcess,
    station: str,
    *headers: tuple[str, str],
    context: ssl.SSLContext | None = None,
) -> int:
    port = gateway.tls_port if context is not None else gateway.port
    assert port is not None
    answer = await handshake(
        port,
        f"/ocpp/{station}",
        [("Sec-WebSocket-Protocol", "ocpp1.6"), *headers],
        ssl_context=context,
    )
    await answer.close()
    return answer.status


# ----------------------------------------------------------------------------- cases 1-8


async def test_case_1_unknown_station_is_404_before_the_upgrade_and_publishes_nothing(
    secure_gateway: GatewayProcess, fleet: Fleet, events: Collector
) -> None:
    unknown = f"NOPE-{uuid.uuid4().hex[:6]}"
    assert await _refused(secure_gateway, unknown, basic(unknown, fleet.password)) == 404
    # a known station's event afterwards proves the events of the attempt would have arrived
    async with connect16(
        secure_gateway.url(fleet.p1), additional_headers=[basic(fleet.p1, fleet.password)]
    ) as cp:
        await cp.call(call16.Heartbeat())
        await events.wait_for(lambda rs: any(r.key == fleet.p1.encode() for r in rs))
    assert events.keyed(unknown) == []


async def test_case_2_basic_username_differing_from_url_identity_is_401(
    secure_gateway: GatewayProcess, fleet: Fleet
) -> None:
    status = await _refused(secure_gateway, fleet.p1_failing, basic(fleet.p2, fleet.password))
    assert status == 401


async def test_case_3_wrong_or_missing_password_is_401_published_and_counted(
    secure_gateway: GatewayProcess, fleet: Fleet, events: Collector
) -> None:
    before = secure_gateway.metric(
        "csms_gateway_failed_logins_total", {"reason": "bad_credentials"}
    )
    assert (
        await _refused(
            secure_gateway, fleet.p1_failing, basic(fleet.p1_failing, "wrong-password-1234")
        )
        == 401
    )
    assert await _refused(secure_gateway, fleet.p1_failing) == 401  # no credentials at all

    def reasons() -> list[str]:  # an earlier test's refusal of this station may arrive late
        return [
            decode_rejected_payload(event.payload).reason
            for event in (decode_event(r.value) for r in events.keyed(fleet.p1_failing))
            if event.kind == "rejected"
        ]

    await events.wait_for(
        lambda rs: "bad_credentials" in reasons(), what="the rejected security event"
    )
    after = secure_gateway.metric("csms_gateway_failed_logins_total", {"reason": "bad_credentials"})
    assert after == before + 1


async def test_case_4_security_profile_mismatch_is_refused(
    secure_gateway: GatewayProcess, fleet: Fleet, pki: Pki
) -> None:
    credentials = basic(fleet.p2, fleet.password)
    # profile 2 over plain ws (its password would travel in clear text)
    assert await _refused(secure_gateway, fleet.p2, credentials) == 403
    # profile 1 over TLS
    tls = _client_context(pki)
    assert (
        await _refused(secure_gateway, fleet.p1, basic(fleet.p1, fleet.password), context=tls)
        == 403
    )
    # profile 3 without a client certificate
    assert await _refused(secure_gateway, fleet.p3, context=tls) == 403
    # and the right transports work
    async with connect16(
        f"wss://localhost:{secure_gateway.tls_port}/ocpp/{fleet.p2}",
        ssl=tls,
        additional_headers=[credentials],
    ) as cp:
        assert (await cp.call(call16.Heartbeat())).current_time


async def test_case_5_profile_3_certificate_must_name_the_station_and_operator(
    secure_gateway: GatewayProcess, fleet: Fleet, pki: Pki
) -> None:
    wrong_cn = _client_context(pki, pki.client_wrong_cn)
    assert await _refused(secure_gateway, fleet.p3, context=wrong_cn) == 403
    wrong_o = _client_context(pki, pki.client_wrong_o)
    assert await _refused(secure_gateway, fleet.p3, context=wrong_o) == 403
    async with connect16(
        f"wss://localhost:{secure_gateway.tls_port}/ocpp/{fleet.p3}",
        ssl=_client_context(pki, pki.client),
    ) as cp:
        assert (await cp.call(call16.Heartbeat())).current_time


def _tls_handshake(port: int, context: ssl.SSLContext) -> str:
    """Complete a TLS handshake with the gateway; returns the negotiated version."""
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return str(tls.version())


async def test_case_6_tls_below_1_2_is_refused(secure_gateway: GatewayProcess, pki: Pki) -> None:
    port = secure_gateway.tls_port
    assert port is not None
    with warnings.catch_warnings():  # the ssl module deprecates naming the old versions
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _client_context(pki)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(_tls_handshake, port, old)
    # the same client allowed TLS 1.2 gets in: the refusal above is about the version
    current = _client_context(pki)
    assert await asyncio.to_thread(_tls_handshake, port, current) in ("TLSv1.2", "TLSv1.3")


async def test_case_7_proxy_headers_from_an_untrusted_address_are_ignored(
    secure_gateway: GatewayProcess, fleet: Fleet
) -> None:
    # a profile-3 station's certificate facts forged in headers, over plain ws from 127.0.0.1
    forged = [
        ("X-Forwarded-Proto", "https"),
        ("ssl-client-verify", "SUCCESS"),
        ("ssl-client-subject-dn", f"CN={fleet.p3},O={OPERATOR}"),
    ]
    assert await _refused(secure_gateway, fleet.p3, *forged) == 403


async def test_case_7_proxy_headers_from_a_trusted_proxy_are_used(
    kafka: KafkaUnderTest, secure_gateway: GatewayProcess, fleet: Fleet
) -> None:
    offload = {"CSMS_TRUSTED_PROXIES": "127.0.0.1/32", "CSMS_TLS_ORGANIZATION": OPERATOR}
    with GatewayProcess(kafka, allow_unknown=False, env=offload) as gateway:
        answer = await handshake(
            gateway.port,
            f"/ocpp/{fleet.p3}",
            [
                ("Sec-WebSocket-Protocol", "ocpp1.6"),
                ("X-Forwarded-For", "203.0.113.7"),
                ("X-Forwarded-Proto", "https"),
                ("ssl-client-verify", "SUCCESS"),
                ("ssl-client-subject-dn", f"CN={fleet.p3},O={OPERATOR}"),
            ],
        )
        await answer.close()
    assert answer.status == 101


async def test_case_8_failed_logins_are_throttled_and_others_are_unaffected(
    secure_gateway: GatewayProcess, fleet: Fleet, pki: Pki
) -> None:
    tls = _client_context(pki)
    victim = fleet.p2_locked
    for _ in range(3):  # CSMS_MAX_FAILED_LOGINS=3 for this gateway
        assert (
            await _refused(
                secure_gateway, victim, basic(victim, "bad-password-000000"), context=tls
            )
            == 401
        )
    # locked out now, even with the right password
    assert await _refused(secure_gateway, victim, basic(victim, fleet.password), context=tls) == 429
    # another station from the same address still gets in
    async with connect16(
        secure_gateway.url(fleet.p1), additional_headers=[basic(fleet.p1, fleet.password)]
    ) as cp:
        assert (await cp.call(call16.Heartbeat())).current_time


# ----------------------------------------------------------------------------- case 9


async def test_case_9_unauthenticated_duplicate_never_displaces_an_authenticated_one_does(
    secure_gateway: GatewayProcess, fleet: Fleet
) -> None:
    credentials = [basic(fleet.p1, fleet.password)]
    async with connect16(secure_gateway.url(fleet.p1), additional_headers=credentials) as first:
        await first.call(call16.Heartbeat())
        # an impostor without the password is refused and the first connection keeps working
        assert (
            await _refused(secure_gateway, fleet.p1, basic(fleet.p1, "not-the-password-1")) == 401
        )
        assert (await first.call(call16.Heartbeat())).current_time
        # the station itself reconnecting replaces the old connection, which is closed
        async with connect16(
            secure_gateway.url(fleet.p1), additional_headers=credentials
        ) as second:
            await asyncio.wait_for(first._connection.wait_closed(), 10)
            assert first._connection.close_code == 1000
            assert (await second.call(call16.Heartbeat())).current_time


async def test_case_9_an_attempt_given_up_before_it_was_served_does_not_displace_the_live_one(
    gateway_dev: GatewayProcess,
) -> None:
    """In a storm a station's attempt can time out in the accept queue; the station closes it
    and connects again. When the gateway reaches the old attempt, its client is gone: it must
    not replace the station's live connection."""
    station = f"CP-{uuid.uuid4().hex[:8]}"
    assert gateway_dev.process is not None
    pid = gateway_dev.process.pid
    abandoned = {"reason": "abandoned"}
    async with connect_raw(gateway_dev.url(station), "ocpp1.6") as live:
        assert (await live.call("Heartbeat", {}))[0] == 3
        before = gateway_dev.metric("csms_gateway_handshakes_rejected_total", abandoned)
        # the gateway is paused, so that it finds the attempt's request and its close together
        os.kill(pid, signal.SIGSTOP)
        try:
            with socket.create_connection(("127.0.0.1", gateway_dev.port)) as late:
                late.sendall(
                    f"GET /ocpp/{station} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
                )
                late.shutdown(socket.SHUT_WR)
        finally:
            os.kill(pid, signal.SIGCONT)
        async with asyncio.timeout(10):
            while gateway_dev.metric("csms_gateway_handshakes_rejected_total", abandoned) == before:
                await asyncio.sleep(0.05)
        assert (await live.call("Heartbeat", {}))[0] == 3  # still the station's connection


# ----------------------------------------------------------------------------- cases 10-12


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ("ocpp2.0.1, ocpp1.6", "ocpp2.0.1"),
        ("ocpp1.6, ocpp2.0.1", "ocpp1.6"),
        ("ocpp1.5, ocpp2.1", "ocpp2.1"),
        (" ocpp1.6 , , ocpp2.0.1,", "ocpp1.6"),
    ],
)
async def test_case_10_the_stations_preferred_supported_version_is_chosen(
    gateway_dev: GatewayProcess, offered: str, chosen: str
) -> None:
    answer = await handshake(
        gateway_dev.port, f"/ocpp/CP-{uuid.uuid4().hex[:6]}", [("Sec-WebSocket-Protocol", offered)]
    )
    await answer.close()
    assert answer.status == 101
    assert answer.headers["sec-websocket-protocol"] == chosen


@pytest.mark.parametrize("offered", [None, "ocpp1.5", "mqtt"])
async def test_case_10_no_supported_version_completes_without_header_and_closes(
    gateway_dev: GatewayProcess, offered: str | None
) -> None:
    headers = [("Sec-WebSocket-Protocol", offered)] if offered else []
    answer = await handshake(gateway_dev.port, f"/ocpp/CP-{uuid.uuid4().hex[:6]}", headers)
    assert answer.status == 101
    assert "sec-websocket-protocol" not in answer.headers
    code, _ = await answer.read_close_frame()
    await answer.close()
    assert code == 1002


@pytest.mark.parametrize(
    "path",
    [
        "/ocpp/",  # empty
        "/ocpp/" + "A" * 49,  # over 48 characters
        "/ocpp/CP%3A1",  # ':' is the Basic-auth separator
        "/ocpp/CP:1",
        "/ocpp/..",
        "/ocpp/%2E%2E",
        "/ocpp/CP%zz",  # malformed percent-encoding
        "/ocpp/CP%2F1",  # an encoded '/'
        "/ocpp/CP%00",
    ],
)
async def test_case_11_identity_edge_cases_are_rejected_with_400(
    gateway_dev: GatewayProcess, path: str
) -> None:
    answer = await handshake(gateway_dev.port, path, [("Sec-WebSocket-Protocol", "ocpp1.6")])
    await answer.close()
    assert answer.status == 400


async def test_case_11_percent_encoded_identity_is_decoded(
    gateway_dev: GatewayProcess, events: Collector
) -> None:
    station = f"RDAM {uuid.uuid4().hex[:6]}"  # Part 4's own example has a space
    async with connect_raw(gateway_dev.url(station.replace(" ", "%20")), "ocpp1.6") as raw:
        assert (await raw.call("Heartbeat", {}))[0] == 3
        await events.wait_for(lambda rs: any(r.key == station.encode() for r in rs))


async def test_case_12_calls_before_an_accepted_boot_get_security_error(
    kafka: KafkaUnderTest,
) -> None:
    with GatewayProcess(kafka, env={"CSMS_REQUIRE_BOOT": "true"}) as gateway:
        async with connect_raw(gateway.url(f"CP-{uuid.uuid4().hex[:6]}"), "ocpp1.6") as raw:
            refused = await raw.call("Heartbeat", {}, message_id="early")
            assert refused[:3] == [4, "early", "SecurityError"]
            boot = await raw.call(
                "BootNotification", {"chargePointModel": "M", "chargePointVendor": "V"}
            )
            assert boot[2]["status"] == "Accepted"
            assert (await raw.call("Heartbeat", {}, message_id="late"))[:2] == [3, "late"]


@pytest.fixture(scope="module")
def gateway_dev(kafka: KafkaUnderTest) -> Iterator[GatewayProcess]:
    with GatewayProcess(kafka) as gateway:
        yield gateway


_ = websockets  # the ocpp charge points above run on websockets' client
