"""Booking, looking up and cancelling reservations."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import get_locale, lazy_gettext as _l
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

import signed_code
from locker_app.models import (Cabinet, Compartment, Item, ItemType, Reservation,
                               ReservationEvent, ReservationState, Site, utcnow)
from locker_app.services import signing
from locker_app.services.errors import DomainError, NotFound, SoldOut

NAME_MAX = 80
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Availability:
    item_type: ItemType
    total: int
    free: int


def _overlapping(start: datetime, end: datetime):
    return exists().where(
        Reservation.item_id == Item.id,
        Reservation.state.in_(ReservationState.ACTIVE),
        Reservation.start_at < end,
        Reservation.end_at > start,
    )


def _site_items(site: Site):
    return (select(Item).join(Item.compartment).join(Compartment.cabinet)
            .where(Cabinet.site_id == site.id, Item.in_service.is_(True)))


def availability(session: Session, site: Site, start: datetime, end: datetime) -> list[Availability]:
    """For each item type at the site: how many are in service, how many are free
    for the whole of [start, end)."""
    result = []
    for item_type in session.scalars(select(ItemType).order_by(ItemType.id)):
        items = _site_items(site).where(Item.item_type_id == item_type.id)
        total = len(session.scalars(items).all())
        free = len(session.scalars(items.where(~_overlapping(start, end))).all())
        result.append(Availability(item_type, total, free))
    return result


def clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw or "").strip()
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    if not name:
        raise DomainError(_l("Please enter a name or nickname."), "name")
    if len(name) > NAME_MAX:
        raise DomainError(_l("Please use at most %(max)d characters.", max=NAME_MAX), "name")
    return name


def clean_email(raw: str | None) -> str | None:
    email = (raw or "").strip()
    if not email:
        return None
    if len(email) > 254 or not _EMAIL_RE.fullmatch(email):
        raise DomainError(_l("This does not look like an e-mail address."), "email")
    return email


def check_window(item_type: ItemType, start: datetime, end: datetime, now: datetime, *,
                 grace_minutes: int, max_days_ahead: int) -> None:
    if end <= start:
        raise DomainError(_l("The return time must be after the pickup time."), "end")
    if start < now - timedelta(minutes=grace_minutes):
        raise DomainError(_l("The pickup time has already passed."), "start")
    if start > now + timedelta(days=max_days_ahead):
        raise DomainError(_l("You can book at most %(days)d days ahead.", days=max_days_ahead),
                          "date")
    if end - start > timedelta(minutes=item_type.max_loan_minutes):
        hours = item_type.max_loan_minutes // 60
        raise DomainError(_l("This item can be borrowed for at most %(hours)d hours.",
                             hours=hours), "end")


def record_change(session: Session, reservation: Reservation, to_state: str, *, actor: str,
                  cause: str, at: datetime | None = None) -> None:
    session.add(ReservationEvent(reservation=reservation, from_state=reservation.state
                                 if reservation.id else None, to_state=to_state, actor=actor,
                                 cause=cause, at=at or utcnow()))
    reservation.state = to_state


def create_reservation(session: Session, *, site: Site, item_type: ItemType, start: datetime,
                       end: datetime, name: str, email: str | None, now: datetime | None = None,
                       grace_minutes: int = 15, max_days_ahead: int = 30) -> Reservation:
    """Book a concrete item of ``item_type`` at ``site`` for [start, end) (naive UTC).

    Raises DomainError for a window the rules refuse and SoldOut when no item is free.
    """
    now = now or utcnow()
    name = clean_name(name)
    email = clean_email(email)
    check_window(item_type, start, end, now, grace_minutes=grace_minutes,
                 max_days_ahead=max_days_ahead)
    item = session.scalars(
        _site_items(site).where(Item.item_type_id == item_type.id, ~_overlapping(start, end))
        .order_by(Item.id).limit(1)
    ).first()
    if item is None:
        raise SoldOut(_l("Sorry, no %(item)s is free at that time. Please try another time.",
                         item=item_type.name(str(get_locale() or "de"))))
    reservation = Reservation(item=item, compartment=item.compartment, start_at=start, end_at=end,
                              visitor_name=name, email=email, state=ReservationState.BOOKED,
                              created_at=now)
    session.add(reservation)
    session.flush()
    session.add(ReservationEvent(reservation=reservation, from_state=None,
                                 to_state=ReservationState.BOOKED, actor="visitor",
                                 cause="booked online", at=now))
    reservation.code = signing.sign_reservation(reservation)
    session.commit()
    return reservation


def find_by_code(session: Session, token: str) -> Reservation:
    """The reservation a code belongs to; NotFound for anything forged or unknown."""
    try:
        claims = signed_code.verify(token, signing.public_key_objects())
    except signed_code.InvalidCode:
        raise NotFound(_l("We could not find this reservation.")) from None
    reservation = session.get(Reservation, claims.reservation_id)
    if reservation is None or reservation.code != token:
        raise NotFound(_l("We could not find this reservation."))
    return reservation


def can_cancel(reservation: Reservation, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return reservation.state == ReservationState.BOOKED and now < reservation.end_at


def cancel_reservation(session: Session, reservation: Reservation, *, actor: str = "visitor",
                       cause: str = "cancelled by visitor", now: datetime | None = None) -> None:
    if not can_cancel(reservation, now):
        raise DomainError(_l("This reservation can no longer be cancelled."))
    record_change(session, reservation, ReservationState.CANCELLED, actor=actor, cause=cause,
                  at=now)
    session.commit()
