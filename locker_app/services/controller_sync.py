"""A controller's sync: what it needs to decide offline (its cabinet, the signing keys, the
reservations it may be shown), changed after its cursor."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, or_, select, union, update
from sqlalchemy.orm import Session, aliased

from locker_app.models import (Compartment, Controller, Item, Reservation, ReservationEvent,
                               ReservationState, active_reservation, utcnow)
from locker_app.services import numeric_codes, rules, signing
from locker_app.services.timeutil import aware_utc


def _iso(moment: datetime) -> str:
    return aware_utc(moment).isoformat().replace("+00:00", "Z")


# Ended reservations a controller still hears of: a code scanned just after its window
# gets "returned" or "cancelled" rather than "expired", and a change staff make to an old
# reservation (a late return entered by hand) still reaches the cabinet.
SYNC_KEEP = timedelta(days=2)


def _scannable(cabinet_id: int, now: datetime):
    """The ids of the cabinet's reservations a controller needs: active ones, those not yet
    ended (or only just), and those changed lately. Each part is one index range, so the
    size of the history does not matter."""
    cutoff = now - SYNC_KEEP
    in_cabinet = select(Compartment.id).where(Compartment.cabinet_id == cabinet_id)
    return union(
        select(Reservation.id).where(active_reservation(),
                                     Reservation.compartment_id.in_(in_cabinet)),
        select(Reservation.id).where(Reservation.end_at > cutoff,
                                     Reservation.compartment_id.in_(in_cabinet)),
        select(ReservationEvent.reservation_id).join(
            Reservation, ReservationEvent.reservation_id == Reservation.id).where(
            ReservationEvent.at > cutoff, Reservation.compartment_id.in_(in_cabinet)))


def _needed_lately(cutoff: datetime):
    """A reservation (the query's) a controller needs: active, not yet ended (or only just),
    or changed lately; as ``_scannable``, for one reservation."""
    changed = aliased(ReservationEvent)
    return or_(active_reservation(), Reservation.end_at > cutoff,
               exists().where(changed.reservation_id == Reservation.id, changed.at > cutoff))


def _latest_events(cabinet_id: int, since: int, now: datetime, limit: int):
    """Up to ``limit`` reservations of the cabinet a controller needs, changed after the
    cursor ``since``, each with the id of its latest event, in the order of those ids
    (the page is cut here, before the reservations are joined: PostgreSQL, expecting
    thousands of rows, read all of them one by one, 154 ms at 1M).

    A new controller (``since`` 0) starts from the reservations it needs, each part of
    that set one index range. Later syncs start from the events after the cursor, a few
    since the last sync, and keep those of reservations it needs: recomputing the whole
    set on every sync made each one slower as history grew (bench.city_scale)."""
    if since == 0:
        last = func.max(ReservationEvent.id)
        return (select(ReservationEvent.reservation_id, last.label("event_id"))
                .where(ReservationEvent.reservation_id.in_(_scannable(cabinet_id, now)))
                .group_by(ReservationEvent.reservation_id).order_by(last).limit(limit)
                .subquery())
    # Each reservation's latest event is one after the cursor with no later one: the events
    # are read by their ids from the cursor on (grouped by reservation instead, SQLite
    # walked the index of all events' reservations, 219 ms at 1M).
    later = aliased(ReservationEvent)
    return (select(ReservationEvent.reservation_id, ReservationEvent.id.label("event_id"))
            .join(Reservation, ReservationEvent.reservation_id == Reservation.id)
            .join(Compartment, Reservation.compartment_id == Compartment.id)
            .where(ReservationEvent.id > since, Compartment.cabinet_id == cabinet_id,
                   ~exists().where(later.reservation_id == ReservationEvent.reservation_id,
                                   later.id > ReservationEvent.id),
                   _needed_lately(now - SYNC_KEEP))
            .order_by(ReservationEvent.id).limit(limit).subquery())


def sync(session: Session, controller: Controller, since: int, limit: int,
         now: datetime | None = None) -> dict:
    """What the controller needs to decide offline, changed after cursor ``since``: its
    scannable reservations, each once with the id of its latest event; the cursor is the
    highest of those on the page. A new controller (``since`` 0) gets what can still be
    scanned, not the history; every page takes the same few statements."""
    now = now or utcnow()
    cabinet = controller.cabinet
    salt = numeric_codes.cabinet_salt(cabinet)
    latest = _latest_events(cabinet.id, since, now, limit + 1)
    # Plain columns, not whole reservations: a page of 500 is read without building objects.
    rows = session.execute(
        select(latest.c.event_id, Reservation.id, Reservation.state, Reservation.start_at,
               Reservation.pickup_until, Reservation.end_at, Reservation.numeric_code,
               Reservation.numeric_code_hash, Reservation.locale, Compartment.number,
               Item.item_type_id)
        .join(Reservation, Reservation.id == latest.c.reservation_id)
        .join(Compartment, Reservation.compartment_id == Compartment.id)
        .join(Item, Reservation.item_id == Item.id)
        .order_by(latest.c.event_id)  # (the page was cut in ``latest``)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    early = {rule.item_type_id: rule.early_pickup_minutes
             for rule in rules.rules_for_site(session, cabinet.site,
                                               {row.item_type_id for row in rows})}
    # Hashed here, once, not while the visitor waits for the booking (it is slow on
    # purpose); stored in one statement for the page.
    hashes = {row.id: numeric_codes.code_hash(row.numeric_code, salt) for row in rows
              if row.numeric_code and not row.numeric_code_hash
              and row.state in ReservationState.ACTIVE}
    if hashes:
        session.execute(update(Reservation), [{"id": rid, "numeric_code_hash": value}
                                              for rid, value in hashes.items()])
    cursor = rows[-1].event_id if rows else since
    controller.last_seen_at = controller.last_sync_at = utcnow()
    document = {
        "cursor": cursor,
        "more": more,
        "cabinet": {
            "id": cabinet.id,
            "board_family": cabinet.board_family,
            "inverted_polarity": cabinet.inverted_polarity,
            # What the cabinet's display tells visitors: whom to call, in which time zone.
            "hotline": cabinet.site.hotline or "",
            "timezone": current_app.config["TIMEZONE"],
            "compartments": [{"number": c.number, "board": c.board_address,
                              "lock": c.lock_number} for c in cabinet.compartments],
        },
        "keys": {str(kid): key for kid, key in signing.public_keys().items()},
        "code_salt": salt,
        "reservations": [{
            "id": r.id, "state": r.state, "compartment": r.number,
            "valid_from": _iso(r.start_at), "valid_until": _iso(r.pickup_until),
            "end": _iso(r.end_at),
            # From when the controller may open early, if nobody else has the item then.
            "early_from": _iso(r.start_at - timedelta(minutes=early[r.item_type_id])),
            # Only active reservations carry a code hash: an ended one types in nothing.
            "code_hash": (hashes.get(r.id) or r.numeric_code_hash)
            if r.state in ReservationState.ACTIVE else None,
            "locale": r.locale,
        } for r in rows],
    }
    session.commit()
    return document
