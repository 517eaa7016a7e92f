"""The TLS server context: real handshakes on loopback (RELIABILITY case 6, chains of case 5).

A blocking server thread on port 0 wraps each accepted socket with the context
under test and reports what it saw; the test's client is a plain ``ssl`` client
socket. Certificates come from trustme: a CSMS CA with an RSA and an ECDSA
server certificate, a station CA with station certificates, and a foreign CA.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from contracts.settings import SettingsError, load
from gateway.auth import Attempt, Authenticator, CertificateSubject
from gateway.tls import OCPP_CIPHERS, TlsSettings, build_server_context, server_context

REQUIRED_SUITES = [
    # A00.FR.318 (OpenSSL names of the four suites OCPP requires)
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
]


@dataclasses.dataclass(frozen=True)
class Pki:
    csms_ca: trustme.CA
    rsa_cert: Path
    ecdsa_cert: Path  # key and chain in one PEM file
    rsa_key: Path
    rsa_chain: Path
    station_ca_file: Path
    station_cert: Path  # CN=CP-3, O=Acme Charging, from the station CA
    station_cert_other_ca: Path  # CN=CP-3, O=Acme Charging, from a foreign CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    csms_ca = trustme.CA(organization_name="csms test")
    station_ca = trustme.CA(organization_name="Acme Station CA")
    foreign_ca = trustme.CA(organization_name="Someone Else")
    rsa = csms_ca.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    ecdsa = csms_ca.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
    station = station_ca.issue_cert(
        "cp-3.stations.test", common_name="CP-3", organization_name="Acme Charging"
    )
    impostor = foreign_ca.issue_cert(
        "cp-3.stations.test", common_name="CP-3", organization_name="Acme Charging"
    )
    paths = {
        "rsa_cert": rsa.private_key_and_cert_chain_pem,
        "ecdsa_cert": ecdsa.private_key_and_cert_chain_pem,
        "rsa_key": rsa.private_key_pem,
        "station_ca_file": station_ca.cert_pem,
        "station_cert": station.private_key_and_cert_chain_pem,
        "station_cert_other_ca": impostor.private_key_and_cert_chain_pem,
    }
    written = {}
    for name, blob in paths.items():
        path = folder / f"{name}.pem"
        blob.write_to_path(str(path))
        written[name] = path
    rsa_chain = folder / "rsa_chain.pem"
    rsa_chain.write_bytes(b"".join(pem.bytes() for pem in rsa.cert_chain_pems))
    return Pki(csms_ca=csms_ca, rsa_chain=rsa_chain, **written)


@dataclasses.dataclass
class Outcome:
    """What the server saw of one handshake."""

    ok: bool
    version: str | None = None
    cipher: str | None = None
    peer_cert: dict[str, Any] | None = None
    error: str = ""


class TlsServer:
    """A blocking TLS server on 127.0.0.1:0 in a thread; one :class:`Outcome` per connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(0.05)
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                tls = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.outcomes.put(Outcome(ok=False, error=str(exc)))
                conn.close()
                continue
            with tls:
                cipher = tls.cipher()
                outcome = Outcome(
                    ok=True,
                    version=tls.version(),
                    cipher=cipher[0] if cipher else None,
                    peer_cert=tls.getpeercert(),
                )
                try:
                    # TLS 1.3 verifies the client certificate after the client's handshake
                    # ends: read once so that a refusal shows here and at the client
                    tls.recv(1)
                    tls.sendall(b"k")
                except (ssl.SSLError, OSError) as exc:
                    outcome = Outcome(ok=False, error=str(exc))
                self.outcomes.put(outcome)

    def outcome(self) -> Outcome:
        return self.outcomes.get(timeout=10)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@contextlib.contextmanager
def serving(context: ssl.SSLContext) -> Iterator[TlsServer]:
    server = TlsServer(context)
    try:
        yield server
    finally:
        server.close()


