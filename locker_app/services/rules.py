"""The booking rules of a site and item type, each refusal a plain sentence."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import format_date, get_locale, lazy_gettext as _l, ngettext
from sqlalchemy import Date, Integer, bindparam, cast, null, select, union_all
from sqlalchemy.orm import Session

from locker_app.models import RULE_DEFAULTS, BookingRule, ItemType, OpeningHours, Site, SpecialDay
from locker_app.services.errors import DomainError
from locker_app.services.timeutil import to_local, wall_minutes


@dataclass(frozen=True)
class Hours:
    opens: time
    closes: time


def _locale() -> str:
    return str(get_locale() or "de")


def duration_text(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return ngettext("%(num)d day", "%(num)d days", days)
    if minutes % 60 == 0:
        return ngettext("%(num)d hour", "%(num)d hours", minutes // 60)
    return ngettext("%(num)d minute", "%(num)d minutes", minutes)


def rule_for(session: Session, site: Site, item_type: ItemType) -> BookingRule:
    return or_defaults(session.scalars(_rule_statement(), {
        "site_id": site.id, "item_type_id": item_type.id}).first())


@functools.cache
def _rule_statement():
    """Built once per process (asked on most pages; building it cost more than running it)."""
    return select(BookingRule).where(BookingRule.site_id == bindparam("site_id"),
                                     BookingRule.item_type_id == bindparam("item_type_id"))


def or_defaults(rule: BookingRule | None) -> BookingRule:
    """The rule, or the column defaults when staff have not set one yet."""
    return rule if rule is not None else BookingRule(**RULE_DEFAULTS)


def rules_for_site(session: Session, site: Site, item_type_ids: set[int]) -> list[BookingRule]:
    """The rules of several item types at a site in one statement, defaults filled in."""
    found = {rule.item_type_id: rule for rule in session.scalars(select(BookingRule).where(
        BookingRule.site_id == site.id, BookingRule.item_type_id.in_(item_type_ids)))} \
        if item_type_ids else {}
    return [found.get(type_id) or BookingRule(**RULE_DEFAULTS, item_type_id=type_id)
            for type_id in item_type_ids]


def hours_on(session: Session, site: Site, day: date) -> Hours | None:
    """Opening hours of the site on a date, or None when it is closed."""
    return hours_on_days(session, site, {day})[day]


@functools.cache
def _hours_statement():
    """Built once: a statement object is compiled and keyed once, not on every booking."""
    return union_all(
        select(SpecialDay.day, cast(null(), Integer), SpecialDay.opens, SpecialDay.closes)
        .where(SpecialDay.site_id == bindparam("site_id"),
               SpecialDay.day.in_(bindparam("days", expanding=True))),
        select(cast(null(), Date), OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes)
        .where(OpeningHours.site_id == bindparam("site_id"),
               OpeningHours.weekday.in_(bindparam("weekdays", expanding=True))))


def hours_on_days(session: Session, site: Site, days: set[date]) -> dict[date, Hours | None]:
    """Opening hours of the site on each of a few dates, in one statement: the special
    days among them and the site's regular week (a handful of rows) together."""
    if not days:
        return {}
    special, regular = {}, {}
    for day, weekday, opens, closes in session.execute(_hours_statement(), {
            "site_id": site.id, "days": sorted(days),
            "weekdays": sorted({day.weekday() for day in days})}):
        if day is not None:
            special[day] = (opens, closes)
        else:
            regular[weekday] = (opens, closes)
    # A special day's hours, even none (closed), else the regular week's.
    return {day: open_hours(*(special.get(day) or regular.get(day.weekday()) or (None, None)))
            for day in days}


def open_hours(opens: time | None, closes: time | None) -> Hours | None:
    """A day's hours; None when it is closed (no opening time)."""
    return Hours(opens, closes) if opens else None


def is_open(session: Session, site: Site, moment_utc: datetime) -> bool:
    local = to_local(moment_utc)
    hours = hours_on(session, site, local.date())
    return hours is not None and hours.opens <= local.time() <= hours.closes


