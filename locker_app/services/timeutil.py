"""UTC in the database, Europe/Berlin on the page."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from locker_app.services.errors import DomainError

BERLIN = ZoneInfo("Europe/Berlin")


def to_local(moment_utc: datetime, zone: ZoneInfo = BERLIN) -> datetime:
    if moment_utc.tzinfo is None:
        moment_utc = moment_utc.replace(tzinfo=timezone.utc)
    return moment_utc.astimezone(zone)


def local_to_utc(day: date, clock: time, zone: ZoneInfo = BERLIN, field: str | None = None) -> datetime:
    """A wall-clock time at the site as naive UTC. The hour skipped in spring does not
    exist and is refused; the hour repeated in autumn is taken as its first occurrence."""
    local = datetime.combine(day, clock.replace(second=0, microsecond=0), tzinfo=zone)
    utc = local.astimezone(timezone.utc)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise DomainError(_l("This time does not exist on that day because the clocks change. "
                             "Please choose another time."), field)
    return utc.replace(tzinfo=None)


def aware_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def wall_minutes(start_utc: datetime, end_utc: datetime, zone: ZoneInfo = BERLIN) -> int:
    """Length of a window as the clocks at the site show it (a day is a day, also on the
    days the clocks change)."""
    start = to_local(start_utc, zone).replace(tzinfo=None)
    end = to_local(end_utc, zone).replace(tzinfo=None)
    return int((end - start).total_seconds() // 60)
