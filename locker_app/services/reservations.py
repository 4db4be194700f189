"""Booking, looking up and cancelling reservations."""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg
from flask_babel import get_locale, lazy_gettext as _l
from sqlalchemy import (Boolean, Date, DateTime, Integer, String, and_, bindparam, case, cast,
                        exists, func, literal, null, or_, select, text, true, union_all)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (Session, aliased, contains_eager, make_transient_to_detached,
                            scoped_session)
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

import signed_code
from locker_app.extensions import database_wait_seconds
from locker_app.models import (BookingRule, Cabinet, Compartment, Item, ItemType, OpeningHours,
                               OutgoingMail, Reservation, ReservationEvent, ReservationState,
                               Site, SpecialDay, active_by_key, active_reservation,
                               time_ranges_meet, utcnow)
from locker_app.services import numeric_codes, rules, signing
from locker_app.services.errors import DatabaseBusy, DomainError, NotFound, SoldOut
from locker_app.services.timeutil import to_local

logger = logging.getLogger(__name__)
NAME_MAX = 80
ALLOCATION_ATTEMPTS = 5
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Availability:
    item_type: ItemType
    total: int
    free: int


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


def _overlapping(start: datetime, end: datetime, item=Item):
    """An active reservation of ``item`` (the entity or an alias of it) overlaps [start, end)."""
    return exists().where(
        Reservation.item_id == item.id,
        active_reservation(),
        Reservation.start_at < end,
        Reservation.end_at > start,
        time_ranges_meet(start, end),
    )


def _usable(item=Item, cabinet=Cabinet):
    """What makes an item one visitors can get: in service, in a cabinet still in use
    (the cabinet joined)."""
    return item.in_service.is_(True), item.retired_at.is_(None), cabinet.retired_at.is_(None)


def _open_site_by_slug():
    """The site named by the bound ``slug``, unless retired (the conditions)."""
    return Site.slug == bindparam("slug"), Site.retired_at.is_(None)


def _site_items(site_id, item=Item, compartment=Compartment, cabinet=Cabinet):
    """The items visitors can get at a site (its id, or a bound parameter standing in)."""
    return (select(item).join(compartment, item.compartment_id == compartment.id)
            .join(cabinet, compartment.cabinet_id == cabinet.id)
            .where(cabinet.site_id == site_id, *_usable(item, cabinet)))


def availability(session: Session, site: Site, start: datetime, end: datetime) -> list[Availability]:
    """For each item type offered at the site (not retired, with items there): how many
    are in service, how many are free for the whole of [start, end). One statement."""
    rows = session.execute(_availability_statement(),
                           {"site_id": site.id, "start": start, "end": end}).all()
    return [Availability(item_type, total, int(free)) for item_type, total, free in rows]


@functools.cache
def _availability_statement():
    """Built once (a statement is compiled and keyed once, not on every request)."""
    overlapping = _overlapping(bindparam("start"), bindparam("end"))
    return (_site_items(bindparam("site_id")).join(Item.item_type)
            .where(ItemType.retired_at.is_(None))
            .with_only_columns(ItemType, func.count(Item.id),
                               func.sum(case((overlapping, 0), else_=1)))
            .group_by(ItemType.id).order_by(ItemType.id))


@functools.cache
def _offered_statement():
    """Built once (a statement is compiled and keyed once, not on every request)."""
    return (select(Site, Item.id, ItemType).select_from(Item).join(Item.compartment)
            .join(Compartment.cabinet).join(Cabinet.site).join(Item.item_type)
            .where(*_open_site_by_slug(), ItemType.retired_at.is_(None), *_usable())
            .order_by(ItemType.id, Item.id))


def offered_items(session: Session, slug: str) -> tuple[Site | None, list[tuple[ItemType, list[int]]]]:
    """The site with this slug and the item types offered there (as ``availability``
    counts them), each with its items' ids: one statement, a second only for a site
    without any item (or none at all)."""
    offered: dict[int, tuple[ItemType, list[int]]] = {}
    site = None
    for site, item_id, item_type in session.execute(_offered_statement(), {"slug": slug}):
        offered.setdefault(item_type.id, (item_type, []))[1].append(item_id)
    if site is None:
        site = site_by_slug(session, slug)
    return site, list(offered.values())


@functools.cache
def _site_statement():
    return select(Site).where(*_open_site_by_slug())


def site_by_slug(session: Session, slug: str) -> Site | None:
    """The site with this slug, unless retired (its statement built once)."""
    return session.scalars(_site_statement(), {"slug": slug}).first()


@dataclass(frozen=True)
class Prefetched:
    """What a booking reads before its turn, read with its site and item type
    (``booking_context``): the opening hours on the window's first and last local day, and
    the first item free for the whole window with its compartment and cabinet (None when
    none is)."""

    hours: dict[date, rules.Hours | None]
    first_free: Item | None
    new_id: int | None = None  # PostgreSQL: the new reservation's id, drawn already


