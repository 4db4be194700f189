"""The open-data export at a stable address: /open-data/nutzung.csv and .json.

Public and unauthenticated, so it must not be able to take the site down: a request covers
at most ``MAX_DAYS``, is limited per client address (LOCKER_LIMIT_OPEN_DATA_PER_ADDRESS),
and the same file is made at most once a ``CACHE_SECONDS`` per process (proxies may keep
it an hour: Cache-Control). A period that cannot be read is a 400 with a sentence."""
from __future__ import annotations

import threading
import time
from datetime import date

from flask import Response, current_app, render_template, request
from flask_babel import gettext as _

from locker_app.booking import bp
from locker_app.booking.routes import _locale
from locker_app.extensions import db
from locker_app.limits import limiter
from locker_app.services import open_data
from locker_app.services.errors import DomainError
from locker_app.services.timeutil import query_day

MAX_DAYS = 3 * 366
CACHE_SECONDS = 300.0
_CACHE_SIZE = 32
_cache_lock = threading.Lock()


def _period() -> tuple[date, date]:
    first, last = open_data.default_period()
    first = query_day(request.args.get("from"), "from") or first
    last = query_day(request.args.get("to"), "to") or last
    if first > last:
        raise DomainError(_("The period's first day (from) must not lie after its last "
                            "day (to)."), "from")
    if (last - first).days >= MAX_DAYS:
        raise DomainError(_("Please ask for at most three years at once."), "to")
    return first, last


def _made(kind: str, first: date, last: date) -> str:
    """The file, made anew at most every CACHE_SECONDS (the daily aggregates change once a
    day; a crowd asking for the same file costs one query)."""
    key = (kind, first, last)
    _cache = current_app.extensions.setdefault("open_data_files", {})  # this app's own
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    make = open_data.as_json if kind == "json" else open_data.as_csv
    body = make(db.session, first, last)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(min(_cache, key=lambda k: _cache[k][0]))
        _cache[key] = (now, body)
    return body


@bp.get("/open-data/")
def open_data_page():
    """What the open data are, their licence and the two files (linked from every page)."""
    first, last = open_data.default_period()
    return render_template("pages/open_data.html", locale=_locale(), first=first, last=last,
                           licence=open_data.licence(), min_loans=open_data.MIN_LOANS)


@bp.get("/open-data/nutzung.<kind>")
@limiter.limit(lambda: current_app.config["LIMIT_OPEN_DATA_PER_ADDRESS"], scope="open-data")
def open_data_export(kind: str):
    if kind not in ("json", "csv"):
        return Response("Only nutzung.csv and nutzung.json.\n", status=404, mimetype="text/plain")
    try:
        first, last = _period()
    except DomainError as error:
        return Response(f"{error}\n", status=400, mimetype="text/plain")
    mimetype = "application/json" if kind == "json" else "text/csv"
    return Response(_made(kind, first, last), mimetype=mimetype,
                    headers={"Cache-Control": "public, max-age=3600",
                             "Access-Control-Allow-Origin": "*"})
