"""The scheduled life of reservations: no-shows, overdue items, reminders, erasure.

Every transition is a conditional UPDATE (``WHERE state = <from>``) and every mail is a row
with a unique (reservation, kind), so a job that runs twice, or in two processes at once,
changes each reservation once and queues each mail once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from locker_app.models import OutgoingMail, Reservation, ReservationEvent, ReservationState as S
from locker_app.services.reservation_log import queue_mail

logger = logging.getLogger(__name__)
ENDED = (S.RETURNED, S.CANCELLED, S.NO_SHOW)


def _transition(session: Session, reservation_id: int, from_state: str, to_state: str,
                cause: str, now: datetime) -> bool:
    changed = session.execute(update(Reservation).where(
        Reservation.id == reservation_id, Reservation.state == from_state).values(state=to_state))
    if changed.rowcount != 1:
        return False
    session.add(ReservationEvent(reservation_id=reservation_id, from_state=from_state,
                                 to_state=to_state, actor="scheduler", cause=cause, at=now))
    return True


def expire_no_shows(session: Session, now: datetime) -> int:
    """Booked, and the pickup window has passed: the item is free again."""
    ids = session.scalars(select(Reservation.id).where(
        Reservation.state == S.BOOKED, Reservation.pickup_until <= now)).all()
    count = sum(_transition(session, rid, S.BOOKED, S.NO_SHOW, "pickup window passed", now)
                for rid in ids)
    session.commit()
    return count


def mark_overdue(session: Session, now: datetime) -> int:
    """Picked up and not back by the end of the window; the visitor gets a reminder."""
    ids = session.scalars(select(Reservation.id).where(
        Reservation.state == S.PICKED_UP, Reservation.end_at <= now)).all()
    count = 0
    for rid in ids:
        if _transition(session, rid, S.PICKED_UP, S.OVERDUE, "return time passed", now):
            queue_mail(session, session.get(Reservation, rid), "overdue")
            count += 1
    session.commit()
    return count


def queue_pickup_reminders(session: Session, now: datetime, lead: timedelta) -> int:
    """A reminder ``lead`` before the pickup, for reservations booked earlier than that."""
    soon = session.scalars(select(Reservation).where(
        Reservation.state == S.BOOKED, Reservation.email.is_not(None),
        Reservation.start_at > now, Reservation.start_at <= now + lead)).all()
    # (Date arithmetic in SQL differs between SQLite and PostgreSQL: done here.)
    due = [r for r in soon if r.created_at < r.start_at - lead]
    for reservation in due:
        queue_mail(session, reservation, "reminder")
    session.commit()
    return len(due)


def erase_personal_data(session: Session, now: datetime, after_days: int) -> int:
    """Name, address and phone number go ``after_days`` after the reservation ended; the rest stays for
    the statistics. Mails not yet sent for those reservations go too."""
    cutoff = now - timedelta(days=after_days)
    ids = session.scalars(select(Reservation.id).where(
        Reservation.state.in_(ENDED), Reservation.end_at <= cutoff,
        Reservation.erased_at.is_(None))).all()
    if ids:
        session.execute(update(Reservation).where(Reservation.id.in_(ids)).values(
            visitor_name=None, email=None, phone=None, person_key=None, client_key=None,
            erased_at=now))
        session.execute(delete(OutgoingMail).where(OutgoingMail.reservation_id.in_(ids),
                                                   OutgoingMail.sent_at.is_(None)))
    session.commit()
    return len(ids)
