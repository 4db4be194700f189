"""The code in the QR: a compact, Ed25519-signed statement of what the locker needs
to decide offline. The server signs (it alone holds private keys); the controller
verifies with public keys only, so a controller stolen from the park cannot mint codes.

Layout (big-endian), then the 64-byte signature, all base64url without padding:
version u8 | key id u8 | reservation id u32 | cabinet id u16 | compartment u16 |
valid from u32 | valid until u32 (both in minutes since the Unix epoch, UTC).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
_LAYOUT = struct.Struct(">BBIHHII")
SIGNATURE_LENGTH = 64
TOKEN_LENGTH = len(base64.urlsafe_b64encode(b"\0" * (_LAYOUT.size + SIGNATURE_LENGTH)).rstrip(b"="))
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{%d}" % TOKEN_LENGTH)


class InvalidCode(ValueError):
    """A code that must open nothing. ``reason`` is a short machine word for logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CodeClaims:
    reservation_id: int
    cabinet_id: int
    compartment: int
    valid_from: datetime  # aware, UTC, whole minutes
    valid_until: datetime
    key_id: int = 0

    def window_contains(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_until


def _to_minutes(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() // 60)


def _from_minutes(minutes: int) -> datetime:
    return datetime.fromtimestamp(minutes * 60, tz=timezone.utc)


def sign(private_key: Ed25519PrivateKey, key_id: int, claims: CodeClaims) -> str:
    payload = _LAYOUT.pack(VERSION, key_id, claims.reservation_id, claims.cabinet_id,
                           claims.compartment, _to_minutes(claims.valid_from),
                           _to_minutes(claims.valid_until))
    raw = payload + private_key.sign(payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify(token: str, public_keys: dict[int, Ed25519PublicKey]) -> CodeClaims:
    """Check the signature and return the claims; the window is the caller's business."""
    if len(token) != TOKEN_LENGTH or not _TOKEN_RE.fullmatch(token):
        raise InvalidCode("malformed", "not a locker code")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCode("malformed", "not a locker code") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        # The last character has spare bits; only the one canonical spelling is a code.
        raise InvalidCode("malformed", "not a locker code")
    payload, signature = raw[:_LAYOUT.size], raw[_LAYOUT.size:]
    version, key_id, reservation_id, cabinet_id, compartment, start, end = _LAYOUT.unpack(payload)
    if version != VERSION:
        raise InvalidCode("malformed", f"unknown code version {version}")
    key = public_keys.get(key_id)
    if key is None:
        raise InvalidCode("unknown_key", f"signed with unknown key id {key_id}")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise InvalidCode("bad_signature", "signature does not match") from None
    return CodeClaims(reservation_id, cabinet_id, compartment, _from_minutes(start),
                      _from_minutes(end), key_id)


def extract_token(text: str) -> str | None:
    """The token inside what a scanner read: a reservation URL (``.../r/<token>``) or
    the bare token. Returns None when there is no token-shaped part."""
    text = text.strip()
    if "/r/" in text:
        text = text.rsplit("/r/", 1)[1].split("?", 1)[0].split("#", 1)[0].strip("/")
    return text if _TOKEN_RE.fullmatch(text) else None


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def public_key_to_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_text(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


NUMERIC_HASH_ITERATIONS = 20_000


def hash_numeric_code(code: str, salt: str) -> str:
    """The short numeric code as the controller knows it: hashed with the cabinet's salt,
    slowly enough that the synced list does not give the codes away cheaply."""
    return hashlib.pbkdf2_hmac("sha256", code.encode("ascii"), salt.encode("ascii"),
                               NUMERIC_HASH_ITERATIONS).hex()