# What a booking and its answer use of each object booking_context reads, no more: a
# column costs on every booking. The rule whole (its checks use most of it).
_CONTEXT_COLUMNS = (
    (Site, ("id", "slug", "name")),
    (ItemType, ("id", "code", "name_de", "name_en", "plural_de", "plural_en")),
    (BookingRule, None),
    (Item, ("id", "item_type_id", "compartment_id")),
    (Compartment, ("id", "cabinet_id", "number")),
    (Cabinet, ("id", "site_id", "name", "location")),
)


@functools.cache
def _context_layout() -> tuple[tuple[type, tuple[str, ...]], ...]:
    """Each object's class with the attributes read for it, its primary key (``id``) first."""
    return tuple((cls, names or tuple(attr.key for attr in sa_inspect(cls).column_attrs))
                 for cls, names in _CONTEXT_COLUMNS)


@functools.cache
def _booking_context_statement(draw_id: bool = False):
    """A site by slug, an item type by code, the site's rule for it (empty when staff have
    set none), the first free item of the type there with its compartment and cabinet
    (empty when none is), and the opening hours on two days: one row of plain columns
    (``_context_layout``), built once. With ``draw_id`` (PostgreSQL) also a new
    reservation id from its sequence, so that the code is signed before the booking's turn
    (``_book_if_clear``); one not used is a gap in the numbers, nothing more."""
    item, compartment, cabinet = aliased(Item), aliased(Compartment), aliased(Cabinet)
    first_free = (_site_items(Site.id, item, compartment, cabinet)
                  .where(item.item_type_id == ItemType.id,
                         ~_overlapping(bindparam("start"), bindparam("end"), item))
                  .with_only_columns(item.id).order_by(item.id).limit(1).scalar_subquery())
    hours, joins = [], []
    for n in ("1", "2"):
        special, regular = aliased(SpecialDay), aliased(OpeningHours)
        joins.append((special, special.site_id == Site.id,
                      special.day == bindparam("day" + n, type_=Date())))
        joins.append((regular, regular.site_id == Site.id,
                      regular.weekday == bindparam("weekday" + n, type_=Integer())))
        # A special day's hours, even none (closed), else the regular week's.
        hours += [case((special.id.is_not(None), getattr(special, name)),
                       else_=getattr(regular, name)) for name in ("opens", "closes")]
    columns = [getattr(cls, name) for cls, names in _context_layout() for name in names]
    if draw_id:
        hours.append(func.nextval(func.pg_get_serial_sequence("reservation", "id")))
    statement = (
        select(*columns, *hours)
        .select_from(Site)
        .join(ItemType, and_(ItemType.code == bindparam("code"), ItemType.retired_at.is_(None)))
        .outerjoin(BookingRule, and_(BookingRule.site_id == Site.id,
                                     BookingRule.item_type_id == ItemType.id))
        .outerjoin(Item, Item.id == first_free)
        .outerjoin(Compartment, Compartment.id == Item.compartment_id)
        .outerjoin(Cabinet, Cabinet.id == Compartment.cabinet_id))
    for table, *on in joins:
        statement = statement.outerjoin(table, and_(*on))
    return statement.where(*_open_site_by_slug())


def _with_values(cls: type, values):
    """A new ``cls`` object with ``values`` (pairs or a dict) put into its dictionary, as
    the session's loading puts them: the constructor makes an event of each (2 % of a
    booking's processor time for the reservation alone). In no session yet."""
    made = cls.__mapper__.class_manager.new_instance()
    instance_dict(made).update(values)
    return made


def _as_read(cls: type, names: tuple[str, ...], values):
    """The ``cls`` object with these attribute values, in no session; None for the empty
    side of an outer join. Attaching the six objects to the session as if loaded (their
    identity from their id, unread attributes to load when used) cost 1.0M of a booking's
    7.2M instructions (callgrind, PostgreSQL, 10k); a booking and its answer read what
    ``_CONTEXT_COLUMNS`` names and the relations ``booking_context`` sets, nothing else."""
    if values[0] is None:
        return None
    return _with_values(cls, zip(names, values))


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _context_row(session: Session, values: dict):
    """booking_context's row, as plain values. On PostgreSQL straight through psycopg:
    through SQLAlchemy's ORM, the statement with its six objects cost 0.37M more of a
    booking's 8.6M instructions (callgrind, one process, 10k)."""
    if session.get_bind().dialect.name != "postgresql":
        return session.connection().execute(_booking_context_statement(), values).first()
    # Taken first here, the connection stays in autocommit mode for the request (SQLAlchemy
    # sets it back when it returns to the pool): this statement runs on its own and the
    # turn begins the transaction (_postgresql_turn). Else psycopg sent a BEGIN before it
    # and waited for the answer: a round trip more.
    own = session() if isinstance(session, scoped_session) else session
    options = None if own.in_transaction() else _AUTOCOMMIT
    raw = session.connection(execution_options=options).connection.dbapi_connection
    statement = _booking_context_statement(bool(values["start"] and values["end"]))
    return raw.execute(*_for_psycopg(statement, values)).fetchone()


