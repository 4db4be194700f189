"""What visitors told us: defects reported on items and feedback from the accessibility
statement's form."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from locker_app.extensions import db
from locker_app.models import VisitorReport
from locker_app.services import reports as report_service
from locker_app.services.timeutil import to_local
from locker_app.staff import bp
from locker_app.staff.common import audit, get_or_404, who
from locker_app.staff.forms import HandledForm


@bp.get("/reports")
def reports():
    handled = request.args.get("show") == "handled"
    return render_template("staff/reports.html", reports=report_service.open_reports(
        db.session, handled=handled), handled=handled, form=HandledForm(), to_local=to_local)


@bp.post("/reports/<int:report_id>/handled")
def report_handled(report_id: int):
    report = get_or_404(VisitorReport, report_id)
    if not HandledForm().validate_on_submit():
        flash(_("Please try again."), "error")
    elif report_service.mark_handled(db.session, report, who()):
        audit("report_handled", f"report {report.id} ({report.kind})")
        db.session.commit()
        flash(_("Marked as done."), "info")
    else:
        flash(_("Someone else marked it as done already."), "info")
    return redirect(url_for("staff.reports"))
