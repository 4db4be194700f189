"""A booking's one-time key: the same key never books twice, and a retry is answered with
the booking made.

The visitor's form carries a key made when it is first shown; an API client sends its own
in the ``Idempotency-Key`` header (as payment APIs do). A request without one gets a key of
its own, so that a booking whose answer was lost (the database connection cut right after
its COMMIT) is found and answered as made, never as failed. Only the key's SHA-256 is
stored; a stored key answers only a request for the same site, item type and window."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from locker_app.models import ItemType, Reservation, Site
from locker_app.services import booking
from locker_app.services.errors import DomainError, SoldOut
from locker_app.services.sold_out_memo import SoldOutMemo

KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


class KeyReused(DomainError):
    """The key was used for a booking of another site, item type or window."""


def new_key() -> str:
    return secrets.token_urlsafe(24)


def stored_form(raw: str | None, field: str = "idempotency_key") -> str | None:
    """The key as it is stored (its hash); None when none was given. A key that is too
    short to be unguessable, or holds other characters, is refused in words."""
    if raw is None or raw == "":
        return None
    if not KEY.fullmatch(raw):
        raise DomainError(_l("The one-time key must be 16 to 64 letters, digits, '-' or '_'."),
                          field)
    return hashlib.sha256(raw.encode()).hexdigest()


def book_once(session: Session, key: str, *, site: Site, item_type: ItemType,
              start: datetime, end: datetime, memo: SoldOutMemo | None = None,
              ours: bool = False, **details) -> tuple[Reservation, bool]:
    """(the reservation, whether it was made before with this key). ``key`` is the stored
    form (``stored_form``); ``ours``: the server made it for this request just now, so no
    booking can have been made with it before. ``details`` the rest of
    booking.create_reservation's arguments. With a ``memo``, a window found sold out a
    moment ago is refused without asking for a free item again (after the key: a form sent
    twice still finds its booking)."""
    earlier = None if ours else booking.booked_with_key(session, key)
    if earlier is not None:
        return _same_request(earlier, site, item_type, start, end), True
    window = (site.id, item_type.id, start, end)
    refusal = memo.sold_out(window) if memo is not None else None
    if refusal:
        raise SoldOut(refusal)
    try:
        return booking.create_reservation(
            session, site=site, item_type=item_type, start=start, end=end, booking_key=key,
            **details), False
    except SoldOut:
        if memo is not None:
            memo.remember(window, {"de": item_type.name("de"), "en": item_type.name("en")})
        raise
    except OperationalError as error:
        # The connection broke: whether the COMMIT went through is unknown, and the booking
        # may have been stored all the same. Asked again (a database still away raises
        # again, and the visitor is told to try in a minute). A database that answered
        # with an error (a lock or statement time-out) stored nothing: no second wait.
        if not error.connection_invalidated:
            raise
        session.rollback()
        stored = booking.booked_with_key(session, key)
        if stored is None:
            raise
        return stored, True


def _same_request(earlier: Reservation, site: Site, item_type: ItemType, start: datetime,
                  end: datetime) -> Reservation:
    if (earlier.compartment.cabinet.site_id, earlier.item.item_type_id,
            earlier.start_at, earlier.end_at) != (site.id, item_type.id, start, end):
        raise KeyReused(_l("This one-time key was used for another booking. Please use a new "
                           "key for a new booking."))
    return earlier
