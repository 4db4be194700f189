"""Small helpers the staff views share."""
from __future__ import annotations

from flask import abort, flash
from flask_babel import gettext as _
from flask_login import current_user

from locker_app.extensions import db
from locker_app.services import staff_accounts
from locker_app.shared.fields import show_error  # noqa: F401  (the staff pages import it from here)


def who() -> str:
    return current_user.username


def audit(action: str, target: str | None = None, detail=None) -> None:
    """Record a staff action; committed with the change it belongs to."""
    staff_accounts.audit(db.session, current_user._get_current_object(), action, target, detail)


def get_or_404(model, object_id: int):
    found = db.session.get(model, object_id)
    if found is None:
        abort(404)
    return found


def saved(message: str | None = None) -> None:
    """Tell the staff member the change is stored."""
    flash(message or _("Saved."), "info")
