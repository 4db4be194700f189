"""Statistics for staff, their CSV exports, and the pilot report for the council."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from locker_app.extensions import db
from locker_app.models import (Cabinet, Compartment, Item, ItemType, Reservation, ReservationEvent,
                               Site, VisitorReport, utcnow)
from locker_app.services import statistics
from locker_app.services.csv_export import to_csv
from locker_app.services.timeutil import query_day, short_day_text, to_local
from locker_app.shared import words
from locker_app.staff import bp


def _period() -> statistics.Period:
    """From the query: from, to (dates), site, type. Default: the last 30 days."""
    today = to_local(utcnow()).date()

    def day(name: str, default: date) -> date:
        return query_day(request.args.get(name), name) or default
    last = day("to", today)
    first = day("from", last - timedelta(days=29))
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=3 * 366))  # at most three years at once

    def number(name: str) -> int | None:
        raw = request.args.get(name, "")
        return int(raw) if raw.isdigit() and len(raw) < 10 else None
    return statistics.Period(first, last, number("site"), number("type"))


def _choices():
    return (db.session.scalars(select(Site).where(Site.retired_at.is_(None)).order_by(Site.name)).all(),
            statistics.item_types(db.session))


def _in_words(figures: statistics.Figures) -> statistics.Figures:
    """The refusal reasons and event kinds in the page's words (the figures keep codes)."""
    figures.refused = [(words.reason(code), count) for code, count in figures.refused]
    figures.events_per_cabinet = [(cabinet, words.observation(kind), count)
                                  for cabinet, kind, count in figures.events_per_cabinet]
    return figures


@bp.get("/statistics")
def statistics_page():
    period = _period()
    figures = _in_words(statistics.compute(db.session, period))
    sites, types = _choices()
    return render_template("staff/statistics.html", f=figures, period=period, sites=sites,
                           types=types, title=_("Statistics"), query=_query(), **_helpers())


def _query() -> dict:
    return {k: v for k, v in request.args.items() if k in ("from", "to", "site", "type") and v}


def _helpers() -> dict:
    from locker_app.services.alerts import alert_title
    return {"statistics_summary": statistics.summary_rows, "percent": statistics.percent,
            "alert_title": alert_title, "now": utcnow,
            "share_text": lambda row: statistics.percent(row[2]),
            "day_label": short_day_text}


@bp.get("/report")
def pilot_report():
    period = _period()
    figures = _in_words(statistics.compute(db.session, period))
    before = _in_words(statistics.compute(db.session, period.before()))
    start, end = period.utc_bounds()
    reports = db.session.execute(
        select(VisitorReport.kind, VisitorReport.message, VisitorReport.created_at)
        .where(VisitorReport.created_at >= start, VisitorReport.created_at < end)
        .order_by(VisitorReport.created_at)).all()
    faults = statistics.fault_handling(db.session, period)
    return render_template("staff/report.html", f=figures, before=before, period=period,
                           reports=reports, faults=faults, title=_("Pilot report"), query=_query(),
                           **_helpers())


@bp.get("/report.pdf")
def pilot_report_pdf():
    """The same page as a PDF, made by WeasyPrint (no browser). Without the Pango library on
    the server there is no PDF; the page says so and the report prints from the browser."""
    try:
        import weasyprint
    except (ImportError, OSError) as error:
        return render_template("error.html", code=503, message=_(
            "This server cannot make PDF files (%(why)s). Please print the report page "
            "instead.", why=str(error)[:80])), 503
    html = pilot_report()
    period = _period()
    pdf = weasyprint.HTML(string=html, base_url=request.url_root, url_fetcher=_static_only,
                          media_type="print").write_pdf(pdf_variant="pdf/ua-1")
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="pilotbericht-{period.first}-{period.last}.pdf"'})


