"""Daily work: today per cabinet, reservations (find, look at, cancel, extend, mark
returned), bookings for callers, alerts."""
from __future__ import annotations

from datetime import date

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from flask_login import current_user, login_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from locker_app.auth.forms import PasswordForm
from locker_app.shared.fields import chosen_window
from locker_app.shared.reservation_page import reservation_page_values
from locker_app.extensions import db
from locker_app.models import ControllerEvent, ItemType, Reservation, ReservationState, Site, utcnow
from locker_app.services import alerts as alert_service
from locker_app.services import numeric_codes, reports, staff_accounts, staff_desk
from locker_app.services.errors import DomainError
from locker_app.services.timeutil import local_to_utc, query_day, to_local
from locker_app.staff import bp
from locker_app.staff.common import audit, get_or_404, show_error, who
from locker_app.staff.forms import (options, AcknowledgeForm, ExtendForm, OpenForm, PhoneBookingForm,
                                    ReasonForm)


@bp.get("/")
def today():
    days = staff_desk.today_by_cabinet(db.session)
    open_alerts = len(alert_service.inbox(db.session))
    return render_template("staff/today.html", days=days, open_alerts=open_alerts,
                           open_reports=reports.count_open(db.session), to_local=to_local)


def _parse_day(text: str | None) -> date | None:
    return query_day(text)  # a day that cannot be read is a 400 with a sentence


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 10 else None


@bp.get("/reservations")
def reservations():
    args = request.args
    filters = staff_desk.Filters(
        site_id=_int(args.get("site")), item_type_id=_int(args.get("type")),
        state=args.get("state") or None, day_from=_parse_day(args.get("from")),
        day_to=_parse_day(args.get("to")), query=(args.get("q") or "")[:100])
    page = _int(args.get("page")) or 1
    rows, more = staff_desk.search(db.session, filters, page)
    return render_template(
        "staff/reservations.html", rows=rows, more=more, page=page, filters=filters,
        sites=db.session.scalars(select(Site).order_by(Site.name)).all(),
        item_types=db.session.scalars(select(ItemType).order_by(ItemType.id)).all(),
        states=ReservationState.ALL, to_local=to_local, args=args)


def _reservation_page(reservation: Reservation, status: int = 200, **forms):
    history = staff_desk.history(db.session, reservation)
    defaults = {"cancel_form": ReasonForm(prefix="cancel"), "extend_form": ExtendForm(prefix="extend"),
                "return_form": ReasonForm(prefix="return"), "open_form": OpenForm(prefix="open")}
    defaults.update(forms)
    if request.method == "GET" or "extend_form" not in forms:
        end = to_local(reservation.end_at)
        defaults["extend_form"].end_date.data = defaults["extend_form"].end_date.data or end.date()
        defaults["extend_form"].end.data = defaults["extend_form"].end.data or end.time()
    defaults["open_form"].compartment.data = reservation.compartment.number
    return render_template(
        "staff/reservation.html", r=reservation, history=history, to_local=to_local,
        numeric_code=numeric_codes.grouped(reservation.numeric_code), **defaults), status


@bp.get("/reservations/<int:reservation_id>")
def reservation(reservation_id: int):
    return _reservation_page(get_or_404(Reservation, reservation_id))


def _act(reservation_id: int, form, slot: str, act, action: str, message):
    """What every reservation action shares: check the form, act through a service, log
    it, say what happened; or show the page again with the refusal next to its field."""
    r = get_or_404(Reservation, reservation_id)
    if form.validate_on_submit():
        try:
            detail = act(r)
        except DomainError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            audit(action, f"reservation {r.id}", detail)
            db.session.commit()
            flash(message(r), "info")
            return redirect(url_for("staff.reservation", reservation_id=r.id))
    return _reservation_page(r, 422, **{slot: form})


@bp.post("/reservations/<int:reservation_id>/cancel")
def cancel(reservation_id: int):
    form = ReasonForm(prefix="cancel")

    def act(r):
        staff_desk.cancel_by_staff(db.session, r, form.reason.data, who())
        return {"reason": form.reason.data}
    return _act(reservation_id, form, "cancel_form", act, "reservation_cancelled",
                lambda r: _("The reservation is cancelled.") + (
                    " " + _("The visitor gets a mail.") if r.email else ""))


@bp.post("/reservations/<int:reservation_id>/extend")
def extend(reservation_id: int):
    form = ExtendForm(prefix="extend")

    def act(r):
        new_end = local_to_utc(form.end_date.data, form.end.data, field="end",
                               day_field="end_date")
        old_end = r.end_at
        staff_desk.extend(db.session, r, new_end, who())
        return {"from": old_end.isoformat(), "to": new_end.isoformat()}
    return _act(reservation_id, form, "extend_form", act, "reservation_extended",
                lambda r: _("The loan is extended."))


