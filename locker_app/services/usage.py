"""Daily aggregates behind the statistics: each item's day (bookings, loans, minutes lent,
no-shows, late returns) and each cabinet's reported events, recomputed for a range of days.
The scheduler keeps yesterday and today current; ``flask statistics rebuild`` recomputes any
range. Days are the site's local calendar days; a loan across midnight counts its minutes
on each day it touched. Nothing personal is read or kept."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from locker_app.models import (BookingRule, Cabinet, Compartment, Controller, ControllerEvent, DailyEvents,
                               DailyUsage, Item, Reservation, ReservationEvent, ReservationState as S,
                               utcnow)
from locker_app.services.timeutil import local_to_utc, to_local

# Events counted per cabinet and day (refused scans also by their reason).
COUNTED_EVENTS = ("scan_refused", "door_forced", "door_left_open", "unlock_failed",
                  "unlock_unanswered", "return_incomplete", "board_offline", "scanner_lost",
                  "keypad_lost", "keypad_locked", "server_unreachable", "config_mismatch",
                  "anomaly", "cabinet_silent", "defect_reported")


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    return local_to_utc(day, time(0)), local_to_utc(day + timedelta(days=1), time(0))


def _local_day(moment: datetime) -> date:
    return to_local(moment).date()


def _minutes(a: datetime, b: datetime) -> int:
    return max(0, int((b - a).total_seconds() // 60))


def rebuild(session: Session, first: date, last: date, now: datetime | None = None) -> int:
    """Recompute the aggregates of the days first..last (inclusive); returns the rows written."""
    now = now or utcnow()
    start, _ = _day_bounds(first)
    _, end = _day_bounds(last)
    # Reservations that touch the range: something happened to them in it (made, picked up,
    # returned, cancelled, not picked up: their events, by the index on the event time), they
    # were due in it (start or end; by the end_at index, bounded by the longest "days ahead"
    # of any rule), or they are out now (by the state index). Not found: a loan returned more
    # than two days late, after the range, that was out across all of it; the scheduler
    # counted its days while it was out, only a later rebuild of those days misses it.
    ahead = timedelta(days=(session.scalar(select(func.max(BookingRule.max_days_ahead))) or 30) + 1)
    touched = select(ReservationEvent.reservation_id).where(
        ReservationEvent.at >= start, ReservationEvent.at < end)
    due = select(Reservation.id).where(Reservation.end_at >= start - timedelta(days=2),
                                       Reservation.start_at < end + ahead,
                                       Reservation.created_at < end)
    out = select(Reservation.id).where(Reservation.state.in_((S.PICKED_UP, S.OVERDUE)),
                                       Reservation.start_at < end)
    wanted = set(session.scalars(touched)) | set(session.scalars(due)) | set(session.scalars(out))
    reservations = []
    ordered = sorted(wanted)
    for chunk in range(0, len(ordered), 5000):
        reservations += session.execute(
            select(Reservation.id, Reservation.item_id, Reservation.created_at, Reservation.start_at,
                   Reservation.end_at, Reservation.state, Reservation.booked_with_email)
            .where(Reservation.id.in_(ordered[chunk:chunk + 5000]))).all()
    ids = [r.id for r in reservations]
    moments: dict[int, dict[str, datetime]] = defaultdict(dict)
    first_actor: dict[int, str] = {}
    for chunk in range(0, len(ids), 5000):
        for rid, to_state, at, actor, from_state in session.execute(
                select(ReservationEvent.reservation_id, ReservationEvent.to_state,
                       ReservationEvent.at, ReservationEvent.actor, ReservationEvent.from_state)
                .where(ReservationEvent.reservation_id.in_(ids[chunk:chunk + 5000]))
                .order_by(ReservationEvent.id)):
            if from_state is None:
                first_actor[rid] = actor
            if to_state not in moments[rid]:  # the first time it reached that state
                moments[rid][to_state] = at
    places = {item_id: (site_id, type_id, cabinet_id, number) for item_id, site_id, type_id, cabinet_id, number
              in session.execute(select(Item.id, Cabinet.site_id, Item.item_type_id, Cabinet.id,
                                        Compartment.number)
                                 .join(Compartment, Item.compartment_id == Compartment.id)
                                 .join(Cabinet, Compartment.cabinet_id == Cabinet.id))}
    rows: dict[tuple[date, int], dict] = {}

    def row(day: date, item_id: int) -> dict | None:
        if not first <= day <= last or item_id not in places:
            return None
        key = (day, item_id)
        if key not in rows:
            rows[key] = defaultdict(int, histogram=defaultdict(int))
        return rows[key]

    for r in reservations:
        seen = moments.get(r.id, {})
        if (made := row(_local_day(r.created_at), r.item_id)) is not None:
            made["bookings"] += 1
            made["bookings_phone"] += first_actor.get(r.id) == "staff"
            made["bookings_without_email"] += not r.booked_with_email
        if "cancelled" in seen and (c := row(_local_day(seen["cancelled"]), r.item_id)) is not None:
            c["cancellations"] += 1
            c["cancel_lead_minutes"] += _minutes(seen["cancelled"], r.start_at)
        if r.state != S.CANCELLED and (due := row(_local_day(r.start_at), r.item_id)) is not None:
            due["starts"] += 1
            due["no_shows"] += r.state == S.NO_SHOW
        picked = seen.get("picked_up")
        if picked is None:
            continue
        returned = seen.get("returned")
        if (p := row(_local_day(picked), r.item_id)) is not None:
            p["loans"] += 1
            if returned is not None:
                length = _minutes(picked, returned)
                p["loan_minutes"] += length
                p["loan_minutes_max"] = max(p["loan_minutes_max"], length)
                p["histogram"][str(length // 15)] += 1
        if (d := row(_local_day(r.end_at), r.item_id)) is not None:
            d["due"] += 1
            back = returned or now
            if back > r.end_at:
                late = _minutes(r.end_at, back)
                d["overdue"] += 1
                d["late_minutes"] += late
                d["late_minutes_max"] = max(d["late_minutes_max"], late)
        # Minutes lent on each day the loan touched.
        until = returned or now
        day = _local_day(picked)
        while day <= _local_day(until) and day <= last:
            day_start, day_end = _day_bounds(day)
            if (lent := row(day, r.item_id)) is not None:
                lent["minutes_lent"] += _minutes(max(picked, day_start), min(until, day_end))
            day += timedelta(days=1)

    session.execute(delete(DailyUsage).where(DailyUsage.day >= first, DailyUsage.day <= last))
    for (day, item_id), values in rows.items():
        site_id, type_id, cabinet_id, number = places[item_id]
        histogram = values.pop("histogram")
        session.add(DailyUsage(day=day, item_id=item_id, site_id=site_id, item_type_id=type_id,
                               cabinet_id=cabinet_id, compartment=number,
                               loan_histogram=json.dumps(histogram, sort_keys=True), **values))
    written = len(rows) + _rebuild_events(session, first, last, start, end)
    session.commit()
    return written


def _rebuild_events(session: Session, first: date, last: date, start: datetime, end: datetime) -> int:
    counts: dict[tuple[date, int, str, str], int] = defaultdict(int)
    sites = dict(session.execute(select(Cabinet.id, Cabinet.site_id)).all())
    for kind, occurred, detail, cabinet_id in session.execute(
            select(ControllerEvent.kind, ControllerEvent.occurred_at, ControllerEvent.detail,
                   Controller.cabinet_id)
            .join(Controller, ControllerEvent.controller_id == Controller.id)
            .where(ControllerEvent.occurred_at >= start, ControllerEvent.occurred_at < end,
                   ControllerEvent.kind.in_(COUNTED_EVENTS))):
        reason = ""
        if kind == "scan_refused" and detail:
            try:
                reason = str(json.loads(detail).get("reason", ""))[:40]
            except (ValueError, AttributeError):
                reason = ""
        counts[(_local_day(occurred), cabinet_id, kind, reason)] += 1
    session.execute(delete(DailyEvents).where(DailyEvents.day >= first, DailyEvents.day <= last))
    for (day, cabinet_id, kind, reason), count in counts.items():
        session.add(DailyEvents(day=day, cabinet_id=cabinet_id, site_id=sites[cabinet_id],
                                kind=kind, reason=reason, count=count))
    return len(counts)


def keep_current(session: Session, now: datetime | None = None) -> int:
    """The scheduler's job: yesterday (late events still arrive) and today."""
    now = now or utcnow()
    today = _local_day(now)
    return rebuild(session, today - timedelta(days=1), today, now)
