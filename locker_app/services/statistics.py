"""The figures staff and the council see, read from the daily aggregates (services/usage.py)
for a period, a site and an item type: a handful of indexed queries however long history
grows."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from locker_app.models import (Cabinet, Compartment, DailyEvents, DailyUsage, Item, ItemType,
                               OpeningHours, Site, SpecialDay)
from locker_app.services.timeutil import local_to_utc, page_language


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    site_id: int | None = None
    item_type_id: int | None = None

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """The period's first and last local day as [start, end) in naive UTC."""
        return (local_to_utc(self.first, time(0)),
                local_to_utc(self.last + timedelta(days=1), time(0)))

    def before(self) -> "Period":
        """The period of the same length just before, for the comparison."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1),
                      self.site_id, self.item_type_id)


@dataclass
class Figures:
    period: Period
    bookings: int = 0
    bookings_phone: int = 0
    bookings_without_email: int = 0
    cancellations: int = 0
    cancel_lead_minutes: int = 0
    loans: int = 0
    loan_minutes: int = 0
    loan_minutes_max: int = 0
    median_loan_minutes: int | None = None
    minutes_lent: int = 0
    minutes_open: int = 0  # opening minutes times items
    starts: int = 0
    no_shows: int = 0
    due: int = 0
    overdue: int = 0
    late_minutes: int = 0
    late_minutes_max: int = 0
    per_day: list[tuple[date, int]] = field(default_factory=list)  # loans
    per_week: list[tuple[str, int]] = field(default_factory=list)
    per_item: list[tuple[str, int, float]] = field(default_factory=list)  # label, minutes, share
    per_compartment: list[tuple[str, int, float]] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # reason, count
    events_per_cabinet: list[tuple[str, str, int]] = field(default_factory=list)

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def utilisation(self) -> float | None:
        return self._rate(self.minutes_lent, self.minutes_open)

    @property
    def no_show_rate(self) -> float | None:
        return self._rate(self.no_shows, self.starts)

    @property
    def overdue_rate(self) -> float | None:
        return self._rate(self.overdue, self.due)

    @property
    def mean_late_minutes(self) -> float | None:
        return self.late_minutes / self.overdue if self.overdue else None

    @property
    def mean_cancel_lead_minutes(self) -> float | None:
        return self.cancel_lead_minutes / self.cancellations if self.cancellations else None

    @property
    def phone_share(self) -> float | None:
        return self._rate(self.bookings_phone, self.bookings)

    @property
    def without_email_share(self) -> float | None:
        return self._rate(self.bookings_without_email, self.bookings)


SUMMED = ("bookings", "bookings_phone", "bookings_without_email", "cancellations",
          "cancel_lead_minutes", "loans", "loan_minutes", "minutes_lent", "starts", "no_shows",
          "due", "overdue", "late_minutes")


def _where(model, period: Period):
    conditions = [model.day >= period.first, model.day <= period.last]
    if period.site_id:
        conditions.append(model.site_id == period.site_id)
    if period.item_type_id is not None and model is DailyUsage:
        conditions.append(DailyUsage.item_type_id == period.item_type_id)
    return conditions


def _holds_type(session: Session, item_type_id: int | None) -> set[tuple[int, int]] | None:
    """With an item type chosen: the (cabinet, number) of the compartments holding an item
    of that type now; None without one (every compartment counts)."""
    if item_type_id is None:
        return None
    return set(session.execute(
        select(Compartment.cabinet_id, Compartment.number)
        .join(Item, Item.compartment_id == Compartment.id)
        .where(Item.item_type_id == item_type_id, Item.retired_at.is_(None))).all())


def median_from_histogram(histogram: dict[int, int]) -> int | None:
    """The median loan in minutes, to the quarter hour (the middle of its bucket)."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen * 2 >= total:
            return bucket * 15 + 7
    return None


