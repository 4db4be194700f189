"""What a visitor needs before choosing: the rules of an item type in one sentence, and the
free times of the coming days as text ("heute frei von 14:15 bis 20:00 Uhr"), so nobody
has to guess and be refused."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import format_date, gettext as _, ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app.models import BookingRule, Item, ItemType, Reservation, ReservationState, Site
from locker_app.services import rules
from locker_app.services.reservations import _site_items
from locker_app.services.timeutil import clock_text, local_to_utc, to_local



@dataclass(frozen=True)
class DayFree:
    day: date
    label: str  # "heute", "morgen", "Mittwoch, 25.11."
    ranges: list[tuple[time, time]]  # free stretches (local wall clock)
    closed: bool

    @property
    def text(self) -> str:
        if self.closed:
            return _("%(day)s: closed", day=self.label)
        if not self.ranges:
            return _("%(day)s: fully booked", day=self.label)
        spans = [_("%(start)s to %(end)s", start=f"{a:%H:%M}", end=clock_text(b)) for a, b in self.ranges]
        return _("%(day)s: free from %(spans)s", day=self.label,
                 spans=_(" and from ").join(spans))


def rules_sentence(session: Session, site: Site, item_type: ItemType, rule: BookingRule,
                   locale: str) -> str:
    return _("%(items)s can be borrowed for up to %(longest)s, booked up to %(days)s ahead, "
             "and picked up within %(window)s of the start; up to %(early)s earlier when the "
             "compartment is free.", items=item_type.plural(locale),
             longest=rules.duration_text(rule.max_loan_minutes),
             days=ngettext("%(num)d day", "%(num)d days", rule.max_days_ahead),
             window=rules.duration_text(rule.pickup_window_minutes),
             early=rules.duration_text(rule.early_pickup_minutes)) \
        if rule.early_pickup_minutes else \
        _("%(items)s can be borrowed for up to %(longest)s, booked up to %(days)s ahead, "
          "and picked up within %(window)s of the start.", items=item_type.plural(locale),
          longest=rules.duration_text(rule.max_loan_minutes),
          days=ngettext("%(num)d day", "%(num)d days", rule.max_days_ahead),
          window=rules.duration_text(rule.pickup_window_minutes))


def _label(day: date, today: date) -> str:
    if day == today:
        return _("Today")
    if day == today + timedelta(days=1):
        return _("Tomorrow")
    return format_date(day, "EEEE, d.M.")


def free_days(session: Session, site: Site, item_type: ItemType, now: datetime,
              days: int = 3, first: date | None = None) -> list[DayFree]:
    """Per day from ``first`` (today): the stretches (in 15-minute steps, within the
    opening hours and not in the past) in which at least one item of the type is free.
    Reads only reservations not yet ended: the history does not count."""
    today = to_local(now).date()
    first = max(first or today, today)
    items = session.scalars(_site_items(site).where(Item.item_type_id == item_type.id)
                            .with_only_columns(Item.id)).all()
    horizon_start = max(now, local_to_utc(first, time(0)))
    horizon_end = local_to_utc(first + timedelta(days=days), time(0))
    busy: dict[int, list[tuple[datetime, datetime]]] = {item: [] for item in items}
    for item_id, start, end in session.execute(
            select(Reservation.item_id, Reservation.start_at, Reservation.end_at).where(
                Reservation.item_id.in_(items), Reservation.state.in_(ReservationState.ACTIVE),
                Reservation.end_at > horizon_start, Reservation.start_at < horizon_end)):
        busy[item_id].append((start, end))
    hours_by_day = rules.hours_on_days(session, site, {first + timedelta(days=n) for n in range(days)})
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        hours = hours_by_day[day]
        if hours is None:
            result.append(DayFree(day, _label(day, today), [], True))
            continue
        # From the opening, or from now (to the minute) when the day has begun; then in
        # quarter hours.
        slot = max(local_to_utc(day, hours.opens), now.replace(second=0, microsecond=0))
        closes = local_to_utc(day, hours.closes)
        ranges: list[tuple[datetime, datetime]] = []
        while slot < closes:
            slot_end = min(slot + timedelta(minutes=15 - slot.minute % 15), closes)
            if any(all(not (s < slot_end and e > slot) for s, e in busy[item]) for item in items):
                if ranges and ranges[-1][1] == slot:
                    ranges[-1] = (ranges[-1][0], slot_end)
                else:
                    ranges.append((slot, slot_end))
            slot = slot_end
        result.append(DayFree(day, _label(day, today),
                              [(to_local(a).time(), to_local(b).time()) for a, b in ranges], False))
    return result
