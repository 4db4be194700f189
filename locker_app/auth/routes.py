"""Staff login and logout. Each login is a session kept on the server (staff_session):
logging out ends it there, so a copy of the cookie is worth nothing afterwards; "log out
everywhere", a new password and disabling an account end all of an account's sessions."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from locker_app.auth import bp
from locker_app.auth.forms import CodeForm, ConfirmForm, LoginForm
from locker_app.extensions import db, login_manager
from locker_app.models import StaffUser, utcnow
from locker_app.limits import client_address, login_limit
from locker_app.security import safe_next
from locker_app.services import staff_accounts
from locker_app.services.errors import DomainError


@login_manager.user_loader
def load_user(login_id: str) -> StaffUser | None:
    """The staff member of this request, when the cookie names one of their sessions that
    the server still keeps (not logged out, not idle too long, the account active)."""
    user_id, _, version = login_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    found = staff_accounts.current_session(db.session, user, session.get("staff_session"),
                                           current_app.config["STAFF_IDLE_MINUTES"])
    if found == "idle":
        g.staff_session_idle = True  # the staff pages say why they ask for a login
        return None
    if found is None:
        return None
    g.staff_session = found
    g.staff_username = user.username  # for the request's log line (locker_app/logs.py)
    return user


@bp.route("/login", methods=["GET", "POST"])
@login_limit
def login():
    if current_user.is_authenticated:
        return redirect(url_for("staff.today"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = staff_accounts.log_in(db.session, form.username.data, form.password.data,
                                         client_address(), config=current_app.config)
        except DomainError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
            status = 401
        else:
            session.clear()  # a fresh session: nothing from before the login carries over
            if user.totp_secret:  # the password was right; the code from the app comes next
                session["second_factor"] = {"user": user.id, "at": utcnow().timestamp(),
                                            "next": safe_next(request.args.get("next"))}
                return redirect(url_for("auth.second_factor"))
            return _logged_in(user, safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


# How long the code may take after the password was accepted.
SECOND_FACTOR_SECONDS = 300


@bp.route("/login/code", methods=["GET", "POST"])
@login_limit
def second_factor():
    """The second step of a login with a second factor: the code from the app. A wrong
    code counts as a failed login (the same limits and pauses as a wrong password)."""
    pending = session.get("second_factor") or {}
    user = db.session.get(StaffUser, pending["user"]) if pending.get("user") else None
    if user is None or not user.totp_secret or \
            utcnow().timestamp() - pending.get("at", 0) > SECOND_FACTOR_SECONDS:
        session.pop("second_factor", None)
        flash(_("Please log in again."), "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            staff_accounts.check_second_factor(db.session, user, form.code.data,
                                               client_address(), config=current_app.config)
        except DomainError as error:
            db.session.rollback()
            form.code.errors = [str(error)]
            status = 401
        else:
            session.pop("second_factor", None)
            return _logged_in(user, pending.get("next"))
    elif request.method == "POST":
        status = 422
    return render_template("auth/code.html", form=form), status


def _logged_in(user: StaffUser, next_page: str | None):
    """Both steps passed: a session on the server, the cookie naming it, the audit line."""
    session["staff_session"] = staff_accounts.start_session(
        db.session, user, client_address(), request.user_agent.string)
    login_user(user)
    staff_accounts.audit(db.session, user, "login", detail={"address": client_address()})
    db.session.commit()
    return redirect(next_page or url_for("staff.today"))


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        staff_accounts.end_session(db.session, session.get("staff_session"))
        staff_accounts.audit(db.session, current_user, "logout")
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    form = ConfirmForm()
    if form.validate_on_submit():
        staff_accounts.end_sessions(db.session, current_user)
        staff_accounts.audit(db.session, current_user, "logout_everywhere")
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out on every device."), "info")
    return redirect(url_for("auth.login"))