def compute(session: Session, period: Period) -> Figures:
    figures = Figures(period)
    where = _where(DailyUsage, period)
    totals = session.execute(select(*[func.coalesce(func.sum(getattr(DailyUsage, name)), 0)
                                      for name in SUMMED],
                                    func.coalesce(func.max(DailyUsage.loan_minutes_max), 0),
                                    func.coalesce(func.max(DailyUsage.late_minutes_max), 0))
                             .where(*where)).one()
    for name, value in zip(SUMMED, totals[:len(SUMMED)]):
        setattr(figures, name, int(value))
    figures.loan_minutes_max, figures.late_minutes_max = int(totals[-2]), int(totals[-1])

    histogram: dict[int, int] = defaultdict(int)
    for (text,) in session.execute(select(DailyUsage.loan_histogram)
                                   .where(*where, DailyUsage.loans > 0)):
        for bucket, count in json.loads(text or "{}").items():
            histogram[int(bucket)] += count
    figures.median_loan_minutes = median_from_histogram(histogram)
    if figures.median_loan_minutes is not None and figures.loan_minutes_max:
        # The histogram knows quarter hours, the longest loan its minute: the middle of a
        # quarter hour must not claim more than the longest (issue 32).
        figures.median_loan_minutes = min(figures.median_loan_minutes, figures.loan_minutes_max)

    by_day = dict(session.execute(select(DailyUsage.day, func.sum(DailyUsage.loans))
                                  .where(*where).group_by(DailyUsage.day)).all())
    figures.per_day = [(period.first + timedelta(days=n),
                        int(by_day.get(period.first + timedelta(days=n), 0)))
                       for n in range(period.days)]
    weeks: dict[str, int] = {}
    for day, loans in figures.per_day:
        year, week, _ = day.isocalendar()
        weeks[f"{year}-W{week:02d}"] = weeks.get(f"{year}-W{week:02d}", 0) + loans
    figures.per_week = list(weeks.items())

    open_minutes = _open_minutes(session, period)
    items = _items(session, period)
    figures.minutes_open = sum(open_minutes.get(site_id, 0) for _, _, site_id in items)
    lent_by_item = dict(session.execute(select(DailyUsage.item_id, func.sum(DailyUsage.minutes_lent))
                                        .where(*where).group_by(DailyUsage.item_id)).all())
    for item_id, label, site_id in items:
        minutes = int(lent_by_item.get(item_id, 0))
        possible = open_minutes.get(site_id, 0)
        figures.per_item.append((label, minutes, minutes / possible if possible else 0.0))
    # Every compartment, the ones nobody used too: showing those is the point of the chart
    # (they were missing: only compartments with loans had rows, issue 32).
    lent = {(cabinet_id, number): int(minutes) for cabinet_id, number, minutes in session.execute(
        select(DailyUsage.cabinet_id, DailyUsage.compartment, func.sum(DailyUsage.minutes_lent))
        .where(*where).group_by(DailyUsage.cabinet_id, DailyUsage.compartment))}
    compartments = (select(Cabinet.id, Cabinet.name, Cabinet.site_id, Compartment.number,
                           Cabinet.retired_at)
                    .join(Compartment, Compartment.cabinet_id == Cabinet.id)
                    .order_by(Cabinet.name, Compartment.number))
    if period.site_id:
        compartments = compartments.where(Cabinet.site_id == period.site_id)
    holds = _holds_type(session, period.item_type_id)
    for cabinet_id, cabinet, site_id, number, retired_at in session.execute(compartments):
        minutes = lent.get((cabinet_id, number))
        if minutes is None and (retired_at is not None or (holds is not None and
                                                           (cabinet_id, number) not in holds)):
            continue  # unused and not in use: a retired cabinet, or another item type's
        possible = open_minutes.get(site_id, 0)
        figures.per_compartment.append((f"{cabinet}, {number}", minutes or 0,
                                        (minutes or 0) / possible if possible else 0.0))

    events_where = _where(DailyEvents, period)
    figures.refused = [(reason or "?", int(count)) for reason, count in session.execute(
        select(DailyEvents.reason, func.sum(DailyEvents.count))
        .where(*events_where, DailyEvents.kind == "scan_refused")
        .group_by(DailyEvents.reason).order_by(func.sum(DailyEvents.count).desc()))]
    figures.events_per_cabinet = [(cabinet, kind, int(count)) for cabinet, kind, count in session.execute(
        select(Cabinet.name, DailyEvents.kind, func.sum(DailyEvents.count))
        .join(Cabinet, DailyEvents.cabinet_id == Cabinet.id)
        .where(*events_where, DailyEvents.kind != "scan_refused")
        .group_by(Cabinet.name, DailyEvents.kind).order_by(Cabinet.name, DailyEvents.kind))]
    return figures


def _items(session: Session, period: Period) -> list[tuple[int, str, int]]:
    query = (select(Item.id, Item.label, Cabinet.site_id).join(Item.compartment)
             .join(Cabinet).order_by(Item.label))
    if period.site_id:
        query = query.where(Cabinet.site_id == period.site_id)
    if period.item_type_id:
        query = query.where(Item.item_type_id == period.item_type_id)
    return list(session.execute(query.where(Item.retired_at.is_(None))).all())