def _static_only(url: str) -> dict:
    """Our own stylesheet from disk and the charts inside the page; nothing is fetched from
    the network."""
    import mimetypes
    from pathlib import Path
    from urllib.parse import urlsplit

    from flask import current_app
    if url.startswith("data:image/svg+xml;"):  # the charts, drawn in this request
        import weasyprint
        return weasyprint.default_url_fetcher(url)
    path = urlsplit(url).path
    if not path.startswith("/static/"):
        raise ValueError(f"not fetched for the PDF: {url}")
    folder = Path(current_app.static_folder).resolve()
    file = (folder / path[len("/static/"):]).resolve()
    if folder not in file.parents or not file.is_file():
        raise ValueError(f"not a static file: {url}")
    return {"string": file.read_bytes(), "mime_type": mimetypes.guess_type(file.name)[0]}


TABLES = {
    "loans-per-day": (lambda f: [_("Day"), _("Loans")], lambda f: f.per_day),
    "loans-per-week": (lambda f: [_("Week"), _("Loans")], lambda f: f.per_week),
    "utilisation-per-item": (lambda f: [_("Item"), _("Minutes lent"), _("Share of opening hours")],
                             lambda f: f.per_item),
    "utilisation-per-compartment": (lambda f: [_("Compartment"), _("Minutes lent"),
                                               _("Share of opening hours")],
                                    lambda f: f.per_compartment),
    # Words for people, the code beside them for machines.
    "refused-scans": (lambda f: [_("Reason"), _("Code"), _("Scans")],
                      lambda f: [(words.reason(code), code, n) for code, n in f.refused]),
    "cabinet-events": (lambda f: [_("Cabinet"), _("Event"), _("Code"), _("Count")],
                       lambda f: [(cabinet, words.observation(kind), kind, n)
                                  for cabinet, kind, n in f.events_per_cabinet]),
    "summary": (lambda f: [_("Figure"), _("Value")], lambda f: statistics.summary_rows(f)),
}


@bp.get("/statistics/<name>.csv")
def statistics_csv(name: str):
    if name == "reservations":
        return _reservations_csv()
    if name not in TABLES:
        abort(404)
    figures = statistics.compute(db.session, _period())
    header, rows = TABLES[name]
    period = figures.period
    return Response(to_csv(header(figures), rows(figures)), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="{name}-{period.first}-{period.last}.csv"'})


def _reservations_csv():
    """Every reservation of the period with its personal data: administrators only. Erased
    data stays erased (the columns are empty)."""
    if not current_user.is_admin:
        abort(403)
    period = _period()
    from_at, until_at = period.utc_bounds()
    # One statement for the whole list (it read the booking event and the item, compartment
    # and cabinet of each row with queries of their own, and filtered in Python).
    query = (select(Reservation.id, Reservation.start_at, Reservation.end_at, ItemType.name_de,
                    Item.label, Compartment.number, Reservation.state, ReservationEvent.actor,
                    Reservation.visitor_name, Reservation.email, Reservation.phone)
             .join(Item, Reservation.item_id == Item.id)
             .join(ItemType, Item.item_type_id == ItemType.id)
             .join(Compartment, Reservation.compartment_id == Compartment.id)
             .join(Cabinet, Compartment.cabinet_id == Cabinet.id)
             .outerjoin(ReservationEvent, (ReservationEvent.reservation_id == Reservation.id)
                        & ReservationEvent.from_state.is_(None))
             .where(Reservation.start_at >= from_at, Reservation.start_at < until_at)
             .order_by(Reservation.start_at))
    if period.item_type_id:
        query = query.where(Item.item_type_id == period.item_type_id)
    if period.site_id:
        query = query.where(Cabinet.site_id == period.site_id)
    rows = [[rid, to_local(start).replace(tzinfo=None), to_local(end).replace(tzinfo=None), kind,
             label, number, words.state(state), state,
             _("on the phone") if actor == "staff" else _("online"), name, email, phone]
            for rid, start, end, kind, label, number, state, actor, name, email, phone
            in db.session.execute(query)]
    from locker_app.staff.common import audit
    audit("export_reservations", f"{period.first}..{period.last}", {"rows": len(rows)})
    db.session.commit()
    header = [_("Number"), _("Pickup"), _("Return by"), _("Item type"), _("Item"), _("Compartment"),
              _("State"), _("State (code)"), _("Booked"), _("Name"), _("E-mail"), _("Phone")]
    return Response(to_csv(header, rows), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="reservations-{period.first}-{period.last}.csv"'})

