"""What a visitor needs before choosing: the rules of an item type in one sentence, and the
free times of the coming days as text ("heute frei von 14:15 bis 20:00 Uhr"), so nobody
has to guess and be refused."""
from __future__ import annotations

import functools
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import format_date, gettext as _, ngettext
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from locker_app.models import (BookingRule, Item, ItemType, Reservation, Site,
                               active_reservation, time_ranges_meet)
from locker_app.services import rules
from locker_app.services.free_items import usable_items
from locker_app.services.timeutil import clock_text, local_to_utc, to_local



@dataclass(frozen=True)
class DayFree:
    day: date
    today: date
    spans: list[tuple[datetime, datetime]]  # free stretches (aware, the site's time)
    closed: bool

    @property
    def ranges(self) -> list[tuple[time, time]]:
        """The free stretches as wall-clock times."""
        return [(a.time(), b.time()) for a, b in self.spans]

    @property
    def label(self) -> str:
        """"heute", "morgen", "Mittwoch, 25.11." (only the text needs it)."""
        return _label(self.day, self.today)

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
    """The rules in one sentence, in ``locale`` (the reader's, which the translations use)."""
    return _rules_sentence(locale, item_type.plural(locale), rule.max_loan_minutes,
                           rule.max_days_ahead, rule.pickup_window_minutes,
                           rule.early_pickup_minutes)


@functools.lru_cache(maxsize=256)
def _rules_sentence(locale: str, items: str, longest: int, days: int, window: int,
                    early: int) -> str:
    """Made once per language and rule: every booking's answer carries it (3 % of a
    booking's processor time when made anew)."""
    return _("%(items)s can be borrowed for up to %(longest)s, booked up to %(days)s ahead, "
             "and picked up within %(window)s of the start; up to %(early)s earlier when the "
             "compartment is free.", items=items, longest=rules.duration_text(longest),
             days=ngettext("%(num)d day", "%(num)d days", days),
             window=rules.duration_text(window), early=rules.duration_text(early)) \
        if early else \
        _("%(items)s can be borrowed for up to %(longest)s, booked up to %(days)s ahead, "
          "and picked up within %(window)s of the start.", items=items,
          longest=rules.duration_text(longest),
          days=ngettext("%(num)d day", "%(num)d days", days),
          window=rules.duration_text(window))


def _label(day: date, today: date) -> str:
    if day == today:
        return _("Today")
    if day == today + timedelta(days=1):
        return _("Tomorrow")
    return format_date(day, "EEEE, d.M.")


class _Busy:
    """An item's reservations merged into sorted, separate stretches: whether a slot
    touches one is a binary search, not a walk through them all."""

    def __init__(self, windows: list[tuple[datetime, datetime]]) -> None:
        merged: list[list[datetime]] = []
        for start, end in sorted(windows):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [start for start, _ in merged]
        self.ends = [end for _, end in merged]

    def gaps(self, start: datetime, end: datetime):
        """The stretches of [start, end) without a reservation."""
        index = max(0, bisect_left(self.ends, start))
        at = start
        while index < len(self.starts) and self.starts[index] < end:
            if self.starts[index] > at:
                yield at, self.starts[index]
            at = max(at, self.ends[index])
            index += 1
        if at < end:
            yield at, end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The last stretch beginning before ``end`` is the only one that can reach past
        # ``start`` (the stretches are separate and sorted).
        index = bisect_left(self.starts, end) - 1
        return index >= 0 and self.ends[index] > start


QUARTER = timedelta(minutes=15)


def _floor_quarter(moment: datetime) -> datetime:
    return moment - timedelta(minutes=moment.minute % 15, seconds=moment.second,
                              microseconds=moment.microsecond)


