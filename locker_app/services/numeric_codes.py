"""The short numeric code of a reservation: typed on the locker's keypad or read out on the
phone. 8 digits, shown as two groups of four, unique among active reservations (a partial
unique index), hashed with the cabinet's salt for the controller."""
from __future__ import annotations

import secrets

from locker_app.models import Cabinet
from signed_code import hash_numeric_code

LENGTH = 8
code_hash = hash_numeric_code  # the controller hashes the same way


def new_code() -> str:
    return f"{secrets.randbelow(10 ** LENGTH):0{LENGTH}d}"


def cabinet_salt(cabinet: Cabinet) -> str:
    if not cabinet.code_salt:
        cabinet.code_salt = secrets.token_hex(16)
    return cabinet.code_salt


def grouped(code: str | None) -> str:
    return f"{code[:4]} {code[4:]}" if code else ""
