"""Staff login and logout. Sessions carry the account's session version, so "log out
everywhere" (and disabling an account) ends every session at its next request."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from locker_app.auth import bp
from locker_app.auth.forms import ConfirmForm, LoginForm
from locker_app.extensions import db, login_manager
from locker_app.models import StaffUser, utcnow
from locker_app.limits import client_address, login_limit
from locker_app.security import safe_next
from locker_app.services import staff_accounts
from locker_app.services.errors import DomainError


@login_manager.user_loader
def load_user(login_id: str) -> StaffUser | None:
    user_id, _, version = login_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
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
            login_user(user)
            session["staff_seen"] = utcnow().timestamp()
            staff_accounts.audit(db.session, user, "login", detail={"address": client_address()})
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("staff.today"))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if form.validate_on_submit() and current_user.is_authenticated:
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
        current_user.session_version += 1
        staff_accounts.audit(db.session, current_user, "logout_everywhere")
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out on every device."), "info")
    return redirect(url_for("auth.login"))
