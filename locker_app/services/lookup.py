"""Finding a reservation again without its link: by the 8-digit number and the name given,
or by e-mail address (a mail with the links to every active reservation). Both answer the
same whether anything was found or not beyond what the visitor proves they know; the
routes limit attempts per client address and per e-mail address."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app.models import OutgoingMail, Reservation, active_reservation, utcnow
from locker_app.services.people import person_key

# A second links mail for the same reservation only after this long.
RESEND_AFTER = timedelta(minutes=10)


def _folded(name: str | None) -> str:
    return " ".join((name or "").split()).casefold()


def find_by_number_and_name(session: Session, number: str, name: str) -> Reservation | None:
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) != 8 or not _folded(name):
        return None
    reservation = session.scalars(select(Reservation).where(
        Reservation.numeric_code == digits,
        active_reservation())).first()
    if reservation is None or _folded(reservation.visitor_name) != _folded(name):
        return None
    return reservation


def active_for_address(session: Session, email: str) -> list[Reservation]:
    key = person_key(email)
    if not key:
        return []
    return list(session.scalars(select(Reservation).where(
        Reservation.person_key == key, active_reservation())
        .order_by(Reservation.start_at)))


def send_links(session: Session, email: str, now: datetime | None = None) -> int:
    """Queue one mail listing every active reservation of this address (it goes to the
    address each was booked with). Returns how many are listed, for tests only: the page
    never says."""
    now = now or utcnow()
    found = active_for_address(session, email)
    if not found:
        return 0
    latest = max(found, key=lambda r: r.created_at)
    mail = session.scalar(select(OutgoingMail).where(
        OutgoingMail.reservation_id == latest.id, OutgoingMail.kind == "links"))
    if mail is None:
        session.add(OutgoingMail(reservation_id=latest.id, kind="links", next_attempt_at=now))
    elif mail.sent_at is not None and now - mail.sent_at >= RESEND_AFTER:
        mail.sent_at, mail.attempts, mail.next_attempt_at, mail.last_error = None, 0, now, None
    session.commit()
    return len(found)
