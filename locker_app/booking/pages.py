"""The pages a German town's service must have (Impressum, Datenschutzerklärung, Erklärung
zur Barrierefreiheit with its feedback form, Leichte Sprache), and the defect report of a
reservation. Linked from the footer of every page; all work without JavaScript."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from locker_app.booking import bp
from locker_app.booking.forms import DefectForm, FeedbackForm
from locker_app.booking.routes import _locale, _reservation_or_404
from locker_app.shared.reservation_page import reservation_page_values
from locker_app.extensions import db
from locker_app.models import Site
from locker_app.limits import report_limit
from locker_app.services import reports
from locker_app.services.errors import DomainError

OPERATOR_SETTINGS = ("OPERATOR_NAME", "OPERATOR_ADDRESS", "OPERATOR_REPRESENTATIVE",
                     "OPERATOR_EMAIL", "OPERATOR_PHONE", "PRIVACY_OFFICER",
                     "SUPERVISORY_AUTHORITY", "ACCESSIBILITY_ENFORCEMENT")


def operator() -> dict:
    """The operator's details from the settings; a missing one is None (shown as such)."""
    config = current_app.config
    values = {name.lower(): (config.get(name) or "").strip() or None for name in OPERATOR_SETTINGS}
    values["operator_address_lines"] = [line.strip() for line in
                                        (values["operator_address"] or "").split(";") if line.strip()]
    values["erase_after_days"] = config["ERASE_AFTER_DAYS"]
    return values


@bp.get("/impressum")
def imprint():
    return render_template("pages/imprint.html", locale=_locale(), **operator())


@bp.get("/datenschutz")
def privacy():
    return render_template("pages/privacy.html", locale=_locale(), **operator())


@bp.route("/barrierefreiheit", methods=["GET", "POST"])
@report_limit
def accessibility():
    form = FeedbackForm()
    if form.validate_on_submit():
        try:
            reports.leave_feedback(db.session, form.message.data, form.contact.data,
                                   request.args.get("page"))
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "message").errors.append(str(error))
        else:
            # The thanks stand beside the form (?sent=1), where #feedback leads; not a flash
            # as well, which showed the same sentence a second time at the top.
            return redirect(url_for("booking.accessibility", sent=1) + "#feedback")
    status = 400 if form.errors else 200
    return render_template("pages/accessibility.html", locale=_locale(), form=form,
                           sent=request.args.get("sent") == "1", **operator()), status


@bp.get("/leichte-sprache")
def easy_read():
    values = operator()
    hotline = values["operator_phone"] or db.session.scalar(
        select(Site.hotline).where(Site.retired_at.is_(None), Site.hotline.is_not(None))
        .order_by(Site.id).limit(1))
    return render_template("pages/easy_read.html", locale=_locale(), hotline=hotline, **values)


@bp.route("/r/<token>/defect", methods=["GET", "POST"])
@report_limit
def report_defect(token: str):
    """A defect found on the item: it goes to "check needed" and staff see the report."""
    reservation = _reservation_or_404(token)
    if not reports.can_report_defect(reservation):
        flash(_("A defect can be reported while you have the item and for two days after the "
                "return. Please call us."), "error")
        return redirect(url_for("booking.reservation", token=token))
    form = DefectForm()
    if form.validate_on_submit():
        try:
            reports.report_defect(db.session, reservation, form.message.data)
        except DomainError as error:
            db.session.rollback()
            form.message.errors.append(str(error))
        else:
            flash(_("Thank you. The park staff will check the item before it is lent again."),
                  "info")
            return redirect(url_for("booking.reservation", token=token))
    return render_template("booking/defect.html", reservation=reservation, token=token,
                           form=form, locale=_locale(), **reservation_page_values(reservation)), \
        400 if form.errors else 200