def client_context(
    pki: Pki,
    *,
    version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    cert: Path | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki.csms_ca.configure_trust(context)
    if version is not None:
        with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated names
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if cert is not None:
        context.load_cert_chain(str(cert))
    return context


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """Connect, exchange a byte, and return (TLS version, cipher); raises on a refusal."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"x")
        if tls.recv(1) != b"k":
            raise ConnectionError("the server closed the connection")
        cipher = tls.cipher()
        return tls.version(), cipher[0] if cipher else None


def both_certificates(pki: Pki, client_ca: Path | None = None) -> ssl.SSLContext:
    return build_server_context(
        str(pki.rsa_cert),
        None,
        str(client_ca) if client_ca else None,
        more_certificates=[(str(pki.ecdsa_cert), None)],
    )


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize("old", ["TLSv1", "TLSv1_1"])
def test_case_6_tls_below_1_2_is_refused(pki: Pki, old: str) -> None:
    version = getattr(ssl.TLSVersion, old)
    legacy = client_context(pki, version=version, ciphers="DEFAULT:@SECLEVEL=0")
    # Control: can this OpenSSL offer the old version at all? A server that allows it says.
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = version
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(str(pki.rsa_cert))
    with serving(permissive) as control:
        try:
            offered = handshake(control.port, legacy)[0] is not None
        except (ssl.SSLError, OSError):
            offered = False  # this OpenSSL cannot offer it: the refusal below holds anyway
        control.outcome()
    with serving(both_certificates(pki)) as server:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            handshake(server.port, legacy)
        outcome = server.outcome()
    assert not outcome.ok
    if offered:
        # the old version was really offered (it is with OpenSSL 3.0 at SECLEVEL=0), and our
        # server turned it down for its version
        assert "unsupported protocol" in outcome.error.lower()


def test_tls_1_3_is_accepted(pki: Pki) -> None:
    with serving(both_certificates(pki)) as server:
        version, _ = handshake(server.port, client_context(pki, version=ssl.TLSVersion.TLSv1_3))
    assert version == "TLSv1.3"


# --------------------------------------------------------------------------- cipher suites


@pytest.mark.parametrize(
    "suite", [*REQUIRED_SUITES, "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"]
)
def test_case_6_each_ocpp_suite_works(pki: Pki, suite: str) -> None:
    client = client_context(pki, version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    with serving(both_certificates(pki)) as server:
        version, cipher = handshake(server.port, client)
        assert server.outcome().ok
    assert (version, cipher) == ("TLSv1.2", suite)


@pytest.mark.parametrize("suite", REQUIRED_SUITES)
def test_case_6_ocpp_suites_work_with_the_matching_single_certificate(pki: Pki, suite: str) -> None:
    certificate = pki.ecdsa_cert if "ECDSA" in suite else pki.rsa_cert
    client = client_context(pki, version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    with serving(build_server_context(str(certificate))) as server:
        assert handshake(server.port, client) == ("TLSv1.2", suite)


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA",
        "AES128-SHA256",
        "AES128-SHA",
        "DHE-RSA-AES128-GCM-SHA256",
    ],
)
def test_case_6_a_tls_1_2_suite_not_listed_is_refused(pki: Pki, suite: str) -> None:
    client = client_context(pki, version=ssl.TLSVersion.TLSv1_2, ciphers=f"{suite}:@SECLEVEL=0")
    with serving(both_certificates(pki)) as server:
        with pytest.raises(ssl.SSLError):
            handshake(server.port, client)
        outcome = server.outcome()
    assert not outcome.ok
    assert "no shared cipher" in outcome.error.lower()


def test_the_server_offers_only_aes_gcm_in_tls_1_2(pki: Pki) -> None:
    context = both_certificates(pki)
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == OCPP_CIPHERS.split(":")
    assert context.options & ssl.OP_NO_COMPRESSION  # A00.FR.321
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# --------------------------------------------------------------------------- client certificates


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_case_6_client_certificate_from_another_ca_is_refused(
    pki: Pki, version: ssl.TLSVersion
) -> None:
    client = client_context(pki, version=version, cert=pki.station_cert_other_ca)
    with serving(both_certificates(pki, pki.station_ca_file)) as server:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            handshake(server.port, client)
        outcome = server.outcome()
    assert not outcome.ok
    assert "certificate" in outcome.error.lower()


def test_client_certificate_from_the_station_ca_is_verified_and_names_the_station(
    pki: Pki,
) -> None:
    client = client_context(pki, cert=pki.station_cert)
    with serving(both_certificates(pki, pki.station_ca_file)) as server:
        handshake(server.port, client)
        outcome = server.outcome()
    assert outcome.ok
    subject = CertificateSubject.from_peer_cert(outcome.peer_cert)
    assert subject == CertificateSubject(("CP-3",), ("Acme Charging",))


def test_case_5_verified_certificate_is_checked_by_the_authenticator(pki: Pki) -> None:
    """The chain is the TLS layer's; CN and O are the authenticator's: both together."""
    from datetime import UTC, datetime

    from contracts.envelopes import StationRecord
    from gateway.auth import AuthSettings

    class Registry(dict[str, StationRecord]):
        caught_up = True

    registry = Registry(
        {
            sid: StationRecord(station_id=sid, security_profile=3, updated_at=datetime.now(UTC))
            for sid in ("CP-3", "CP-4")
        }
    )
    with serving(both_certificates(pki, pki.station_ca_file)) as server:
        handshake(server.port, client_context(pki, cert=pki.station_cert))
        peer_cert = server.outcome().peer_cert
    auth = Authenticator(registry, AuthSettings(tls_organization="Acme Charging"))
    own = auth.authenticate(
        Attempt(station_id="CP-3", remote_ip="127.0.0.1", tls=True, peer_cert=peer_cert)
    )
    other = auth.authenticate(
        Attempt(station_id="CP-4", remote_ip="127.0.0.1", tls=True, peer_cert=peer_cert)
    )
    assert own.accepted
    assert (other.accepted, other.reason) == (False, "certificate_mismatch")


def test_a_station_without_a_certificate_connects_on_the_same_port(pki: Pki) -> None:
    with serving(both_certificates(pki, pki.station_ca_file)) as server:
        handshake(server.port, client_context(pki))
        outcome = server.outcome()
    assert outcome.ok
    assert outcome.peer_cert is None


def test_without_a_client_ca_no_certificate_is_requested(pki: Pki) -> None:
    client = client_context(pki, cert=pki.station_cert_other_ca)
    with serving(both_certificates(pki)) as server:
        handshake(server.port, client)
        outcome = server.outcome()
    assert outcome.ok
    assert outcome.peer_cert is None


# --------------------------------------------------------------------------- settings


def test_server_context_from_settings_with_separate_keys(pki: Pki) -> None:
    settings = load(
        TlsSettings,
        env={
            "CSMS_TLS_CERT": f"{pki.rsa_chain},{pki.ecdsa_cert}",
            "CSMS_TLS_KEY": f"{pki.rsa_key},{pki.ecdsa_cert}",
            "CSMS_TLS_CLIENT_CA": str(pki.station_ca_file),
        },
    )
    context = server_context(settings)
    assert context.verify_mode == ssl.CERT_OPTIONAL
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "AES256-GCM-SHA384"):
        client = client_context(pki, version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
        with serving(context) as server:
            assert handshake(server.port, client) == ("TLSv1.2", suite)


def test_server_context_needs_a_certificate() -> None:
    with pytest.raises(SettingsError, match="CSMS_TLS_CERT"):
        server_context(TlsSettings())


def test_server_context_needs_a_key_per_certificate(pki: Pki) -> None:
    settings = TlsSettings(cert=(str(pki.rsa_chain), str(pki.ecdsa_cert)), key=(str(pki.rsa_key),))
    with pytest.raises(SettingsError, match="CSMS_TLS_KEY"):
        server_context(settings)


def test_server_context_refuses_a_cipher_list_openssl_does_not_know(pki: Pki) -> None:
    settings = TlsSettings(cert=(str(pki.rsa_cert),), ciphers="NOT-A-CIPHER")
    with pytest.raises(SettingsError, match="CSMS_TLS_CIPHERS"):
        server_context(settings)


def test_server_context_refuses_a_key_that_does_not_match(pki: Pki) -> None:
    settings = TlsSettings(cert=(str(pki.rsa_chain),), key=(str(pki.ecdsa_cert),))
    with pytest.raises(ssl.SSLError):
        server_context(settings)
