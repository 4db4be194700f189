"""What staff do with reservations: today's view, search, extend, hand-marked returns,
bookings taken on the phone."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from locker_app.models import (Cabinet, Compartment, ControllerEvent, Item, OutgoingMail,
                               Reservation, ReservationEvent, ReservationState as S, Site, utcnow)
from locker_app.services import booking, reservations
from locker_app.services import rules
from locker_app.services.errors import DomainError
from locker_app.services.reservation_log import queue_mail, record_change
from locker_app.services.timeutil import local_to_utc, to_local, wall_minutes

PAGE_SIZE = 50
_PHONE_RE = re.compile(r"\+?[0-9 ()/-]{5,30}")


@dataclass
class CabinetDay:
    cabinet: Cabinet
    pickups_due: list[Reservation]
    items_out: list[Reservation]
    returns_due: list[Reservation]
    overdue: list[Reservation]
    no_shows: list[Reservation]


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day at the site, as naive UTC."""
    start = local_to_utc(day, datetime.min.time())
    return start, local_to_utc(day + timedelta(days=1), datetime.min.time())


def today_by_cabinet(session: Session, now: datetime | None = None) -> list[CabinetDay]:
    now = now or utcnow()
    start, end = local_day_bounds(to_local(now).date())
    rows = session.scalars(
        select(Reservation).join(Reservation.compartment)
        .options(joinedload(Reservation.item).joinedload(Item.item_type),
                 joinedload(Reservation.compartment))
        .where(or_(Reservation.state.in_(S.ACTIVE),
                   (Reservation.state == S.NO_SHOW) & (Reservation.start_at >= start)
                   & (Reservation.start_at < end)),
               Reservation.start_at < end)
        .order_by(Reservation.start_at)).all()
    cabinets = session.scalars(select(Cabinet).where(Cabinet.retired_at.is_(None))
                               .order_by(Cabinet.site_id, Cabinet.id)).all()
    days = {c.id: CabinetDay(c, [], [], [], [], []) for c in cabinets}
    for r in rows:
        day = days.get(r.compartment.cabinet_id)
        if day is None:
            continue
        if r.state == S.BOOKED and r.start_at >= start:
            day.pickups_due.append(r)
        elif r.state == S.OVERDUE:
            day.overdue.append(r)
        elif r.state == S.PICKED_UP:
            day.items_out.append(r)
            if r.end_at < end:
                day.returns_due.append(r)
        elif r.state == S.NO_SHOW:
            day.no_shows.append(r)
    return list(days.values())


@dataclass(frozen=True)
class Filters:
    site_id: int | None = None
    item_type_id: int | None = None
    state: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    query: str = ""


def search(session: Session, filters: Filters, page: int = 1) -> tuple[list[Reservation], bool]:
    """Reservations matching the filters, newest pickup first; and whether more follow."""
    statement = (select(Reservation).join(Reservation.compartment).join(Compartment.cabinet)
                 .join(Reservation.item)
                 .options(joinedload(Reservation.item).joinedload(Item.item_type),
                          joinedload(Reservation.compartment).joinedload(Compartment.cabinet)))
    if filters.site_id:
        statement = statement.where(Cabinet.site_id == filters.site_id)
    if filters.item_type_id:
        statement = statement.where(Item.item_type_id == filters.item_type_id)
    if filters.state in S.ALL:
        statement = statement.where(Reservation.state == filters.state)
    if filters.day_from:
        statement = statement.where(Reservation.end_at >= local_day_bounds(filters.day_from)[0])
    if filters.day_to:
        statement = statement.where(Reservation.start_at < local_day_bounds(filters.day_to)[1])
    query = filters.query.strip()
    if query:
        digits = re.sub(r"\D", "", query)
        conditions = [func.lower(Reservation.visitor_name).contains(query.lower(), autoescape=True),
                      func.lower(Reservation.email).contains(query.lower(), autoescape=True),
                      Reservation.phone.contains(query, autoescape=True)]
        if len(digits) == 8:
            conditions.append(Reservation.numeric_code == digits)
        if query.isdigit() and len(query) < 8:
            conditions.append(Reservation.id == int(query))
        statement = statement.where(or_(*conditions))
    page = max(1, page)
    rows = session.scalars(statement.order_by(Reservation.start_at.desc(), Reservation.id.desc())
                           .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).unique().all()
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def history(session: Session, reservation: Reservation) -> dict:
    """Everything that happened to a reservation, each list oldest first."""
    return {
        "changes": session.scalars(select(ReservationEvent).where(
            ReservationEvent.reservation_id == reservation.id).order_by(ReservationEvent.id)).all(),
        "observations": session.scalars(select(ControllerEvent).where(
            ControllerEvent.reservation_id == reservation.id).order_by(ControllerEvent.id)).all(),
        "mails": session.scalars(select(OutgoingMail).where(
            OutgoingMail.reservation_id == reservation.id).order_by(OutgoingMail.id)).all(),
    }


