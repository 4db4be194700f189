"""Who books: the person (an e-mail address, the reservations this browser made, the
network address's key) and the name and address they typed, cleaned."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from locker_app.services.errors import DomainError

NAME_MAX = 80
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Person:
    """Who books: the e-mail address when given, and the reservations this browser made.
    ``client_key`` (a keyed hash of the network address) with ``client_limit``: how many
    active reservations one address may hold, generous so a care home or a public Wi-Fi
    still can book, but an end to one client booking out every item."""

    email: str | None = None
    reservation_ids: tuple[int, ...] = field(default_factory=tuple)
    client_key: str | None = None
    client_limit: int | None = None

    @property
    def limited_by_address(self) -> bool:
        return bool(self.client_key and self.client_limit)


def person_key(email: str | None) -> str | None:
    """The address as one person: case folded, a "+tag" dropped (erika+1@ is erika@)."""
    if not email:
        return None
    local, _, domain = email.strip().rpartition("@")
    local = local.split("+", 1)[0] or local
    return f"{local}@{domain}".casefold()[:254]


def clean_name(raw: str | None) -> str:
    # Letters, marks, digits, punctuation and spaces; no control or format characters
    # (zero-width joiners, direction overrides) that could make a name look like another.
    name = unicodedata.normalize("NFC", raw or "")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split())
    if not name:
        raise DomainError(_l("Please enter a name or nickname."), "name")
    if len(name) > NAME_MAX:
        raise DomainError(_l("Please use at most %(max)d characters.", max=NAME_MAX), "name")
    return name


def clean_email(raw: str | None) -> str | None:
    email = unicodedata.normalize("NFC", raw or "").strip()
    if not email:
        return None
    if len(email) > 254 or not _EMAIL_RE.fullmatch(email) or any(
            unicodedata.category(ch)[0] == "C" for ch in email):
        raise DomainError(_l("This does not look like an e-mail address."), "email")
    return email
