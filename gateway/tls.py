"""The TLS server context for security profiles 2 and 3 (OCPP 2.0.1 A00.FR.306-324, 401-429).

- TLS 1.2 or above (A00.FR.313); 1.0, 1.1 and SSL are refused at the handshake.
- TLS 1.2 cipher suites: only AES-GCM with SHA-2, by default the four OCPP
  requires (A00.FR.318) plus their forward-secret RSA variants, the server's
  order preferred::

      ECDHE-ECDSA-AES128-GCM-SHA256  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256  required
      ECDHE-ECDSA-AES256-GCM-SHA384  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384  required
      ECDHE-RSA-AES128-GCM-SHA256    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256    forward secrecy
      ECDHE-RSA-AES256-GCM-SHA384    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384    for RSA certificates
      AES128-GCM-SHA256              TLS_RSA_WITH_AES_128_GCM_SHA256          required
      AES256-GCM-SHA384              TLS_RSA_WITH_AES_256_GCM_SHA384          required

  The two ``TLS_RSA`` suites OCPP requires use RSA key transport, without
  forward secrecy (A00.FR.319 note 1 recommends ECDHE), so a station that offers
  ECDHE-RSA gets it. TLS 1.3 suites are OpenSSL's (all AEAD).
- An ECDSA suite needs an ECDSA certificate and an RSA suite an RSA one: "the
  CSMS will have to provide 2 different certificates" (A00.FR.318). Give both
  (``CSMS_TLS_CERT=rsa.pem,ecdsa.pem``); OpenSSL picks per handshake.
- No TLS compression (A00.FR.321), no renegotiation.
- Client certificates are requested, not required (``CERT_OPTIONAL``), so
  profile-2 stations without one share the port with profile-3 stations; a
  certificate that is presented is verified against the client CA, and one from
  another CA fails the handshake (A00.FR.403/407). That the certificate names
  the station (CN, O) is checked by :mod:`gateway.auth`. Without a client CA no
  certificate is requested, so no station can use profile 3.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Sequence

from contracts.settings import SettingsError, setting

__all__ = ["OCPP_CIPHERS", "TlsSettings", "build_server_context", "server_context"]

OCPP_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    ]
)
"""The TLS 1.2 cipher suites offered, in OpenSSL's names and the server's order."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """The gateway's TLS listener (profiles 2 and 3); see docs/security.md."""

    cert: tuple[str, ...] = setting(
        (),
        "PEM file(s) with the server certificate chain, comma-separated: one, or an RSA and an "
        "ECDSA one to offer all four OCPP cipher suites (A00.FR.318)",
        env="CSMS_TLS_CERT",
        flag="--tls-cert",
    )
    key: tuple[str, ...] = setting(
        (),
        "PEM file(s) with the private key of each certificate, in the same order "
        "(empty: the key is in the certificate file)",
        env="CSMS_TLS_KEY",
        flag="--tls-key",
    )
    client_ca: str = setting(
        "",
        "PEM file with the CA certificate(s) station certificates must chain to (profile 3); "
        "empty: client certificates are not requested",
        env="CSMS_TLS_CLIENT_CA",
        flag="--tls-client-ca",
    )
    ciphers: str = setting(
        OCPP_CIPHERS,
        "TLS 1.2 cipher suites (OpenSSL names, colon-separated)",
        env="CSMS_TLS_CIPHERS",
    )


def build_server_context(
    cert_file: str,
    key_file: str | None = None,
    client_ca_file: str | None = None,
    *,
    more_certificates: Sequence[tuple[str, str | None]] = (),
    ciphers: str = OCPP_CIPHERS,
) -> ssl.SSLContext:
    """A server context with ``cert_file`` (and ``more_certificates`` of other key types).

    ``client_ca_file``: request client certificates and verify them against it.
    Raises ``OSError`` / ``ssl.SSLError`` when a file cannot be read or a key
    does not match its certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    context.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_CIPHER_SERVER_PREFERENCE
        | ssl.OP_SINGLE_ECDH_USE
        | ssl.OP_NO_RENEGOTIATION
    )
    for cert, key in [(cert_file, key_file), *more_certificates]:
        context.load_cert_chain(cert, key or None)
    if client_ca_file:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context of the gateway's TLS listener, from its settings.

    ``SettingsError`` when the settings do not describe a listener (no
    certificate, or keys that do not pair with the certificates); ``OSError`` /
    ``ssl.SSLError`` when the files are unreadable or do not match.
    """
    if not settings.cert:
        raise SettingsError("CSMS_TLS_CERT: a TLS listener needs a server certificate")
    if settings.key and len(settings.key) != len(settings.cert):
        raise SettingsError(
            f"CSMS_TLS_KEY: {len(settings.key)} key file(s) for {len(settings.cert)} certificate(s)"
        )
    keys: list[str | None] = list(settings.key) if settings.key else [None] * len(settings.cert)
    pairs = list(zip(settings.cert, keys, strict=True))
    try:
        return build_server_context(
            pairs[0][0],
            pairs[0][1],
            settings.client_ca or None,
            more_certificates=pairs[1:],
            ciphers=settings.ciphers,
        )
    except ssl.SSLError as exc:
        if "cipher" in str(exc).lower():
            raise SettingsError(f"CSMS_TLS_CIPHERS={settings.ciphers!r}: {exc}") from exc
        raise