def free_ranges(items: list[_Busy], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The slots of [start, end) in which at least one item is free for the whole slot,
    joined into ranges. The slots: from ``start`` to the next quarter hour, then quarter
    hours, the last one ending at ``end``. Each item's free gaps are cut to whole slots and
    the results joined: no walk through the slots one by one."""
    def up(moment: datetime) -> datetime:  # the first slot boundary at or after it
        if moment <= start:
            return start
        floor = _floor_quarter(moment)
        return min(end, floor if floor == moment else floor + QUARTER)

    def down(moment: datetime) -> datetime:  # the last slot boundary at or before it
        if moment >= end:
            return end
        return max(start, _floor_quarter(moment))
    covered = sorted((up(a), down(b)) for busy in items for a, b in busy.gaps(start, end)
                     if up(a) < down(b))
    ranges: list[tuple[datetime, datetime]] = []
    for a, b in covered:
        if ranges and a <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], b))
        else:
            ranges.append((a, b))
    return ranges


def free_days(session: Session, site: Site, item_type: ItemType, now: datetime,
              days: int = 3, first: date | None = None) -> list[DayFree]:
    """Per day from ``first`` (today): the stretches (in 15-minute steps, within the
    opening hours and not in the past) in which at least one item of the type is free."""
    return free_days_by_type(session, site, [item_type.id], now, days, first)[item_type.id]


def free_days_by_type(session: Session, site: Site, type_ids: list[int], now: datetime,
                      days: int = 3, first: date | None = None,
                      items: dict[int, list[int]] | None = None) -> dict[int, list[DayFree]]:
    """``free_days`` for several item types in three statements, two when the caller
    knows the items of each type. Reads only reservations not yet ended: the history does
    not count."""
    today = to_local(now).date()
    first = max(first or today, today)
    if items is None:
        items = {type_id: [] for type_id in type_ids}
        for item_id, type_id in session.execute(
                usable_items(site.id).where(Item.item_type_id.in_(type_ids))
                .with_only_columns(Item.id, Item.item_type_id)):
            items[type_id].append(item_id)
    every_item = [item for type_id in type_ids for item in items[type_id]]
    horizon_start = max(now, local_to_utc(first, time(0)))
    horizon_end = local_to_utc(first + timedelta(days=days), time(0))
    busy: dict[int, list[tuple[datetime, datetime]]] = {item: [] for item in every_item}
    for item_id, start, end in session.execute(_reservations_statement(), {
            "items": every_item, "horizon_start": horizon_start, "horizon_end": horizon_end}):
        busy[item_id].append((start, end))
    taken = {item: _Busy(windows) for item, windows in busy.items()}
    hours_by_day = rules.hours_on_days(session, site, {first + timedelta(days=n) for n in range(days)})
    this_minute = now.replace(second=0, microsecond=0)
    result: dict[int, list[DayFree]] = {type_id: [] for type_id in type_ids}
    for offset in range(days):
        day = first + timedelta(days=offset)
        hours = hours_by_day[day]
        if hours is None:
            for type_id in type_ids:
                result[type_id].append(DayFree(day, today, [], True))
            continue
        # From the opening, or from now (to the minute) when the day has begun; then in
        # quarter hours.
        opens = max(local_to_utc(day, hours.opens), this_minute)
        closes = local_to_utc(day, hours.closes)
        for type_id in type_ids:
            ranges = free_ranges([taken[item] for item in items[type_id]], opens, closes)
            result[type_id].append(DayFree(day, today, [(to_local(a), to_local(b))
                                                        for a, b in ranges], False))
    return result


@functools.cache
def _reservations_statement():
    """Built once: the active reservations of some items within a horizon."""
    return select(Reservation.item_id, Reservation.start_at, Reservation.end_at).where(
        Reservation.item_id.in_(bindparam("items", expanding=True)), active_reservation(),
        Reservation.end_at > bindparam("horizon_start"),
        Reservation.start_at < bindparam("horizon_end"),
        time_ranges_meet(bindparam("horizon_start"), bindparam("horizon_end")))
