"""The anonymous daily usage for the town's open-data platform: per site, item type and day
the loans, hours lent and no-shows, from the daily aggregates. No names, addresses, codes or
single reservations; days with fewer than ``MIN_LOANS`` loans are merged with their
neighbours so no row points at one person."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from locker_app.models import DailyUsage, ItemType, Site, utcnow
from locker_app.services.timeutil import to_local

MIN_LOANS = 3
FIELDS = ["site", "item_type", "from", "to", "days", "loans", "hours_lent", "no_shows"]


def default_period() -> tuple[date, date]:
    """The last 365 days up to yesterday (today is not over yet)."""
    yesterday = to_local(utcnow()).date() - timedelta(days=1)
    return yesterday - timedelta(days=364), yesterday


def rows(session: Session, first: date, last: date) -> list[dict]:
    daily = session.execute(
        select(Site.slug, ItemType.code, DailyUsage.day, func.sum(DailyUsage.loans),
               func.sum(DailyUsage.minutes_lent), func.sum(DailyUsage.no_shows))
        .join(Site, DailyUsage.site_id == Site.id).join(ItemType, DailyUsage.item_type_id == ItemType.id)
        .where(DailyUsage.day >= first, DailyUsage.day <= last)
        .group_by(Site.slug, ItemType.code, DailyUsage.day)).all()
    by_series: dict[tuple[str, str], dict[date, tuple[int, int, int]]] = {}
    for site, kind, day, loans, minutes, no_shows in daily:
        by_series.setdefault((site, kind), {})[day] = (int(loans), int(minutes), int(no_shows))
    result = []
    for (site, kind), days in sorted(by_series.items()):
        buckets: list[dict] = []
        current = None
        day = first
        while day <= last:
            loans, minutes, no_shows = days.get(day, (0, 0, 0))
            if current is None:
                current = {"site": site, "item_type": kind, "from": day, "to": day, "loans": 0,
                           "minutes": 0, "no_shows": 0}
            current["to"] = day
            current["loans"] += loans
            current["minutes"] += minutes
            current["no_shows"] += no_shows
            if current["loans"] >= MIN_LOANS:
                buckets.append(current)
                current = None
            day += timedelta(days=1)
        if current is not None:  # the tail with too few loans joins the bucket before it
            if buckets:
                last_bucket = buckets[-1]
                last_bucket["to"] = current["to"]
                for key in ("loans", "minutes", "no_shows"):
                    last_bucket[key] += current[key]
            else:
                buckets.append(current)  # the whole period has too few: counts withheld
        for bucket in buckets:
            few = bucket["loans"] < MIN_LOANS
            result.append({
                "site": site, "item_type": kind, "from": bucket["from"].isoformat(),
                "to": bucket["to"].isoformat(), "days": (bucket["to"] - bucket["from"]).days + 1,
                "loans": None if few else bucket["loans"],
                "hours_lent": None if few else round(bucket["minutes"] / 60, 1),
                "no_shows": None if few else bucket["no_shows"]})
    return result


def licence() -> dict:
    config = current_app.config
    return {"id": config["OPEN_DATA_LICENCE"], "url": config["OPEN_DATA_LICENCE_URL"],
            "attribution": config.get("OPERATOR_NAME") or "Stadtpark-Schließfach"}


def as_json(session: Session, first: date, last: date) -> str:
    return json.dumps({
        "title": "Stadtpark-Schließfach: Ausleihen pro Tag",
        "licence": licence(), "generated": utcnow().isoformat(timespec="seconds") + "Z",
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "note": f"Days with fewer than {MIN_LOANS} loans are merged with their neighbours "
                "(from..to); a row whose counts are null had too few loans to publish.",
        "fields": FIELDS, "rows": rows(session, first, last)}, ensure_ascii=False, indent=1)


def as_csv(session: Session, first: date, last: date) -> str:
    """Plain RFC 4180 CSV (commas, ISO dates, decimal points) for machines; the licence in
    its own column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS + ["licence"])
    for row in rows(session, first, last):
        writer.writerow([("" if row[name] is None else row[name]) for name in FIELDS]
                        + [licence()["id"]])
    return buffer.getvalue()