def _check_open(hours_by_day: dict[date, Hours | None], moment_utc: datetime, field: str,
                what) -> None:
    local = to_local(moment_utc)
    hours = hours_by_day[local.date()]
    if hours is None:
        raise DomainError(_l("The locker is closed on %(day)s.",
                             day=format_date(local.date(), "full")), field)
    if not hours.opens <= local.time() <= hours.closes:
        raise DomainError(what(day=format_date(local.date(), "full"),
                               opens=hours.opens.strftime("%H:%M"),
                               closes=hours.closes.strftime("%H:%M")), field)


def check_window(session: Session, site: Site, item_type: ItemType, rule: BookingRule,
                 start: datetime, end: datetime, now: datetime, *, grace_minutes: int,
                 hours: dict[date, Hours | None] | None = None) -> None:
    """Refuse a window (naive UTC) that the rules do not allow, with the field it concerns;
    ``hours`` are the opening hours on its first and last day when read already."""
    if end <= start:
        raise DomainError(_l("The return time must be after the pickup time."), "end")
    if start < now - timedelta(minutes=grace_minutes):
        raise DomainError(_l("The pickup time has already passed."), "start")
    if start < now + timedelta(minutes=rule.lead_minutes) - timedelta(minutes=grace_minutes):
        raise DomainError(_l("Please book at least %(duration)s before the pickup.",
                             duration=duration_text(rule.lead_minutes)), "start")
    if start > now + timedelta(days=rule.max_days_ahead):
        raise DomainError(_l("You can book at most %(days)d days ahead.",
                             days=rule.max_days_ahead), "date")
    length = wall_minutes(start, end)
    if length > rule.max_loan_minutes:
        raise DomainError(_l("%(items)s can be borrowed for at most %(duration)s.",
                             items=item_type.plural(_locale()),
                             duration=duration_text(rule.max_loan_minutes)), "end")
    if length < rule.min_loan_minutes:
        raise DomainError(_l("%(items)s can be borrowed for at least %(duration)s.",
                             items=item_type.plural(_locale()),
                             duration=duration_text(rule.min_loan_minutes)), "end")
    if hours is None:
        hours = hours_on_days(session, site, {to_local(start).date(), to_local(end).date()})
    _check_open(hours, start, "start", lambda **kw: _l(
        "On %(day)s the locker is open from %(opens)s to %(closes)s. Please choose a pickup "
        "time within these hours.", **kw))
    _check_open(hours, end, "end", lambda **kw: _l(
        "On %(day)s the locker is open from %(opens)s to %(closes)s. Please choose a return "
        "time within these hours.", **kw))


def check_person(rule: BookingRule, item_type: ItemType, theirs: list[tuple[datetime, datetime]],
                 start: datetime, end: datetime) -> None:
    """``theirs``: the windows of the person's active reservations of this type and site."""
    if len(theirs) >= rule.max_active_per_person:
        raise DomainError(ngettext(
            "You already have %(num)d active reservation. Please return or cancel it first.",
            "You already have %(num)d active reservations. Please return or cancel one first.",
            len(theirs)))
    gap = timedelta(minutes=rule.chain_gap_minutes)
    chain_start, chain_end = start, end
    changed = True
    while changed:
        changed = False
        for other_start, other_end in theirs:
            if other_start < chain_end + gap and other_end > chain_start - gap:
                if other_start < chain_start or other_end > chain_end:
                    chain_start, chain_end = min(chain_start, other_start), max(chain_end, other_end)
                    changed = True
    if (chain_start, chain_end) != (start, end) and \
            wall_minutes(chain_start, chain_end) > rule.max_loan_minutes:
        raise DomainError(_l(
            "Together with your other reservation this would be a loan of more than "
            "%(duration)s. Please leave at least %(gap)s between your loans.",
            duration=duration_text(rule.max_loan_minutes),
            gap=duration_text(rule.chain_gap_minutes)), "start")
