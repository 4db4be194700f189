"""Staff pages: daily work (``bp``, any staff account) and administration (``admin_bp``,
administrators only). Every view needs a login; a session ends after
``STAFF_IDLE_MINUTES`` without a request."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from locker_app.models import utcnow

bp = Blueprint("staff", __name__)
admin_bp = Blueprint("admin", __name__)


def _require_staff():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    now = utcnow().timestamp()
    seen = session.get("staff_seen", 0)
    if now - seen > current_app.config["STAFF_IDLE_MINUTES"] * 60:
        logout_user()
        session.clear()
        flash(_("You were logged out after %(minutes)d minutes without activity. Please log in "
                "again.", minutes=current_app.config["STAFF_IDLE_MINUTES"]), "info")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    session["staff_seen"] = now
    return None


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

from locker_app.staff import admin, cabinets, desk, reports, statistics  # noqa: E402,F401  (registers the views)