def _open_minutes(session: Session, period: Period) -> dict[int, int]:
    """Per site: minutes open in the period."""
    def length(opens, closes) -> int:
        return (datetime.combine(date.min, closes) - datetime.combine(date.min, opens)).seconds // 60
    site_ids = session.scalars(select(Site.id).where(
        *([Site.id == period.site_id] if period.site_id else []))).all()
    minutes: dict[int, int] = {}
    for site_id in site_ids:  # two queries per site, not two per day
        weekly = {weekday: length(opens, closes) for weekday, opens, closes in session.execute(
            select(OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes)
            .where(OpeningHours.site_id == site_id))}
        special = {day: length(opens, closes) if opens else 0 for day, opens, closes in session.execute(
            select(SpecialDay.day, SpecialDay.opens, SpecialDay.closes)
            .where(SpecialDay.site_id == site_id, SpecialDay.day >= period.first,
                   SpecialDay.day <= period.last))}
        minutes[site_id] = sum(
            special.get(day, weekly.get(day.weekday(), 0))
            for day in (period.first + timedelta(days=n) for n in range(period.days)))
    return minutes


def item_types(session: Session) -> list[ItemType]:
    return list(session.scalars(select(ItemType).where(ItemType.retired_at.is_(None)).order_by(ItemType.id)))


def clock_time(minutes: float | None) -> str:
    if minutes is None:
        return "–"
    hours, rest = divmod(int(round(minutes)), 60)
    return f"{hours}:{rest:02d} h"



def percent(share: float | None) -> str:
    """A share as the page's language writes it: "12,5 %" in German, "12.5%" in English."""
    if share is None:
        return "–"
    from babel.numbers import format_percent
    language = page_language()
    # One decimal; German puts a space (that does not break) before the sign.
    pattern = "#,##0.0%" if language == "en" else "#,##0.0\u00a0%"
    return format_percent(share, pattern, locale=language)


def summary_rows(f: Figures) -> list[tuple[str, str]]:
    """The headline figures, as words and values (the page, the report and the CSV)."""
    from flask_babel import gettext as _
    return [
        (_("Bookings"), str(f.bookings)),
        (_("Booked by phone"), f"{f.bookings_phone} ({percent(f.phone_share)})"),
        (_("Booked without e-mail"), f"{f.bookings_without_email} ({percent(f.without_email_share)})"),
        (_("Loans"), str(f.loans)),
        (_("Utilisation (time lent of opening hours)"), percent(f.utilisation)),
        (_("Median loan"), clock_time(f.median_loan_minutes)),
        (_("Longest loan"), clock_time(f.loan_minutes_max or None)),
        (_("Not picked up (no-show rate)"), f"{f.no_shows} ({percent(f.no_show_rate)})"),
        (_("Returned late (overdue rate)"), f"{f.overdue} ({percent(f.overdue_rate)})"),
        (_("Late by, on average / at most"),
         f"{clock_time(f.mean_late_minutes)} / {clock_time(f.late_minutes_max or None)}"),
        (_("Cancellations"), str(f.cancellations)),
        (_("Cancelled ahead of the pickup, on average"), clock_time(f.mean_cancel_lead_minutes)),
        (_("Refused scans"), str(sum(count for _, count in f.refused))),
    ]


def fault_handling(session: Session, period: Period) -> list[tuple[str, int, int, str]]:
    """Per alert kind in the period: how many, how many acknowledged, and the median time
    until staff acknowledged them."""
    from locker_app.models import Controller, ControllerEvent
    from locker_app.services.controllers import ALERTS
    start, end = period.utc_bounds()
    query = (select(ControllerEvent.kind, ControllerEvent.occurred_at, ControllerEvent.acknowledged_at)
             .where(ControllerEvent.kind.in_(list(ALERTS)), ControllerEvent.occurred_at >= start,
                    ControllerEvent.occurred_at < end))
    if period.site_id:
        query = query.join(Controller, ControllerEvent.controller_id == Controller.id) \
            .join(Cabinet, Controller.cabinet_id == Cabinet.id).where(Cabinet.site_id == period.site_id)
    waits: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for kind, occurred, acknowledged in session.execute(query):
        counts[kind] += 1
        if acknowledged is not None:
            waits[kind].append((acknowledged - occurred).total_seconds() / 60)
    result = []
    for kind in sorted(counts):
        times = sorted(waits[kind])
        median = times[len(times) // 2] if times else None
        result.append((kind, counts[kind], len(times), clock_time(median)))
    return result
