"""One's own account: where one is logged in, and the second factor (TOTP)."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from locker_app.auth.forms import CodeForm, ConfirmForm
from locker_app.extensions import db
from locker_app.services import staff_accounts, two_factor
from locker_app.services.timeutil import to_local
from locker_app.staff import bp
from locker_app.staff.common import audit


@bp.get("/sessions")
def sessions():
    """One's own logins that the server keeps: where and since when, and a way to end them."""
    return render_template(
        "staff/sessions.html", title=_("Where you are logged in"), confirm=ConfirmForm(),
        current=g.staff_session, to_local=to_local,
        rows=staff_accounts.active_sessions(db.session, current_user,
                                            current_app.config["STAFF_IDLE_MINUTES"]))


@bp.post("/sessions/<int:session_id>/end")
def end_session(session_id: int):
    if ConfirmForm().validate_on_submit():
        ended = staff_accounts.end_other_session(db.session, current_user, session_id,
                                                 g.staff_session)
        audit("session_ended", current_user.username, {"session": session_id})
        db.session.commit()
        flash(_("That session is ended.") if ended else _("That session had ended already."),
              "info")
    return redirect(url_for("staff.sessions"))


@bp.get("/two-factor")
def two_factor_page():
    """Turn the second factor on (a new secret shown as a QR code, confirmed with a code
    from the app) or off (with a current code)."""
    secret = None
    if not current_user.totp_secret:
        secret = session.get("totp_setup") or two_factor.new_secret()
        session["totp_setup"] = secret  # kept until confirmed, so a reload shows the same
    return _page(secret)


def _page(secret: str | None, form: CodeForm | None = None, status: int = 200):
    required = current_app.config["REQUIRE_2FA"] and current_user.is_admin
    return render_template(
        "staff/two_factor.html", title=_("Second factor"), form=form or CodeForm(),
        secret=secret, grouped=two_factor.grouped(secret) if secret else None,
        qr_svg=two_factor.setup_qr_svg(current_user, secret) if secret else None,
        required=required), status


@bp.post("/two-factor/on")
def two_factor_on():
    secret = session.get("totp_setup")
    form = CodeForm()
    if current_user.totp_secret or not secret:
        return redirect(url_for("staff.two_factor_page"))
    if form.validate_on_submit():
        current_user.totp_secret = secret
        current_user.totp_last_step = None
        if two_factor.check_code(current_user, form.code.data):
            session.pop("totp_setup", None)
            audit("two_factor_on", current_user.username)
            db.session.commit()
            flash(_("The second factor is on. From now on you log in with your password and "
                    "the code from your app."), "info")
            return redirect(url_for("staff.today"))
        db.session.rollback()
        form.code.errors = [_("This code is not right. Please enter the code your app shows "
                              "now.")]
    return _page(secret, form, 422)


@bp.post("/two-factor/off")
def two_factor_off():
    form = CodeForm()
    if not current_user.totp_secret:
        return redirect(url_for("staff.two_factor_page"))
    if current_app.config["REQUIRE_2FA"] and current_user.is_admin:
        flash(_("Administrators must keep a second factor here."), "error")
        return redirect(url_for("staff.two_factor_page"))
    if form.validate_on_submit():
        if two_factor.check_code(current_user, form.code.data):
            current_user.totp_secret = current_user.totp_last_step = None
            audit("two_factor_off", current_user.username)
            db.session.commit()
            flash(_("The second factor is off."), "info")
            return redirect(url_for("staff.two_factor_page"))
        db.session.rollback()
        form.code.errors = [_("This code is not right. Please enter the code your app shows "
                              "now.")]
    return _page(None, form, 422)
