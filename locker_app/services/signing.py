"""The server's signing keys: private Ed25519 keys in files ``key-<id>.pem``.

The highest key id signs new codes; every key present is published to controllers,
so codes signed before a rotation keep working until their key file is removed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

import signed_code
from locker_app.models import Reservation
from locker_app.services.timeutil import aware_utc

_KEY_FILE = re.compile(r"key-(\d{1,3})\.pem")


def _key_dir() -> Path:
    return Path(current_app.config["SIGNING_KEY_DIR"])


# Keys parsed once per process and kept while the folder's key files stay the same (names,
# sizes, change times): a booking no longer reads and parses every key file. A rotation
# (a new file, a removed one) is seen at the next call.
_loaded: dict[str, tuple[tuple, dict[int, Ed25519PrivateKey]]] = {}


def load_private_keys(directory: Path | None = None) -> dict[int, Ed25519PrivateKey]:
    directory = directory or _key_dir()
    if not directory.is_dir():
        return {}
    files = []
    for path in directory.iterdir():
        match = _KEY_FILE.fullmatch(path.name)
        if match and int(match.group(1)) <= 255:
            stat = path.stat()
            files.append((path.name, stat.st_mtime_ns, stat.st_size))
    listing = tuple(sorted(files))
    cached = _loaded.get(str(directory))
    if cached is not None and cached[0] == listing:
        return dict(cached[1])
    keys = {int(_KEY_FILE.fullmatch(name).group(1)):
            signed_code.private_key_from_pem((directory / name).read_bytes())
            for name, _, _ in listing}
    _loaded[str(directory)] = (listing, keys)
    return dict(keys)


def create_key(directory: Path | None = None) -> int:
    """Write a new key with the next id and return that id (key rotation)."""
    directory = directory or _key_dir()
    directory.mkdir(parents=True, exist_ok=True)
    existing = load_private_keys(directory)
    key_id = max(existing, default=0) + 1
    if key_id > 255:
        raise RuntimeError("key ids are exhausted; remove old keys first")
    path = directory / f"key-{key_id}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(signed_code.private_key_to_pem(signed_code.new_private_key()))
    return key_id


def ensure_key(directory: Path | None = None) -> int:
    keys = load_private_keys(directory)
    return max(keys) if keys else create_key(directory)


def public_keys() -> dict[int, str]:
    return {kid: signed_code.public_key_to_text(key.public_key())
            for kid, key in load_private_keys().items()}


def public_key_objects():
    return {kid: key.public_key() for kid, key in load_private_keys().items()}


def sign_reservation(reservation: Reservation) -> str:
    keys = load_private_keys()
    if not keys:
        raise RuntimeError("no signing key: run 'flask keys new'")
    key_id = max(keys)
    claims = signed_code.CodeClaims(
        reservation_id=reservation.id,
        cabinet_id=reservation.compartment.cabinet_id,
        compartment=reservation.compartment.number,
        valid_from=aware_utc(reservation.start_at),
        valid_until=aware_utc(reservation.pickup_until),
    )
    return signed_code.sign(keys[key_id], key_id, claims)
