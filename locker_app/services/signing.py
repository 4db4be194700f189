"""The server's signing keys: private Ed25519 keys in files ``key-<id>.pem``.

The highest key id signs new codes; every key present is published to controllers,
so codes signed before a rotation keep working until their key file is removed.
"""
from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

import signed_code
from locker_app.models import Reservation
from locker_app.services.timeutil import aware_utc

_KEY_FILE = re.compile(r"key-(\d{1,3})\.pem")


def _key_dir() -> Path:
    return Path(current_app.config["SIGNING_KEY_DIR"])


# Keys parsed once per process and kept while the folder stays the same: its change time
# (a key file added, removed or renamed changes it), then its key files' names, sizes and
# change times. A booking no longer reads and parses every key file, nor lists the folder
# (listing it and asking each file took 2.6 % of a booking's processor time); a rotation
# is seen at the next call. The change time alone is trusted only once it is a second
# older than the listing made with it: file systems keep it in coarse ticks, and a file
# added within the tick of the last listing would not move it.
SETTLED_NS = 1_000_000_000


class _Listing(NamedTuple):
    changed_ns: int  # the folder's change time when listed
    listed_ns: int
    files: tuple  # (name, change time, size) of each key file
    keys: dict[int, Ed25519PrivateKey]


_loaded: dict[str, _Listing] = {}


def load_private_keys(directory: Path | None = None) -> dict[int, Ed25519PrivateKey]:
    directory = directory or _key_dir()
    try:
        folder = os.stat(directory)
    except OSError:
        return {}
    if not stat.S_ISDIR(folder.st_mode):
        return {}
    cached = _loaded.get(str(directory))
    if cached is not None and cached.changed_ns == folder.st_mtime_ns and \
            cached.listed_ns - cached.changed_ns >= SETTLED_NS:
        return dict(cached.keys)
    # The real clock, as the file system has it (freezegun leaves clock_gettime alone).
    listed_at = time.clock_gettime_ns(time.CLOCK_REALTIME)
    files = []
    for path in directory.iterdir():
        match = _KEY_FILE.fullmatch(path.name)
        if match and int(match.group(1)) <= 255:
            info = path.stat()
            files.append((path.name, info.st_mtime_ns, info.st_size))
    listing = tuple(sorted(files))
    if cached is not None and cached.files == listing:
        keys = cached.keys
    else:
        keys = {int(_KEY_FILE.fullmatch(name).group(1)):
                signed_code.private_key_from_pem((directory / name).read_bytes())
                for name, _, _ in listing}
    _loaded[str(directory)] = _Listing(folder.st_mtime_ns, listed_at, listing, keys)
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
