"""Which items visitors can get at a site, and which of them are free for a window: the
conditions the site page, the availability API, the free times and a booking share."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
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


def first_free_item(session: Session, site: Site, item_type: ItemType, start: datetime,
                    end: datetime) -> Item | None:
    """The usable item of the type at the site with the lowest id that is free for the whole
    of [start, end), loaded with its compartment and cabinet; None when none is. The
    reservations are looked up by the index of the active ones per item and end time, so
    the past ones are never read."""
    return session.scalars(
        usable_items(site.id)
        .where(Item.item_type_id == item_type.id, ~overlapping(start, end))
        .options(contains_eager(Item.compartment).contains_eager(Compartment.cabinet))
        .order_by(Item.id).limit(1)).first()
