"""UTC in the database, Europe/Berlin on the page."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def to_local(moment_utc: datetime, zone: ZoneInfo = BERLIN) -> datetime:
    if moment_utc.tzinfo is None:
        moment_utc = moment_utc.replace(tzinfo=timezone.utc)
    return moment_utc.astimezone(zone)


def local_to_utc(day: date, clock: time, zone: ZoneInfo = BERLIN) -> datetime:
    """A wall-clock time at the site as naive UTC. A time that does not exist (the hour
    skipped in spring) or exists twice (autumn) is taken as the first reading (fold=0)."""
    local = datetime.combine(day, clock, tzinfo=zone)
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def aware_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
