"""Finding reservations and what can be booked, and cancelling: the reads of the site
page, the availability API and the reservation page. Booking itself is services/booking.py,
the change log services/reservation_log.py."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, and_, bindparam, case, func, select
from sqlalchemy.orm import Session, aliased, joinedload

import signed_code
from locker_app.models import (RULE_DEFAULTS, BookingRule, Cabinet, Compartment, Item, ItemType,
                               Reservation, ReservationState, Site, utcnow)
from locker_app.services import signing
from locker_app.services.errors import DomainError, NotFound
from locker_app.services.free_items import overlapping, usable, usable_items
from locker_app.services.reservation_log import record_change


@dataclass(frozen=True)
class Availability:
    item_type: ItemType
    total: int
    free: int


def site_by_slug(session: Session, slug: str) -> Site | None:
    """The site with this slug, unless retired."""
    return session.scalars(_site_by_slug(), {"slug": slug}).first()


def availability(session: Session, site: Site, start: datetime, end: datetime) -> list[Availability]:
    """For each item type offered at the site (not retired, with items there): how many
    are in service, how many are free for the whole of [start, end). One statement."""
    rows = session.execute(_availability(), {"site_id": site.id, "start": start, "end": end})
    return [Availability(item_type, total, int(free)) for item_type, total, free in rows]


def offered_items(session: Session, slug: str) -> tuple[Site | None, list[tuple[ItemType, list[int]]]]:
    """The site with this slug and the item types offered there (as ``availability``
    counts them), each with its items' ids: one statement, a second only for a site
    without any item (or none at all)."""
    offered: dict[int, tuple[ItemType, list[int]]] = {}
    site = None
    for site, item_id, item_type in session.execute(_offered(), {"slug": slug}):
        offered.setdefault(item_type.id, (item_type, []))[1].append(item_id)
    if site is None:
        site = site_by_slug(session, slug)
    return site, list(offered.values())


# The statements of the site page and the API are built once per process, their values
# bound when they run: building one of them took longer than running it (issue 31).
@functools.cache
def _site_by_slug():
    return select(Site).where(Site.slug == bindparam("slug"), Site.retired_at.is_(None))


@functools.cache
def _availability():
    start, end = bindparam("start", type_=DateTime()), bindparam("end", type_=DateTime())
    return (usable_items(bindparam("site_id")).join(Item.item_type)
            .where(ItemType.retired_at.is_(None))
            .with_only_columns(ItemType, func.count(Item.id),
                               func.sum(case((overlapping(start, end), 0), else_=1)))
            .group_by(ItemType.id).order_by(ItemType.id))


@functools.cache
def _offered():
    return (select(Site, Item.id, ItemType).select_from(Item).join(Item.compartment)
            .join(Compartment.cabinet).join(Cabinet.site).join(Item.item_type)
            .where(Site.slug == bindparam("slug"), Site.retired_at.is_(None),
                   ItemType.retired_at.is_(None), *usable())
            .order_by(ItemType.id, Item.id))


def booking_context(session: Session, slug: str, code: str
                    ) -> tuple[Site, ItemType, BookingRule | None] | None:
    """The open site with this slug, the item type with this code and the site's rule for
    it (None when staff have set none), in one statement; None when there is no such site
    or item type."""
    return session.execute(_booking_context(), {"slug": slug, "code": code}).first()


@functools.cache
def _booking_context():
    """Built once per process: building it took longer than running it."""
    return (select(Site, ItemType, BookingRule).select_from(Site)
            .join(ItemType, and_(ItemType.code == bindparam("code"),
                                 ItemType.retired_at.is_(None)))
            .outerjoin(BookingRule, and_(BookingRule.site_id == Site.id,
                                         BookingRule.item_type_id == ItemType.id))
            .where(Site.slug == bindparam("slug"), Site.retired_at.is_(None)))


def find_by_code(session: Session, token: str) -> Reservation:
    """The reservation a code belongs to; NotFound for anything forged or unknown."""
    return _found(session, token, _by_id())[0]


def find_with_early_minutes(session: Session, token: str) -> tuple[Reservation, int]:
    """``find_by_code``, with how many minutes early its rule lets the visitor pick up: all
    that the pages of a reservation show, in one statement (the rule was a statement of its
    own, and the page 3.3x the bare endpoint at 1M on PostgreSQL, bench.city_scale)."""
    reservation, early = _found(session, token, _by_id_with_early_minutes())
    return reservation, RULE_DEFAULTS["early_pickup_minutes"] if early is None else early


def _found(session: Session, token: str, statement):
    try:
        claims = signed_code.verify(token, signing.public_key_objects())
    except signed_code.InvalidCode:
        raise NotFound(_l("We could not find this reservation.")) from None
    row = session.execute(statement, {"id": claims.reservation_id}).first()
    if row is None or row[0].code != token:
        raise NotFound(_l("We could not find this reservation."))
    return row


@functools.cache
def _by_id():
    """A reservation with its item and type, compartment, cabinet and site, which every
    page of a reservation shows: one statement instead of six (built once per process)."""
    return select(Reservation).where(Reservation.id == bindparam("id")).options(
        joinedload(Reservation.item, innerjoin=True).joinedload(Item.item_type, innerjoin=True),
        joinedload(Reservation.compartment, innerjoin=True)
        .joinedload(Compartment.cabinet, innerjoin=True).joinedload(Cabinet.site, innerjoin=True))


@functools.cache
def _by_id_with_early_minutes():
    """``_by_id`` and its rule's early pickup minutes (None without a rule)."""
    item = aliased(Item)
    compartment = aliased(Compartment)
    cabinet = aliased(Cabinet)
    early = (select(BookingRule.early_pickup_minutes)
             .join(cabinet, cabinet.site_id == BookingRule.site_id)
             .join(compartment, compartment.cabinet_id == cabinet.id)
             .join(item, item.item_type_id == BookingRule.item_type_id)
             .where(compartment.id == Reservation.compartment_id,
                    item.id == Reservation.item_id)
             .scalar_subquery())
    return _by_id().add_columns(early)


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
