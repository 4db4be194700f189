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


# Times outside these years mean nothing here and overflow on conversion.
FIRST_YEAR, LAST_YEAR = 2000, 2199


def _check_year(year: int, field: str | None) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise DomainError(_l("Please choose a date between the years %(first)d and %(last)d.",
                             first=FIRST_YEAR, last=LAST_YEAR), field)


def query_day(text: str | None, field: str | None = None) -> date | None:
    """A day given in a page's address (``2026-06-10``); None when none was given. One
    that cannot be read, or lies outside the years this service knows, is refused in words
    (every such value gave 500 on some page, issue 30)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DomainError(_l("Please give the date as year-month-day, for example "
                             "2026-06-10."), field) from None
    _check_year(day.year, field)
    if day == date(LAST_YEAR, 12, 31):  # a period ending then would reach into the next year
        _check_year(LAST_YEAR + 1, field)
    return day


def utc_naive(moment: datetime, field: str | None = None) -> datetime:
    """An aware time as naive UTC; a year out of range is refused, not overflowed."""
    _check_year(moment.year, field)
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def local_to_utc(day: date, clock: time, zone: ZoneInfo = BERLIN, field: str | None = None,
                 day_field: str | None = None) -> datetime:
    """A wall-clock time at the site as naive UTC. The hour skipped in spring does not
    exist and is refused; the hour repeated in autumn is taken as its first occurrence.
    ``field``: the form field a refusal concerns; ``day_field``: where a year out of range
    is shown, when the form asks for the day in a field of its own."""
    _check_year(day.year, day_field or field)
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


# Days as each language writes them: "24.11.2026" in German, "24 Nov 2026" in English (the
# English pages showed German dates, issue 32).
_DAY_PATTERNS = {"de": "dd.MM.yyyy", "en": "d MMM yyyy"}
_SHORT_DAY_PATTERNS = {"de": "dd.MM.", "en": "d MMM"}


def page_language() -> str:
    """The page's language, "de" or "en" (German for anything else)."""
    from flask_babel import get_locale
    return "en" if str(get_locale() or "de") == "en" else "de"


def day_text(day) -> str:
    """A day (or the day of a local time) in the page's language."""
    from babel.dates import format_date
    language = page_language()
    return format_date(day, _DAY_PATTERNS[language], locale=language)


def short_day_text(day) -> str:
    """A day without its year, for chart labels: "24.11." or "24 Nov"."""
    from babel.dates import format_date
    language = page_language()
    return format_date(day, _SHORT_DAY_PATTERNS[language], locale=language)


def moment_text(moment) -> str:
    """A local date and time: "24.11.2026 14:05" or "24 Nov 2026, 14:05"."""
    return f"{day_text(moment)} {moment:%H:%M}" if page_language() == "de" else \
        f"{day_text(moment)}, {moment:%H:%M}"


def clock_text(moment) -> str:
    """A time of day as visitors read it: "11:00 Uhr" in German, "11:00" in English."""
    return f"{moment:%H:%M} Uhr" if page_language() == "de" else f"{moment:%H:%M}"