def booking_context(session: Session, slug: str, code: str, start: datetime | None,
                    end: datetime | None):
    """(site, item type, rule or None, Prefetched) for a booking of [start, end) (naive
    UTC), or None when there is no such open site or item type: one statement. Without a
    window (it could not be read) nothing is prefetched. The objects are in no session
    (``_as_read``), nor is the reservation ``create_reservation`` makes with them."""
    days = [to_local(start).date(), to_local(end).date()] if start and end else [None, None]
    row = _context_row(session, {
        "slug": slug, "code": code, "start": start, "end": end,
        "day1": days[0], "weekday1": days[0] and days[0].weekday(),
        "day2": days[1], "weekday2": days[1] and days[1].weekday()})
    if row is None:
        return None
    objects, at = [], 0
    for cls, names in _context_layout():
        objects.append(_as_read(cls, names, row[at:at + len(names)]))
        at += len(names)
    site, item_type, rule, item, compartment, cabinet = objects
    if item is not None:  # what the booking's answer reads of them (in no session)
        set_committed_value(item, "compartment", compartment)
        set_committed_value(item, "item_type", item_type)
        set_committed_value(compartment, "cabinet", cabinet)
        set_committed_value(cabinet, "site", site)
    if not (start and end):
        return site, item_type, rule, None
    opens1, closes1, opens2, closes2, *new_id = row[at:]
    return site, item_type, rule, Prefetched({days[0]: rules.open_hours(opens1, closes1),
                                              days[1]: rules.open_hours(opens2, closes2)}, item,
                                             new_id[0] if new_id else None)


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


def record_change(session: Session, reservation: Reservation, to_state: str, *, actor: str,
                  cause: str, at: datetime | None = None) -> None:
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


def _their_reservations(by_email: bool, by_ids: bool):
    """The person's active reservations of a type at a site, by address, by the ids this
    browser made, or both (their windows; None when neither is known)."""
    who = []
    if by_email:
        who.append(Reservation.person_key == bindparam("person_key"))
    if by_ids:
        who.append(Reservation.id.in_(bindparam("ids", expanding=True)))
    if not who:
        return None
    return (select(Reservation.start_at, Reservation.end_at)
            .join(Item, Reservation.item_id == Item.id)
            .join(Compartment, Reservation.compartment_id == Compartment.id)
            .join(Cabinet, Compartment.cabinet_id == Cabinet.id)
            .where(or_(*who), active_by_key(), Reservation.end_at > bindparam("now"),
                   Item.item_type_id == bindparam("item_type_id"),
                   Cabinet.site_id == bindparam("site_id")))


def _held_by_address():
    """The active reservations the client's address holds, up to its limit: an address
    holds no more than that many unless the limit was lowered, and counting them all made
    each booking slower by every reservation the address held (bench.city_scale books from
    one address)."""
    return (select(Reservation.id)
            .where(Reservation.client_key == bindparam("client_key"), active_by_key(),
                   Reservation.end_at > bindparam("now"))
            .limit(bindparam("client_limit")).subquery())


@functools.cache
def _persons_statement(by_email: bool, by_ids: bool, by_client: bool, free_item: bool = False):
    """The person's active reservations of a type at a site (``_their_reservations``) and,
    in the same statement, how many active reservations the client's address holds (one
    row, its times empty); with ``free_item`` also the first free item's id and
    compartment (one row, all else empty). Built once per combination."""
    # Empty columns typed: PostgreSQL matches a union's columns branch by branch.
    def empty(kind, label: str):
        return cast(null(), kind()).label(label)
    parts = []
    theirs = _their_reservations(by_email, by_ids)
    if theirs is not None:
        parts.append(theirs.add_columns(empty(Integer, "n"), empty(Integer, "item_id"),
                                        empty(Integer, "compartment_id")))
    if by_client:
        parts.append(select(empty(DateTime, "start_at"), empty(DateTime, "end_at"),
                            func.count().label("n"), empty(Integer, "item_id"),
                            empty(Integer, "compartment_id"))
                     .select_from(_held_by_address()))
    if free_item:
        free = _free_items_statement(False).subquery()
        parts.append(select(empty(DateTime, "start_at"), empty(DateTime, "end_at"),
                            empty(Integer, "n"), free.c.id, free.c.compartment_id))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _persons_query(site: Site, item_type: ItemType, person: Person, start: datetime,
                   end: datetime, now: datetime, free_item: bool):
    """The statement and its values for the person's reservations (``_check_persons``,
    ``_postgresql_turn``), or None when there is nothing to ask."""
    by_client = person.limited_by_address
    by_email, by_ids = bool(person.email), bool(person.reservation_ids)
    if not (by_email or by_ids or by_client or free_item):
        return None
    return (_persons_statement(by_email, by_ids, by_client, free_item),
            _persons_values(site, item_type, person, start, end, now))


def _persons_values(site: Site, item_type: ItemType, person: Person, start: datetime,
                    end: datetime, now: datetime) -> dict:
    """The values of ``_persons_statement`` and ``_book_if_clear``."""
    return {"person_key": person_key(person.email), "ids": list(person.reservation_ids),
            "now": now, "item_type_id": item_type.id, "site_id": site.id,
            "client_key": person.client_key, "client_limit": person.client_limit,
            "start": start, "end": end}


