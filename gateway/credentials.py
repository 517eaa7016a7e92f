"""Station passwords: the rules, the hash kept in the registry, and the HTTP Basic credentials.

A station on security profile 1 or 2 proves its identity with HTTP Basic
authentication (RFC 7617) on the websocket upgrade request: the username is its
identity, the password the one the CSMS gave it (OCPP 2.0.1 ``BasicAuthPassword``,
A00.FR.204/205; OCPP 1.6 ``AuthorizationKey``, whitepaper A00.FR.204/205).

The hash (ADR 0005)
-------------------
The registry keeps ``sha256$<salt>$<digest>``: a 16-byte random salt per station
and ``SHA-256(salt || password)``, both in lower-case hex. One SHA-256 is enough
because the passwords are not chosen by people: the CSMS generates them (16 to 40
characters, at least 95 bits of entropy), and an exhaustive search of that space
is out of reach however fast the hash. A slow KDF would only cost the gateway:
at 600,000 PBKDF2 rounds a reconnect storm of 19,000 stations needs hours of
CPU; this verification costs about 1.5 µs. The digest is compared with
:func:`hmac.compare_digest`. The scheme prefix lets a later format be added
beside this one.

The OCPP 1.6 octet form
-----------------------
OCPP 1.6 keeps the password in ``AuthorizationKey``, "randomly generated binary
... hexadecimal represented (20 bytes maximum, represented as a string of up to
40 hexadecimal digits)" (1.6 security whitepaper, A00.FR.205 and §7.2), and
OCPP 2.0.1 notes that its encoding of the password "differs from how this was
done in OCPP 1.6": 2.0.1 sends the string itself, "NOT encoded into octet
string" (2.0.1 A00.FR.205). So a 1.6 station may send the octets that the hex
key stands for instead of the hex text. When :func:`verify_password` is asked to
accept that form, a password of 8 to 20 bytes that does not match as sent is
tried again as its hex text (lower case, then upper case), which is how the key
was registered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import secrets
import string

__all__ = [
    "GENERATED_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "BasicCredentials",
    "PasswordRejected",
    "basic_credentials",
    "check_password",
    "generate_password",
    "hash_password",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 16
"""OCPP 2.0.1 A00.FR.205: at least 16 characters (1.6: at least 16 bytes of key)."""
MAX_PASSWORD_LENGTH = 40
"""OCPP 2.0.1 A00.FR.205 and 1.6 A00.FR.205 (40 hex digits). The 2.0.1 errata of
2025-09 allow up to 64 where the station's BasicAuthPassword ``maxLimit`` says so;
40 is what every station takes."""
GENERATED_PASSWORD_LENGTH = 32
"""Generated passwords: 32 letters and digits, about 190 bits."""

SCHEME = "sha256"
SALT_BYTES = 16
_ALPHABET = string.ascii_letters + string.digits
# the 1.6 AuthorizationKey is 8 to 20 bytes when sent as octets (16 to 40 hex digits)
_OCTET_FORM_LENGTHS = range(8, 21)


class PasswordRejected(ValueError):
    """A password that breaks the rules of :func:`check_password`; the message says which."""


def check_password(password: str) -> None:
    """Raise :class:`PasswordRejected` unless ``password`` can be a station's password.

    16 to 40 characters (A00.FR.205), none of them whitespace or a control
    character (a station sends the password inside an HTTP header).
    """
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise PasswordRejected(
            f"a station password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters "
            f"(OCPP A00.FR.205); this one has {len(password)}"
        )
    if any(not c.isprintable() or c.isspace() for c in password):
        raise PasswordRejected("a station password has no whitespace or control characters")


def generate_password(length: int = GENERATED_PASSWORD_LENGTH) -> str:
    """A new random password of letters and digits (valid for OCPP 1.6 and 2.0.1 stations)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The registry form of ``password``: ``sha256$<salt hex>$<digest hex>``."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def verify_password(password_hash: str, password: bytes, *, octet_form: bool = False) -> bool:
    """Whether ``password`` (as the station sent it) matches ``password_hash``.

    ``octet_form``: also accept the OCPP 1.6 octet form of a hex key (see the
    module docstring). A hash in an unknown format matches nothing.
    """
    scheme, _, rest = password_hash.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    if scheme != SCHEME:
        return False
    try:
        salt = bytes.fromhex(salt_hex)
        expected = bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if hmac.compare_digest(hashlib.sha256(salt + password).digest(), expected):
        return True
    if octet_form and len(password) in _OCTET_FORM_LENGTHS:
        text = password.hex().encode()
        for candidate in (text, text.upper()):
            if hmac.compare_digest(hashlib.sha256(salt + candidate).digest(), expected):
                return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class BasicCredentials:
    """The username and password of an ``Authorization: Basic`` header, as bytes."""

    username: bytes
    password: bytes = dataclasses.field(repr=False)


def basic_credentials(authorization: str | None) -> BasicCredentials | None:
    """The credentials of an ``Authorization`` header; ``None`` when absent or not Basic.

    RFC 7617 §2: ``Basic`` (any case), then base64 of ``user-id ":" password``;
    the user-id has no colon, so the first colon separates them. Missing padding
    is tolerated; anything else that is not base64 is not Basic credentials.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    token = token.strip()
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return BasicCredentials(username, password)
