"""Administration, staff accounts and the audit log: accounts made, their role, access,
password, second factor and sessions; who changed what."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from locker_app.auth.forms import ConfirmForm
from locker_app.staff.confirm import asks_once_more
from locker_app.extensions import db
from locker_app.models import AuditEntry, StaffUser
from locker_app.services import staff_accounts
from locker_app.services.errors import DomainError
from locker_app.services.timeutil import to_local
from locker_app.staff import admin_bp as bp
from locker_app.staff.common import audit, get_or_404, saved, show_error
from locker_app.staff.forms import AccountForm, ResetPasswordForm, RoleForm


# Staff accounts ------------------------------------------------------------------------------
@bp.route("/accounts", methods=["GET", "POST"])
def accounts():
    form = AccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = staff_accounts.create_account(db.session, form.username.data,
                                                 form.display_name.data, form.password.data,
                                                 form.role.data)
        except DomainError as error:
            db.session.rollback()
            show_error(form, error)
            status = 422
        else:
            audit("account_created", user.username, {"role": user.role})
            db.session.commit()
            saved(_("Account %(name)s created. Give the first password in person.",
                     name=user.username))
            return redirect(url_for("admin.accounts"))
    elif request.method == "POST":
        status = 422
    users = db.session.scalars(select(StaffUser).order_by(StaffUser.username)).all()
    return render_template("staff/admin/accounts.html", users=users, form=form,
                           to_local=to_local), status


@bp.route("/accounts/<int:user_id>", methods=["GET", "POST"])
def account(user_id: int):
    user = get_or_404(StaffUser, user_id)
    return render_template("staff/admin/account.html", user=user, role_form=RoleForm(role=user.role),
                           password_form=ResetPasswordForm(), confirm=ConfirmForm(),
                           to_local=to_local)


def _last_admin(user: StaffUser) -> bool:
    admins = db.session.scalars(select(StaffUser.id).where(
        StaffUser.role == "admin", StaffUser.active.is_(True))).all()
    return user.is_admin and user.active and admins == [user.id]


@bp.post("/accounts/<int:user_id>/role")
def account_role(user_id: int):
    user = get_or_404(StaffUser, user_id)
    form = RoleForm()
    if form.validate_on_submit():
        if form.role.data != "admin" and _last_admin(user):
            flash(_("This is the last administrator; make someone else administrator first."), "error")
        else:
            user.role = form.role.data
            staff_accounts.end_sessions(db.session, user)  # logged in anew with the new role
            audit("account_role", user.username, {"role": user.role})
            db.session.commit()
            saved()
    return redirect(url_for("admin.account", user_id=user.id))


def _disabling(user_id: int):
    user = get_or_404(StaffUser, user_id)
    return None if not user.active else (
        _("Disable the account %(name)s? They are logged out at once and can no longer log "
          "in.", name=user.username), _("Yes, disable the account"))


@bp.post("/accounts/<int:user_id>/active")
@asks_once_more(_disabling)
def account_active(user_id: int):
    user = get_or_404(StaffUser, user_id)
    if ConfirmForm().validate_on_submit():
        if user.active and (_last_admin(user) or user.id == current_user.id):
            flash(_("You cannot disable your own account or the last administrator."), "error")
        else:
            user.active = not user.active
            staff_accounts.end_sessions(db.session, user)  # disabled: logged out everywhere
            audit("account_enabled" if user.active else "account_disabled", user.username)
            db.session.commit()
            saved()
    return redirect(url_for("admin.account", user_id=user.id))


@bp.post("/accounts/<int:user_id>/password")
def account_password(user_id: int):
    user = get_or_404(StaffUser, user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user.password_hash = staff_accounts.hash_password(form.password.data)
        except DomainError as error:
            flash(str(error), "error")
        else:
            staff_accounts.end_sessions(db.session, user)
            staff_accounts.forget_failures(db.session, user)  # the new password gets in
            audit("account_password_reset", user.username)
            db.session.commit()
            saved(_("The password is set; the account is logged out everywhere. Give the new "
                     "password in person."))
    return redirect(url_for("admin.account", user_id=user.id))


@bp.post("/accounts/<int:user_id>/two-factor-off")
def account_two_factor_off(user_id: int):
    """A lost phone: the account logs in with its password alone until its owner sets a
    second factor up again (at once, where LOCKER_REQUIRE_2FA asks it of administrators)."""
    user = get_or_404(StaffUser, user_id)
    if ConfirmForm().validate_on_submit() and user.totp_secret:
        user.totp_secret = user.totp_last_step = None
        staff_accounts.end_sessions(db.session, user)
        audit("account_two_factor_off", user.username)
        db.session.commit()
        saved(_("The second factor of %(name)s is off; the account is logged out everywhere.",
                 name=user.username))
    return redirect(url_for("admin.account", user_id=user.id))


@bp.post("/accounts/<int:user_id>/logout")
def account_logout(user_id: int):
    user = get_or_404(StaffUser, user_id)
    if ConfirmForm().validate_on_submit():
        staff_accounts.end_sessions(db.session, user)
        audit("account_logged_out_everywhere", user.username)
        db.session.commit()
        saved(_("%(name)s is logged out on every device.", name=user.username))
    return redirect(url_for("admin.account", user_id=user.id))


# Audit log ----------------------------------------------------------------------------------
@bp.get("/audit")
def audit_log():
    statement = select(AuditEntry)
    actor = (request.args.get("actor") or "").strip()[:80]
    action = (request.args.get("action") or "").strip()[:60]
    if actor:
        statement = statement.where(AuditEntry.actor == actor.lower())
    if action:
        statement = statement.where(AuditEntry.action.contains(action, autoescape=True))
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and len(page) < 6 else 1
    rows = db.session.scalars(statement.order_by(AuditEntry.id.desc())
                              .offset((max(page, 1) - 1) * 100).limit(101)).all()
    actions = db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).all()
    return render_template("staff/admin/audit.html", rows=rows[:100], more=len(rows) > 100,
                           page=max(page, 1), actor=actor, action=action, actions=actions,
                           to_local=to_local)
