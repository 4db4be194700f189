"""Which items visitors can get at a site, and which of them are free for a window: the
conditions the site page, the availability API, the free times and a booking share."""
from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import DateTime, bindparam, exists, select
from sqlalchemy.orm import Session, contains_eager

from locker_app.models import (Cabinet, Compartment, Item, ItemType, Reservation, Site,
                               active_reservation, time_ranges_meet)


def usable():
    """An item visitors can get: in service, not retired, in a cabinet still in use (the
    query joins the item's cabinet)."""
    return Item.in_service.is_(True), Item.retired_at.is_(None), Cabinet.retired_at.is_(None)


def usable_items(site_id):
    """The items visitors can get at a site, their compartment and cabinet joined."""
    return (select(Item).join(Item.compartment).join(Compartment.cabinet)
            .where(Cabinet.site_id == site_id, *usable()))


def overlapping(start: datetime, end: datetime):
    """An active reservation of the item in the query overlaps [start, end)."""
    return exists().where(
        Reservation.item_id == Item.id,
        active_reservation(),
        Reservation.start_at < end,
        Reservation.end_at > start,
        time_ranges_meet(start, end),
    )


# The statements a booking runs are built once per process, their values bound when they
# run: building one of them took longer than running it (bench/RESULTS.md, issue 31).
@functools.cache
def _free_of_type():
    """The usable items of a type at a site free for the whole of a window (values
    ``site_id``, ``item_type_id``, ``start``, ``end``), the lowest id first. The
    reservations are looked up by the index of the active ones per item and end time, so
    the past ones are never read."""
    start, end = bindparam("start", type_=DateTime()), bindparam("end", type_=DateTime())
    return (usable_items(bindparam("site_id"))
            .where(Item.item_type_id == bindparam("item_type_id"), ~overlapping(start, end))
            .order_by(Item.id).limit(1))


@functools.cache
def _first_free_loaded():
    return _free_of_type().options(contains_eager(Item.compartment)
                                   .contains_eager(Compartment.cabinet))


@functools.cache
def _first_free_id():
    return _free_of_type().with_only_columns(Item.id)


def _window(site: Site, item_type: ItemType, start: datetime, end: datetime) -> dict:
    return {"site_id": site.id, "item_type_id": item_type.id, "start": start, "end": end}


def first_free_item(session: Session, site: Site, item_type: ItemType, start: datetime,
                    end: datetime) -> Item | None:
    """The first free item (``_free_of_type``), loaded with its compartment and cabinet;
    None when none is."""
    return session.scalars(_first_free_loaded(), _window(site, item_type, start, end)).first()


def first_free_item_id(session: Session, site: Site, item_type: ItemType, start: datetime,
                       end: datetime) -> int | None:
    """The first free item's id only (``_free_of_type``); None when none is."""
    return session.scalar(_first_free_id(), _window(site, item_type, start, end))