def _persons_verdict(rows, rule: BookingRule, item_type: ItemType, person: Person,
                     start: datetime, end: datetime):
    """Apply the per-person rules and the per-address limit to the rows of
    ``_persons_statement``; returns the first free item as (id, compartment id) or None."""
    theirs, client_active, free = [], 0, None
    for row_start, row_end, count, item_id, compartment_id in rows:
        if item_id is not None:
            free = (item_id, compartment_id)
        elif count is None:
            theirs.append((row_start, row_end))
        else:
            client_active = count
    rules.check_person(rule, item_type, theirs, start, end)
    if person.limited_by_address and client_active >= person.client_limit:
        raise DomainError(_l("Many reservations are already active from your internet connection. "
                             "Please return or cancel one first, or call us and we book for you."))
    return free


def _check_persons(session: Session, site: Site, item_type: ItemType, rule: BookingRule,
                   person: Person, start: datetime, end: datetime, now: datetime,
                   free_item: bool = False):
    """The per-person rules and the per-address limit, read in one statement; with
    ``free_item`` the same statement finds the first free item, returned as (id,
    compartment id) or None (one round trip less while a booking holds its turn)."""
    query = _persons_query(site, item_type, person, start, end, now, free_item)
    rows = session.execute(*query) if query else ()
    return _persons_verdict(rows, rule, item_type, person, start, end)


@functools.cache
def _free_items_statement(pick: bool):
    """The site's usable items of a type free for the whole window: the first one's id and
    compartment (``pick`` False, a quick look) or the first item with its compartment and
    cabinet loaded."""
    free = (_site_items(bindparam("site_id")).where(Item.item_type_id == bindparam("item_type_id"),
                                      ~_overlapping(bindparam("start"), bindparam("end")))
            .order_by(Item.id).limit(1))
    if not pick:
        return free.with_only_columns(Item.id, Item.compartment_id)
    return free.options(contains_eager(Item.compartment).contains_eager(Compartment.cabinet))


def _free_item(session: Session, site: Site, item_type: ItemType, start: datetime,
               end: datetime, pick: bool = False):
    found = session.execute(_free_items_statement(pick), {
        "site_id": site.id, "item_type_id": item_type.id, "start": start, "end": end})
    return found.scalars().first() if pick else found.first()