@bp.post("/reservations/<int:reservation_id>/returned")
def mark_returned(reservation_id: int):
    form = ReasonForm(prefix="return")

    def act(r):
        staff_desk.mark_returned(db.session, r, form.reason.data, who())
        return {"reason": form.reason.data}
    return _act(reservation_id, form, "return_form", act, "reservation_marked_returned",
                lambda r: _("Marked as returned."))


@bp.get("/reservations/<int:reservation_id>/ticket")
def ticket(reservation_id: int):
    """A ticket to print for a caller who comes to the office: QR and numeric code."""
    r = get_or_404(Reservation, reservation_id)
    return render_template("staff/ticket.html", r=r, **reservation_page_values(r))


@bp.route("/book", methods=["GET", "POST"])
def book_for_caller():
    form = PhoneBookingForm()
    sites = db.session.scalars(select(Site).where(Site.retired_at.is_(None)).order_by(Site.name)).all()
    types = db.session.scalars(select(ItemType).where(ItemType.retired_at.is_(None))
                               .order_by(ItemType.id)).all()
    form.site.choices = options([(s.id, s.name) for s in sites])
    locale = str(get_locale() or "de")
    form.item_type.choices = options([(t.id, t.name(locale)) for t in types])
    if request.method == "GET":
        now = to_local(utcnow())
        form.date.data = form.end_date.data = now.date()
    status = 200
    if form.validate_on_submit():
        try:
            site, item_type = db.session.get(Site, form.site.data), db.session.get(ItemType, form.item_type.data)
            start, end = chosen_window(form)
            r = staff_desk.book_for_caller(
                db.session, site=site, item_type=item_type, start=start, end=end,
                name=form.name.data, phone=form.phone.data, email=form.email.data, who=who(),
                grace_minutes=current_app.config["PICKUP_GRACE_MINUTES"])
        except DomainError as error:
            db.session.rollback()
            show_error(form, error)
            status = 409 if isinstance(error, staff_desk.booking.SoldOut) else 422
        else:
            audit("booked_for_caller", f"reservation {r.id}")
            db.session.commit()
            flash(_("Booked. Read the number out to the caller: %(code)s",
                    code=numeric_codes.grouped(r.numeric_code)), "info")
            return redirect(url_for("staff.reservation", reservation_id=r.id))
    elif request.method == "POST":
        status = 422
    return render_template("staff/form.html", form=form, title=_("Book for a caller"),
                           intro=_("The same rules as online. The caller gets an 8-digit number "
                                   "for the keypad; print the ticket if they pick it up at the "
                                   "office.")), status


@bp.get("/alerts")
def alerts():
    acknowledged = request.args.get("show") == "acknowledged"
    found = alert_service.inbox(db.session, acknowledged=acknowledged,
                                site_id=_int(request.args.get("site")))
    return render_template("staff/alerts.html", alerts=found, acknowledged=acknowledged,
                           form=AcknowledgeForm(), title_of=alert_service.alert_title,
                           to_local=to_local)


@bp.post("/alerts/<int:event_id>/acknowledge")
def acknowledge(event_id: int):
    event = get_or_404(ControllerEvent, event_id)
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        flash(_("The note is too long (at most 500 characters)."), "error")
    elif alert_service.acknowledge(db.session, event, who(), form.note.data):
        audit("alert_acknowledged", f"alert {event.id} ({event.kind})", {"note": form.note.data})
        db.session.commit()
        flash(_("Alert acknowledged."), "info")
    else:
        flash(_("Someone else acknowledged this alert already."), "info")
    return redirect(url_for("staff.alerts"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        if not check_password_hash(current_user.password_hash, form.current.data):
            form.current.errors = [_("The current password is not right.")]
            status = 422
        else:
            try:
                current_user.password_hash = staff_accounts.hash_password(form.password.data)
            except DomainError as error:
                form.password.errors = [str(error)]
                status = 422
            else:
                # Other sessions end; this one goes on.
                staff_accounts.end_sessions(db.session, current_user, keep=g.staff_session)
                audit("password_changed", current_user.username)
                db.session.commit()
                login_user(current_user._get_current_object())
                flash(_("Your password is changed. Other sessions are logged out."), "info")
                return redirect(url_for("staff.today"))
    elif request.method == "POST":
        status = 422
    return render_template("staff/form.html", form=form, title=_("Change password")), status

