"""Staff accounts: passwords (scrypt), login limits per account and per address that hold
across all web processes (counted in the database), the audit log."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from locker_app.models import AuditEntry, LoginAttempt, StaffRole, StaffUser, utcnow
from locker_app.services.errors import DomainError

PASSWORD_MIN = 12
# Compared against when the account does not exist, so both cases take as long.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method="scrypt")


def normalise_username(raw: str | None) -> str:
    return (raw or "").strip().lower()[:80]


def hash_password(password: str) -> str:
    if len(password or "") < PASSWORD_MIN:
        raise DomainError(_l("The password needs at least %(num)d characters.", num=PASSWORD_MIN),
                          "password")
    return generate_password_hash(password, method="scrypt")


def create_account(session: Session, username: str, display_name: str, password: str,
                   role: str = StaffRole.STAFF) -> StaffUser:
    username = normalise_username(username)
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise DomainError(_l("A user name uses letters, digits, dots, dashes or underscores."),
                          "username")
    if role not in StaffRole.ALL:
        raise DomainError(_l("Unknown role."), "role")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise DomainError(_l("This user name is taken."), "username")
    user = StaffUser(username=username, display_name=(display_name or username).strip()[:120],
                     password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


class LoginRefused(DomainError):
    pass


def _failures(session: Session, column, value: str, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(LoginAttempt).where(
        column == value, LoginAttempt.at >= since)) or 0


def log_in(session: Session, username: str, password: str, address: str, *, config,
           now: datetime | None = None) -> StaffUser:
    """The account, or LoginRefused with a sentence that does not tell whether the name
    exists. While an account or an address has too many recent failures, even the right
    password is refused (else guessing would simply go on)."""
    now = now or utcnow()
    username = normalise_username(username)
    address = (address or "unknown")[:64]
    since = now - timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"])
    minutes = config["LOGIN_FAILURE_WINDOW_MINUTES"]
    if (_failures(session, LoginAttempt.username, username, since)
            >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
            or _failures(session, LoginAttempt.address, address, since)
            >= config["LOGIN_MAX_FAILURES_PER_ADDRESS"]):
        raise LoginRefused(_l("Too many failed attempts. Please wait %(minutes)d minutes, or "
                              "ask an administrator to reset the password.", minutes=minutes))
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not valid or user is None or not user.active:
        session.add(LoginAttempt(username=username, address=address, at=now))
        # Old failures count for nothing any more.
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))
        session.commit()
        if valid and user is not None and not user.active:
            raise LoginRefused(_l("This account is disabled. Please ask an administrator."))
        raise LoginRefused(_l("User name or password is not right."))
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == username))
    user.last_login_at = now
    session.commit()
    return user


def audit(session: Session, user: StaffUser | None, action: str, target: str | None = None,
          detail: dict | str | None = None, *, actor: str | None = None) -> AuditEntry:
    """One line of the audit log; committed with the caller's change."""
    if isinstance(detail, dict):
        detail = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    entry = AuditEntry(staff_user_id=user.id if user else None,
                       actor=actor or (user.username if user else "system"), action=action,
                       target=(target or None) and target[:200], detail=detail, at=utcnow())
    session.add(entry)
    return entry