@contextmanager
def _allocation_turn(session: Session):
    """On SQLite with a database file: bookings take turns by a lock file beside it, across
    threads and processes. Waiting for SQLite's own write lock sleeps 1, 2, 5, 10 ms and
    more between tries: with 8 clients at once most of a booking's time was that sleep.
    The kernel hands this lock on the moment it is let go. Elsewhere nothing to do (the
    advisory lock on PostgreSQL wakes its waiter at once)."""
    bind = session.get_bind()
    database = bind.url.database if bind.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    handle = os.open(database + ".booking-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _wait_for_lock(handle, database_wait_seconds())
        yield
    finally:
        os.close(handle)  # lets the lock go


def _wait_for_lock(handle: int, seconds: float) -> None:
    """Take the lock file's lock, asking every millisecond until ``seconds`` have passed;
    then DatabaseBusy (a booking stuck behind a hung one must not hang its visitor)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise DatabaseBusy("the booking turn was not free within "
                                   f"{seconds:g} s") from None
            time.sleep(0.001)


_LOCK_AND_NUMBER = text("SELECT pg_advisory_xact_lock(:site, :kind), "
                        "nextval(pg_get_serial_sequence('reservation', 'id'))")


def _begin_allocation(session: Session) -> None:
    """SQLite: take the write lock before reading what is free, so that allocations of one
    database queue one behind the other. Without it, simultaneous bookings all pick the
    same item and all but one fail on the overlap guard (which stays the real guarantee).
    PostgreSQL takes its turn by an advisory lock (``_postgresql_turn``)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and \
            not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@functools.cache
def _psycopg_dialect():
    from sqlalchemy.dialects.postgresql.psycopg import dialect
    return dialect()


_GIVEN = object()  # stands for a value the caller gives, while a statement's text is made once


@functools.cache
def _compiled_for_psycopg(statement):
    """``statement`` (built once, so cached by identity) compiled for psycopg, with the
    conversions its values need on the way (SQLAlchemy's, as it would apply them). When no
    list is given to it, also its final text (the fixed lists of ``IN`` written in) and for
    each of its parameters whether its value is given or fixed: made per call, that took 5 %
    of a booking's processor time (py-spy's samples)."""
    dialect = _psycopg_dialect()
    compiled = statement.compile(dialect=dialect)
    convert = {}
    given = {}
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            if bind.expanding:
                raise TypeError(f"{name}: a list of {bind.type} to convert; "
                                "run it through SQLAlchemy")
            convert[name] = processor
        if bind.value is None and bind.callable is None and not bind.literal_execute:
            given[name] = _GIVEN
    if any(compiled.binds[name].expanding for name in given):
        return compiled, convert, None  # its text depends on the list's length
    expanded = compiled.construct_expanded_state(given)
    plan = tuple((name, value is _GIVEN, value, convert.get(name))
                 for name, value in expanded.parameters.items())
    return compiled, convert, (expanded.statement, plan)


def _for_psycopg(statement, values: dict) -> tuple[str, dict]:
    """The SQL text and values psycopg runs for ``statement`` with ``values`` (converted as
    SQLAlchemy would, lists expanded, the fixed values of ``IN`` rendered)."""
    compiled, convert, made = _compiled_for_psycopg(statement)
    if made is not None:
        text, plan = made
        parameters = {}
        for name, given, fixed, processor in plan:
            value = values[name] if given else fixed
            parameters[name] = processor(value) if processor is not None else value
        return text, parameters
    expanded = compiled.construct_expanded_state(values)
    parameters = expanded.parameters
    for name, processor in convert.items():
        if name in parameters:
            parameters[name] = processor(parameters[name])
    return expanded.statement, parameters


def _postgresql_turn(session: Session, site: Site, item_type: ItemType, rule: BookingRule,
                     person: Person, start: datetime, end: datetime, now: datetime):
    """PostgreSQL: queue for allocating an item of ``item_type`` at ``site`` (a
    transaction-scoped advisory lock), draw the new reservation's id (so that its code is
    signed before it is written, and all is written in one statement: ``_book_at_once``),
    and read the person's reservations with the first free item, as two statements in one
    round trip (psycopg's pipeline: each statement still sees what was committed before it
    began, so the second sees every booking made before the lock was ours). Every round
    trip while holding the lock is one the next booking waits for: with the two apart, and
    the write apart from its COMMIT, 8 clients booked 206-225 a second at 10k; in two
    round trips, 256-261 (bench.city_scale's machine, 4 gunicorn processes of 2 threads).

    Returns the id, the first free item as ``_check_persons`` does, and the psycopg
    connection for ``_write_and_commit``."""
    raw = session.connection().connection.dbapi_connection
    lock = _for_psycopg(_LOCK_AND_NUMBER, {"site": site.id, "kind": item_type.id})
    persons = _for_psycopg(*_persons_query(site, item_type, person, start, end, now, True))
    with raw.pipeline():
        if raw.autocommit:  # as booking_context leaves it: the transaction begins here
            raw.execute(b"BEGIN", prepare=False)
        numbered = raw.execute(*lock)
        found = raw.execute(*persons)
    new_id = numbered.fetchone()[1]
    return new_id, _persons_verdict(found.fetchall(), rule, item_type, person, start, end), raw


def _write_values(reservation: Reservation, event: dict) -> dict:
    """The values of ``_book_at_once`` for ``reservation`` (signed) and its first event."""
    return {**{"r_" + name: getattr(reservation, name) for name in _RESERVATION_COLUMNS},
            **event, "mail": bool(reservation.email)}


_LOCK = text("SELECT pg_advisory_xact_lock(:site, :kind)")


def _postgresql_at_once(session: Session, site: Site, item_type: ItemType, person: Person,
                        start: datetime, end: datetime, now: datetime, values: dict):
    """PostgreSQL: the whole turn in one round trip, nothing of it left to Python: BEGIN,
    the advisory lock, the writes when the booking is clear (``_book_if_clear``), COMMIT.
    Returns ``_book_if_clear``'s row. With the lock held while the person's reservations came back to
    Python and the write went out (``_postgresql_turn``), 8 clients booked one after the
    other at the pace of the round trips and of Python getting a processor for them."""
    raw = session.connection().connection.dbapi_connection
    lock = _for_psycopg(_LOCK, {"site": site.id, "kind": item_type.id})
    write = _for_psycopg(
        _book_if_clear(bool(person.email), bool(person.reservation_ids),
                       person.limited_by_address),
        {**_persons_values(site, item_type, person, start, end, now), **values})
    with raw.pipeline():
        if raw.autocommit:  # as booking_context leaves it: the transaction begins here
            raw.execute(b"BEGIN", prepare=False)
        raw.execute(*lock)
        written = raw.execute(*write)
        raw.execute(b"COMMIT", prepare=False)
    return written.fetchone()


def _write_and_commit(raw, values: dict) -> None:
    """PostgreSQL: the booking's one write and its COMMIT in one round trip. The COMMIT is
    a statement of the pipeline: psycopg's commit() inside one waits for its answer, and
    the pipeline's end then for one more (two round trips). The session's own commit after
    it finds nothing left to do (psycopg sends no COMMIT when no transaction is open)."""
    with raw.pipeline():
        raw.execute(*_for_psycopg(_book_at_once(), values))
        raw.execute(b"COMMIT", prepare=False)


def _checked_request(session: Session, site: Site, item_type: ItemType, start: datetime,
                     end: datetime, name: str | None, email: str | None, person: Person | None,
                     now: datetime, grace_minutes: int, rule: BookingRule | None = None,
                     prefetched: Prefetched | None = None
                     ) -> tuple[str, str | None, Person, BookingRule]:
    """The checks before any item is chosen: name, address, the window against the rules.
    Returns the cleaned name and address, the person (with that address) and the rule."""
    name = clean_name(name)
    email = clean_email(email)
    person = person or Person()
    person = Person(email or person.email, person.reservation_ids, person.client_key,
                    person.client_limit)
    rule = rule or rules.rule_for(session, site, item_type)
    rules.check_window(session, site, item_type, rule, start, end, now, grace_minutes=grace_minutes,
                       hours=prefetched.hours if prefetched else None)
    return name, email, person, rule


def check_booking(session: Session, *, site: Site, item_type: ItemType, start: datetime,
                  end: datetime, name: str | None, email: str | None,
                  person: Person | None = None, now: datetime | None = None,
                  grace_minutes: int = 15) -> None:
    """What ``create_reservation`` would refuse, without booking (the check-your-answers
    step); the booking itself checks again."""
    now = now or utcnow()
    _, _, person, rule = _checked_request(session, site, item_type, start, end, name, email,
                                          person, now, grace_minutes)
    _check_persons(session, site, item_type, rule, person, start, end, now)
    if _free_item(session, site, item_type, start, end) is None:
        raise _sold_out(item_type)


@dataclass(frozen=True)
class _Writes:
    insert_reservation: object
    set_code: object
    insert_event: object
    insert_mail: object


@functools.cache
def _writes() -> _Writes:
    """A booking's writes as plain statements, built once."""
    reservation = Reservation.__table__
    return _Writes(
        insert_reservation=reservation.insert(),
        set_code=reservation.update().where(reservation.c.id == bindparam("reservation_id"))
        .values(code=bindparam("new_code")),
        insert_event=ReservationEvent.__table__.insert(),
        insert_mail=OutgoingMail.__table__.insert())


_RESERVATION_COLUMNS = ("id", "item_id", "compartment_id", "start_at", "end_at", "pickup_until",
                        "visitor_name", "email", "phone", "state", "booked_with_email",
                        "person_key", "client_key", "created_at", "erased_at", "locale",
                        "numeric_code", "numeric_code_hash", "code", "booking_key")


@functools.cache
def _book_at_once():
    """PostgreSQL: the reservation, its first event and its confirmation mail (when
    ``mail``) in one statement, the reservation's id drawn and its code signed before."""
    return _booking_writes()


@functools.cache
def _book_if_clear(by_email: bool, by_ids: bool, by_client: bool):
    """PostgreSQL: ``_book_at_once``'s writes, made only when the booking is clear without
    a word from Python: the person holds no active reservation of the type at the site,
    the client's address fewer than its limit, and the item chosen before the turn is still
    the first free one, in its compartment. One row comes back: the new id (empty when
    nothing was written), whether the person and the address were clear, and the first
    free item as ``_free_item_as_read`` reads it (empty when none is), so that a booking
    whose item another one took a moment ago tries the next at once."""
    reservation = Reservation.__table__
    item_id = bindparam("r_item_id", type_=reservation.c.item_id.type)
    compartment_id = bindparam("r_compartment_id", type_=reservation.c.compartment_id.type)
    columns = [getattr(cls, name) for cls, names in _context_layout()[3:] for name in names]
    first = (_site_items(bindparam("site_id"))
             .where(Item.item_type_id == bindparam("item_type_id"),
                    ~_overlapping(bindparam("start"), bindparam("end")))
             .order_by(Item.id).limit(1)
             .with_only_columns(*(column.label(f"f{at}") for at, column in enumerate(columns)))
             .cte("first_free"))
    theirs = _their_reservations(by_email, by_ids)
    person_clear = ~exists(theirs) if theirs is not None else true()
    address_clear = (select(func.count()).select_from(_held_by_address()).scalar_subquery()
                     < bindparam("client_limit")) if by_client else true()
    checks = select(person_clear.label("person_clear"),
                    address_clear.label("address_clear")).cte("checks")
    return _booking_writes(
        checks.join(first, true()),
        [checks.c.person_clear, checks.c.address_clear, first.c.f0 == item_id,
         first.c.f2 == compartment_id],
        {"item_id": item_id, "compartment_id": compartment_id},
        lambda booked: select(booked.c.id, checks.c.person_clear, checks.c.address_clear,
                              *first.c).select_from(checks)
        .outerjoin(first, true()).outerjoin(booked, true()))


def _booking_writes(source=None, conditions=(), binds: dict | None = None, answer=None):
    """The reservation (its values bound as ``r_<column>``, those in ``binds`` given),
    written from ``source`` when ``conditions`` hold, with its first event and its
    confirmation mail (when ``mail``); the statement returns the new id, or what
    ``answer`` makes of the written row."""
    reservation, event, mail = (Reservation.__table__, ReservationEvent.__table__,
                                OutgoingMail.__table__)
    binds = binds or {}
    at = bindparam("at", type_=DateTime())
    values = [binds.get(name) if name in binds else
              bindparam("r_" + name, type_=reservation.c[name].type)
              for name in _RESERVATION_COLUMNS]
    written = select(*values)
    if source is not None:
        written = written.select_from(source)
    booked = (reservation.insert()
              .from_select(list(_RESERVATION_COLUMNS), written.where(*conditions))
              .returning(reservation.c.id).cte("booked"))
    logged = event.insert().from_select(
        ["reservation_id", "from_state", "to_state", "actor", "at", "cause"],
        select(booked.c.id, null(), bindparam("to_state", type_=String()),
               bindparam("actor", type_=String()), at, bindparam("cause", type_=String()))
    ).cte("logged")
    mailed = mail.insert().from_select(
        ["reservation_id", "kind", "created_at", "attempts", "next_attempt_at"],
        select(booked.c.id, literal("confirmation"), at, literal(0), at)
        .where(bindparam("mail", type_=Boolean()))).cte("mailed")
    return (answer(booked) if answer else select(booked.c.id)).add_cte(logged, mailed)


def _free_item_as_read(values, site: Site, item_type: ItemType) -> Item | None:
    """The item, its compartment and cabinet from ``_book_if_clear``'s row (in no session,
    as ``booking_context``'s), its site and type those given; None when it names none."""
    objects, at = [], 0
    for cls, names in _context_layout()[3:]:
        objects.append(_as_read(cls, names, values[at:at + len(names)]))
        at += len(names)
    item, compartment, cabinet = objects
    if item is None:
        return None
    set_committed_value(item, "compartment", compartment)
    set_committed_value(item, "item_type", item_type)
    set_committed_value(compartment, "cabinet", cabinet)
    set_committed_value(cabinet, "site", site)
    return item


def _picked(session: Session, site: Site, item_type: ItemType, start: datetime, end: datetime,
            prefetched: Prefetched | None) -> Item:
    """The first free item, loaded with its compartment and cabinet, in the turn. With
    ``booking_context``'s site and type, the answer reads them from there: loaded anew,
    they cost two statements more (a tenth of the web processes' time with 8 clients
    booking one slot at once, bench.city_scale)."""
    item = _free_item(session, site, item_type, start, end, pick=True)
    if item is not None and prefetched is not None:
        set_committed_value(item, "item_type", item_type)
        set_committed_value(item.compartment.cabinet, "site", site)
    return item


def _sold_out(item_type: ItemType) -> SoldOut:
    return SoldOut(_l("Sorry, no %(item)s is free at that time. Please try another time.",
                      item=item_type.name(str(get_locale() or "de"))))


def _unsaved(reservation_id: int, values: dict, item: Item) -> Reservation:
    """The reservation as it is written, with its code signed."""
    # It joins the session once written, unless its item is in none (create_reservation).
    reservation = _with_values(Reservation, {**values, "id": reservation_id, "item": item,
                                             "compartment": item.compartment})
    instance_dict(reservation)["code"] = signing.sign_reservation(reservation)
    return reservation


def _write_the_rest(connection, reservation: Reservation, event: dict) -> None:
    """SQLite: the code, the first event and the confirmation mail, each a statement."""
    writes = _writes()
    connection.execute(writes.set_code, {"reservation_id": reservation.id,
                                         "new_code": reservation.code})
    connection.execute(writes.insert_event, {"reservation_id": reservation.id,
                                             "from_state": None, **event})
    if reservation.email:  # a new reservation has no mail queued yet
        connection.execute(writes.insert_mail, {"reservation_id": reservation.id,
                                                "kind": "confirmation"})


def create_reservation(session: Session, *, site: Site, item_type: ItemType, start: datetime,
                       end: datetime, name: str | None, email: str | None,
                       person: Person | None = None, now: datetime | None = None,
                       grace_minutes: int = 15, actor: str = "visitor",
                       cause: str | None = None, phone: str | None = None,
                       rule: BookingRule | None = None,
                       prefetched: Prefetched | None = None,
                       booking_key: str | None = None) -> Reservation:
    """Book a concrete item of ``item_type`` at ``site`` for [start, end) (naive UTC);
    ``rule`` is the site's rule for the type and ``prefetched`` the hours and the first free
    item when the caller has read them already (``booking_context``). ``booking_key`` (a
    hash, services/booking_keys.py) is stored with it; when another request with the same
    key wrote its booking a moment ago, that one is returned.

    Raises DomainError for what the rules refuse and SoldOut when no item is free. The
    database has the last word on overlaps; losing a race means trying the next item.
    """
    now = now or utcnow()
    name, email, person, rule = _checked_request(session, site, item_type, start, end, name,
                                                 email, person, now, grace_minutes, rule,
                                                 prefetched)
    # The first free item with its compartment and cabinet, read before queueing for the
    # allocation: nothing free is refused at once (a rush for the last items does not line
    # every refusal up behind the lock), and the turn itself is short.
    first_free = prefetched.first_free if prefetched else \
        _free_item(session, site, item_type, start, end, pick=True)
    if first_free is None:
        session.rollback()
        raise _sold_out(item_type)
    postgresql = session.get_bind().dialect.name == "postgresql"

    def new_values(item: Item) -> dict:
        return dict(
            item_id=item.id, compartment_id=item.compartment_id, start_at=start, end_at=end,
            pickup_until=min(end, start + timedelta(minutes=rule.pickup_window_minutes)),
            visitor_name=name, email=email, phone=phone, state=ReservationState.BOOKED,
            booked_with_email=email is not None, person_key=person_key(email),
            client_key=person.client_key, created_at=now, erased_at=None,
            locale=str(get_locale() or "de"), numeric_code=numeric_codes.new_code(),
            booking_key=booking_key,
            # Its hash for the cabinet's keypad is made by the controller's sync, not here:
            # it is slow on purpose, and the visitor is waiting.
            numeric_code_hash=None)
    event = {"to_state": ReservationState.BOOKED, "actor": actor, "at": now,
             "cause": cause or ("booked online" if actor == "visitor" else f"booked by {actor}")}
    if postgresql and prefetched is not None and prefetched.new_id is not None:
        # Signed and made ready before the turn; in the turn one round trip that writes when
        # the booking is clear, else nothing. When only the item was taken meanwhile, the
        # next free one came back with the answer: tried at once the same way. Anything
        # else goes to the turn below, which decides and says why.
        item = first_free
        for attempt in range(ALLOCATION_ATTEMPTS):
            reservation = _unsaved(prefetched.new_id, new_values(item), item)
            with _allocation_turn(session):
                try:
                    row = _postgresql_at_once(session, site, item_type, person, start, end,
                                              now, _write_values(reservation, event))
                except (IntegrityError, psycopg.IntegrityError) as error:
                    session.rollback()  # the numeric code was taken: drawn anew
                    logger.info("allocation at once lost a race: %s",
                                getattr(error, "orig", error))
                    if (twin := booked_with_key(session, booking_key)) is not None:
                        return twin  # the same booking, sent twice at once
                    continue
            written, person_clear, address_clear, *found = row
            if written is not None:
                session.commit()
                return reservation
            if not (person_clear and address_clear):
                break
            item = _free_item_as_read(found, site, item_type)
            if item is None:
                session.rollback()
                raise _sold_out(item_type)
    for attempt in range(ALLOCATION_ATTEMPTS):
        # One booking at a time from here to the commit (see _allocation_turn).
        with _allocation_turn(session):
            try:
                if postgresql:
                    new_id, free, raw = _postgresql_turn(session, site, item_type, rule,
                                                         person, start, end, now)
                else:
                    _begin_allocation(session)
                    free = _check_persons(session, site, item_type, rule, person, start, end,
                                          now, free_item=True)
                if free is None:
                    raise _sold_out(item_type)
                # Unless another booking took the one seen before the turn (or staff moved
                # it just now), it is the one loaded then; else the next, loaded whole.
                item = first_free if tuple(free) == (first_free.id, first_free.compartment_id) \
                    else _picked(session, site, item_type, start, end, prefetched)
                values = new_values(item)
                if postgresql:  # signed first, written at once
                    reservation = _unsaved(new_id, values, item)
                    _write_and_commit(raw, _write_values(reservation, event))
                else:
                    connection = session.connection()
                    reservation_id = connection.execute(
                        _writes().insert_reservation, values).inserted_primary_key[0]
                    reservation = _unsaved(reservation_id, values, item)
                    _write_the_rest(connection, reservation, event)
            except (IntegrityError, psycopg.IntegrityError) as error:
                # Another booking took this item a moment ago, or the numeric code was
                # taken: try again. (A database that does not answer in time is no race:
                # its error goes up, and the visitor is asked to try again in a minute.)
                session.rollback()
                logger.info("allocation attempt %d lost a race: %s", attempt + 1,
                            getattr(error, "orig", error))
                if (twin := booked_with_key(session, booking_key)) is not None:
                    return twin  # the same booking, sent twice at once
                continue
            except DomainError:
                session.rollback()
                raise
            session.commit()
        # Written by the statements above, not by the session's unit of work (a third of a
        # booking's time): the object joins the session as if loaded, nothing to write;
        # with booking_context's objects (in no session) it stays out as they do.
        if prefetched is None:
            make_transient_to_detached(reservation)
            session.add(reservation)
        return reservation
    raise _sold_out(item_type)


def booked_with_key(session: Session, booking_key: str | None) -> Reservation | None:
    """The reservation stored with this one-time key (hashed), if any."""
    if not booking_key:
        return None
    return session.scalars(select(Reservation).where(
        Reservation.booking_key == booking_key)).first()


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
    """A visitor may cancel until the window starts."""
    now = now or utcnow()
    return reservation.state == ReservationState.BOOKED and now < reservation.start_at


def cancel_reservation(session: Session, reservation: Reservation, *, actor: str = "visitor",
                       cause: str = "cancelled by visitor", now: datetime | None = None) -> None:
    if actor == "visitor" and not can_cancel(reservation, now):
        raise DomainError(_l("This reservation can no longer be cancelled."))
    if reservation.state != ReservationState.BOOKED:
        raise DomainError(_l("This reservation can no longer be cancelled."))
    record_change(session, reservation, ReservationState.CANCELLED, actor=actor, cause=cause,
                  at=now)
    session.commit()


