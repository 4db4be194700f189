"""The change log of a reservation: every change of its state is an event, and the mails
it causes wait in the outbox for the mail job."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app.models import OutgoingMail, Reservation, ReservationEvent, utcnow


def record_change(session: Session, reservation: Reservation, to_state: str, *, actor: str,
                  cause: str, at: datetime | None = None) -> None:
    """Move the reservation to ``to_state`` and log who did it and why."""
    session.add(ReservationEvent(reservation=reservation, from_state=reservation.state,
                                 to_state=to_state, actor=actor, cause=cause, at=at or utcnow()))
    reservation.state = to_state


def queue_mail(session: Session, reservation: Reservation, kind: str) -> None:
    """Leave a mail for the mail job, once per kind; nothing is sent inside the request."""
    if not reservation.email:
        return
    already = session.scalar(select(OutgoingMail.id).where(
        OutgoingMail.reservation_id == reservation.id, OutgoingMail.kind == kind))
    if already is None:
        session.add(OutgoingMail(reservation_id=reservation.id, kind=kind))
