"""Booking an item: one path for both databases, read top to bottom in
``create_reservation``.

1. Check the request against the rules: name, address, the window, the opening hours.
2. Look whether anything is free at all: when nothing is, the visitor is told at once,
   without queueing behind the bookings that take the last items. Then the limit per
   network address.
3. Take the allocation turn of this site and item type. On PostgreSQL a transaction-scoped
   advisory lock on (site, item type), as pretix locks a scarce resource; on SQLite the
   database's write lock. Bookings of the same kind at the same site take turns from here
   to the commit; everything else goes on.
4. In the turn: the first free item, the person's rules, the reservation with its signed
   code, its first event and its confirmation mail. Commit. (The code carries the
   reservation's id: PostgreSQL draws it from the table's sequence before the turn, SQLite
   learns it from the insert.)
5. The database keeps the last word on overlaps (an exclusion constraint on PostgreSQL,
   triggers on SQLite) and on numeric codes: a write it refuses is rolled back, and the
   next attempt starts again at 3 with the next free item.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from flask_babel import get_locale, lazy_gettext as _l
from sqlalchemy import Integer, bindparam, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from locker_app.metrics import counts_bookings
from locker_app.models import (BookingRule, Cabinet, Compartment, Item, ItemType, OutgoingMail,
                               Reservation, ReservationEvent, ReservationState, Site,
                               active_by_key, utcnow)
from locker_app.services import numeric_codes, rules, signing
from locker_app.services.errors import DomainError, SoldOut
from locker_app.services.free_items import first_free_item, first_free_item_id
from locker_app.services.people import Person, clean_email, clean_name, person_key

logger = logging.getLogger(__name__)
# How often a booking whose write the database refused (the item taken a moment ago, the
# numeric code drawn twice) tries again before it gives up as sold out.
ALLOCATION_ATTEMPTS = 5


def sold_out(item_type: ItemType) -> SoldOut:
    return SoldOut(_l("Sorry, no %(item)s is free at that time. Please try another time.",
                      item=item_type.name(str(get_locale() or "de"))))


def check_booking(session: Session, *, site: Site, item_type: ItemType, start: datetime,
                  end: datetime, name: str | None, email: str | None,
                  person: Person | None = None, now: datetime | None = None,
                  grace_minutes: int = 15) -> None:
    """What ``create_reservation`` would refuse, without booking (the check-your-answers
    step); the booking itself checks again."""
    now = now or utcnow()
    _, _, person, rule = _checked_request(session, site, item_type, start, end, name, email,
                                          person, now, grace_minutes)
    _check_person(session, site, item_type, rule, person, start, end, now)
    _check_address(session, person, now)
    if first_free_item(session, site, item_type, start, end) is None:
        raise sold_out(item_type)


@counts_bookings
def create_reservation(session: Session, *, site: Site, item_type: ItemType, start: datetime,
                       end: datetime, name: str | None, email: str | None,
                       person: Person | None = None, now: datetime | None = None,
                       grace_minutes: int = 15, actor: str = "visitor",
                       cause: str | None = None, phone: str | None = None,
                       rule: BookingRule | None = None,
                       booking_key: str | None = None) -> Reservation:
    """Book the first free item of ``item_type`` at ``site`` for [start, end) (naive UTC)
    and commit. ``rule`` is the site's rule for the type when the caller has read it;
    ``booking_key`` (a hash, services/booking_keys.py) is stored with the reservation, and
    when another request with the same key booked a moment ago, that booking is returned.

    Raises DomainError for what the rules refuse and SoldOut when no item is free."""
    now = now or utcnow()
    name, email, person, rule = _checked_request(session, site, item_type, start, end, name,
                                                 email, person, now, grace_minutes, rule)
    # Nothing free: said at once, without waiting for the turn behind the bookings that
    # take the last items.
    if first_free_item_id(session, site, item_type, start, end) is None:
        session.rollback()
        raise sold_out(item_type)
    _check_address(session, person, now)
    cause = cause or ("booked online" if actor == "visitor" else f"booked by {actor}")
    for attempt in range(1, ALLOCATION_ATTEMPTS + 1):
        try:
            reservation_id = _new_reservation_id(session)
            _take_allocation_turn(session, site, item_type)
            # The free item first: in a rush for the last items most turns end here. Another
            # booking may have taken the one seen before the turn: then this is the next.
            item = first_free_item(session, site, item_type, start, end)
            if item is None:
                raise sold_out(item_type)
            _check_person(session, site, item_type, rule, person, start, end, now)
            reservation = Reservation(
                id=reservation_id, item=item, compartment=item.compartment, start_at=start,
                end_at=end,
                pickup_until=min(end, start + timedelta(minutes=rule.pickup_window_minutes)),
                visitor_name=name, email=email, phone=phone, state=ReservationState.BOOKED,
                booked_with_email=email is not None, person_key=person_key(email),
                client_key=person.client_key, created_at=now,
                locale=str(get_locale() or "de"), numeric_code=numeric_codes.new_code(),
                booking_key=booking_key)
            # The keypad's hash of the numeric code is made by the controller's sync, not
            # here: it is slow on purpose, and the visitor is waiting.
            session.add(reservation)
            if reservation.id is None:
                session.flush()  # SQLite: the id, which the signed code carries
            reservation.code = signing.sign_reservation(reservation)
            # Its first event and its mail as insert statements: nothing reads them back,
            # and as objects the session's unit of work took a third of the turn. The
            # reservation is written before them, with its code.
            session.execute(insert(ReservationEvent), [dict(
                reservation_id=reservation.id, from_state=None,
                to_state=ReservationState.BOOKED, actor=actor, at=now, cause=cause)])
            if email:
                session.execute(insert(OutgoingMail), [dict(
                    reservation_id=reservation.id, kind="confirmation", created_at=now,
                    next_attempt_at=now)])
            session.commit()
            return reservation
        except IntegrityError as error:
            # Another booking took the item a moment ago, or the numeric code is another
            # active reservation's. (A database that does not answer in time is no race:
            # its error goes up, and the visitor is asked to try again in a minute.)
            session.rollback()
            logger.info("allocation attempt %d lost a race: %s", attempt, error.orig)
            twin = booked_with_key(session, booking_key)
            if twin is not None:
                return twin  # the same booking, sent twice at once
        except DomainError:
            session.rollback()
            raise
    raise sold_out(item_type)


def booked_with_key(session: Session, booking_key: str | None) -> Reservation | None:
    """The reservation stored with this one-time key (hashed), if any."""
    if not booking_key:
        return None
    return session.scalars(_with_key(), {"key": booking_key}).first()


def _new_reservation_id(session: Session) -> int | None:
    """PostgreSQL: the new reservation's id, drawn from the table's sequence before the
    turn, so that the reservation is written once, with the signed code that carries the
    id; written without it and updated, it cost the turn a round trip to the database,
    and every booking of the kind waits for the turn (bench/RESULTS.md, issue 31).
    SQLite: None; its id comes with the insert, within the database's own write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return session.scalar(_next_reservation_id())


