"""Staff pages: daily work (``bp``, any staff account) and administration (``admin_bp``,
administrators only). Every view needs a login; a session ends after
``STAFF_IDLE_MINUTES`` without a request."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

bp = Blueprint("staff", __name__)
admin_bp = Blueprint("admin", __name__)


# What an administrator without the required second factor may still open.
SECOND_FACTOR_SETUP = {"staff.two_factor_page", "staff.two_factor_on"}


def _require_staff():
    """A login whose session the server still keeps (auth.routes.load_user); one that ended
    for being idle too long is told so. With LOCKER_REQUIRE_2FA an administrator sets up a
    second factor before anything else."""
    if current_user.is_authenticated:
        if (current_app.config["REQUIRE_2FA"] and current_user.is_admin
                and not current_user.totp_secret and request.endpoint not in SECOND_FACTOR_SETUP):
            flash(_("Administrators need a second factor here. Please set it up now."), "info")
            return redirect(url_for("staff.two_factor_page"))
        return None
    if g.get("staff_session_idle"):
        session.clear()
        flash(_("You were logged out after %(minutes)d minutes without activity. Please log in "
                "again.", minutes=current_app.config["STAFF_IDLE_MINUTES"]), "info")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return current_app.login_manager.unauthorized()


@bp.before_request
def staff_only():
    return _require_staff()


@admin_bp.before_request
def admins_only():
    refused = _require_staff()
    if refused is not None:
        return refused
    if not current_user.is_admin:
        abort(403)
    return None


def _no_store(response):
    """Staff pages hold personal data and tokens: never kept in a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


bp.after_request(_no_store)
admin_bp.after_request(_no_store)

from locker_app.staff import admin, admin_accounts, cabinets, desk, own_account, reports, statistics  # noqa: E402,F401  (registers the views)