def _reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())[:150]
    if not reason:
        raise DomainError(_l("Please give a reason."), "reason")
    return reason


def cancel_by_staff(session: Session, reservation: Reservation, reason: str, who: str) -> None:
    reason = _reason(reason)
    reservations.cancel_reservation(session, reservation, actor="staff",
                               cause=f"cancelled by {who}: {reason}"[:200])
    queue_mail(session, reservation, "cancelled_by_staff")
    session.commit()


def extend(session: Session, reservation: Reservation, new_end: datetime, who: str,
           now: datetime | None = None) -> None:
    """A longer loan when the item is free until then (the database guard has the last
    word) and the locker is open at the new time."""
    now = now or utcnow()
    if reservation.state not in S.ACTIVE:
        raise DomainError(_l("Only an active reservation can be extended."), "end")
    if new_end <= reservation.end_at or new_end <= now:
        raise DomainError(_l("The new return time must be later than the current one."), "end")
    site = reservation.compartment.cabinet.site
    rule = rules.rule_for(session, site, reservation.item.item_type)
    if wall_minutes(reservation.start_at, new_end) > rule.max_loan_minutes * 7:
        raise DomainError(_l("That is far longer than any loan; please book anew instead."), "end")
    local_end = to_local(new_end)
    hours = rules.hours_on(session, site, local_end.date())
    if hours is None or not hours.opens <= local_end.time() <= hours.closes:
        raise DomainError(_l("The locker is not open at the new return time."), "end")
    clash = session.scalar(select(Reservation.id).where(
        Reservation.item_id == reservation.item_id, Reservation.id != reservation.id,
        Reservation.state.in_(S.ACTIVE), Reservation.start_at < new_end,
        Reservation.end_at > reservation.end_at).limit(1))
    if clash:
        raise DomainError(_l("The item is booked by someone else before the new return time."),
                          "end")
    old_end = reservation.end_at
    reservation.end_at = new_end
    to_state = S.PICKED_UP if reservation.state == S.OVERDUE and new_end > now else reservation.state
    session.add(ReservationEvent(reservation=reservation, from_state=reservation.state,
                                 to_state=to_state, actor="staff", at=now,
                                 cause=f"extended by {who} from {old_end:%Y-%m-%d %H:%M} UTC"[:200]))
    reservation.state = to_state
    session.commit()


def mark_returned(session: Session, reservation: Reservation, reason: str, who: str) -> None:
    reason = _reason(reason)
    if reservation.state not in (S.PICKED_UP, S.OVERDUE):
        raise DomainError(_l("Only an item that is out can be marked as returned."), "reason")
    record_change(session, reservation, S.RETURNED, actor="staff",
                  cause=f"marked returned by {who}: {reason}"[:200])
    session.commit()


def clean_phone(raw: str | None) -> str:
    phone = " ".join((raw or "").split())
    if not _PHONE_RE.fullmatch(phone) or sum(ch.isdigit() for ch in phone) < 5:
        raise DomainError(_l("Please enter a phone number, e.g. 0351 1234567."), "phone")
    return phone


def book_for_caller(session: Session, *, site: Site, item_type, start: datetime, end: datetime,
                    name: str, phone: str, email: str | None, who: str,
                    grace_minutes: int) -> Reservation:
    """A booking taken on the phone: the same rules as online, counted per phone number."""
    phone = clean_phone(phone)
    earlier = tuple(session.scalars(select(Reservation.id).where(
        Reservation.phone == phone, Reservation.state.in_(S.ACTIVE))).all())
    return booking.create_reservation(
        session, site=site, item_type=item_type, start=start, end=end, name=name, email=email,
        person=booking.Person(None, earlier), grace_minutes=grace_minutes, actor="staff",
        cause=f"booked on the phone by {who}"[:200], phone=phone)