def _take_allocation_turn(session: Session, site: Site, item_type: ItemType) -> None:
    """Wait until no other booking of this item type at this site is between its turn and
    its commit; the turn ends with the transaction. Without it, simultaneous bookings all
    pick the same item and all but one are refused by the overlap guard (which stays the
    real guarantee). The wait is bounded by the request's lock time-out (PostgreSQL) or
    busy time-out (SQLite), after which the visitor is asked to try again shortly."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_advisory_lock(), {"site_id": site.id, "item_type_id": item_type.id})
    else:
        # SQLite has one write lock for the whole database. Python's sqlite3 begins a
        # transaction only before the first write, so the reads of this request so far
        # ran outside one and this BEGIN starts it, taking the write lock at once.
        session.execute(text("BEGIN IMMEDIATE"))


def _checked_request(session: Session, site: Site, item_type: ItemType, start: datetime,
                     end: datetime, name: str | None, email: str | None, person: Person | None,
                     now: datetime, grace_minutes: int, rule: BookingRule | None = None
                     ) -> tuple[str, str | None, Person, BookingRule]:
    """The checks before any item is chosen: name, address, the window against the rules.
    Returns the cleaned name and address, the person (with that address) and the rule."""
    name = clean_name(name)
    email = clean_email(email)
    person = person or Person()
    person = Person(email or person.email, person.reservation_ids, person.client_key,
                    person.client_limit)
    rule = rule or rules.rule_for(session, site, item_type)
    rules.check_window(session, site, item_type, rule, start, end, now,
                       grace_minutes=grace_minutes)
    return name, email, person, rule


def _check_person(session: Session, site: Site, item_type: ItemType, rule: BookingRule,
                  person: Person, start: datetime, end: datetime, now: datetime) -> None:
    """The per-person rules: how many active reservations of the type at the site, how long
    a chain of loans. In the turn, so that two bookings of one person at once are counted
    one after the other."""
    by_email, by_ids = bool(person.email), bool(person.reservation_ids)
    theirs = []
    if by_email or by_ids:
        theirs = session.execute(_their_reservations(by_email, by_ids), {
            "person_key": person_key(person.email), "ids": list(person.reservation_ids),
            "now": now, "item_type_id": item_type.id, "site_id": site.id}).all()
    rules.check_person(rule, item_type, theirs, start, end)


def _check_address(session: Session, person: Person, now: datetime) -> None:
    """The per-address limit: a brake on one client booking out the park, generous so that
    a care home or a public Wi-Fi still can book. Checked before the turn: two bookings
    from one address at the same moment may pass it by one, which it can bear."""
    if person.limited_by_address and held_by_address(
            session, person.client_key, now, person.client_limit) >= person.client_limit:
        raise DomainError(_l(
            "Many reservations are already active from your internet connection. "
            "Please return or cancel one first, or call us and we book for you."))


def held_by_address(session: Session, client_key: str, now: datetime, up_to: int) -> int:
    """How many active reservations the client's address holds, counted up to ``up_to``:
    an address holds no more than its limit unless the limit was lowered, and counting
    them all made each booking slower by every reservation the address held."""
    return session.scalar(_held_by_address(), {"client_key": client_key, "now": now,
                                               "up_to": up_to})


# The statements a booking runs are built once per process, their values bound when they
# run: building one of them took longer than running it (bench/RESULTS.md, issue 31).
@functools.cache
def _their_reservations(by_email: bool, by_ids: bool):
    """The windows of a person's active reservations of a type at a site, found by their
    address, by the ids this browser made, or both."""
    who = []
    if by_email:
        who.append(Reservation.person_key == bindparam("person_key"))
    if by_ids:
        who.append(Reservation.id.in_(bindparam("ids", expanding=True)))
    return (select(Reservation.start_at, Reservation.end_at)
            .join(Reservation.item).join(Reservation.compartment).join(Compartment.cabinet)
            .where(or_(*who), active_by_key(), Reservation.end_at > bindparam("now"),
                   Item.item_type_id == bindparam("item_type_id"),
                   Cabinet.site_id == bindparam("site_id")))


@functools.cache
def _held_by_address():
    held = (select(Reservation.id)
            .where(Reservation.client_key == bindparam("client_key"), active_by_key(),
                   Reservation.end_at > bindparam("now"))
            .limit(bindparam("up_to")).subquery())
    return select(func.count()).select_from(held)


@functools.cache
def _next_reservation_id():
    return select(func.nextval(func.pg_get_serial_sequence("reservation", "id")))


@functools.cache
def _advisory_lock():
    return select(func.pg_advisory_xact_lock(bindparam("site_id", type_=Integer()),
                                             bindparam("item_type_id", type_=Integer())))


@functools.cache
def _with_key():
    return select(Reservation).where(Reservation.booking_key == bindparam("key"))
