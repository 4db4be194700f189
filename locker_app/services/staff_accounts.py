"""Staff accounts: passwords (scrypt), login limits per account and address that hold
across all web processes (counted in the database), sessions kept on the server, the
audit log."""
from __future__ import annotations

import hashlib
import json
import math
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from locker_app.models import AuditEntry, LoginAttempt, StaffRole, StaffSession, StaffUser, utcnow
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


def _failures(session: Session, since: datetime, *conditions) -> tuple[int, datetime | None]:
    """How many failed logins match ``conditions`` since ``since``, and the last one's time."""
    count, last = session.execute(select(func.count(), func.max(LoginAttempt.at)).where(
        *conditions, LoginAttempt.at >= since)).one()
    return count or 0, last


def pause_after(failures: int) -> int:
    """Seconds one address waits before its next try for an account after ``failures``
    failed ones: 0, then 1, 2, 4, 8 ... (a typing mistake costs nothing)."""
    return 0 if failures < 2 else 2 ** (failures - 2)


def log_in(session: Session, username: str, password: str, address: str, *, config,
           now: datetime | None = None) -> StaffUser:
    """The account, or LoginRefused with a sentence that does not tell whether the name
    exists.

    Failures are counted per account and address together: while there are
    LOGIN_MAX_FAILURES_PER_ACCOUNT of them within the window, that address may not try
    that account, and before that each try waits a growing pause (``pause_after``). So
    guessing one account from one address is as slow as ever, while a stranger's failures
    never lock the account's owner out at another address. An address that fails LOGIN_MAX_FAILURES_PER_ADDRESS times on any
    accounts is refused altogether for the window."""
    now = now or utcnow()
    username = normalise_username(username)
    address = (address or "unknown")[:64]
    _refuse_while_throttled(session, username, address, config, now)
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not valid or user is None or not user.active:
        _count_failure(session, username, address, now)
        if valid and user is not None and not user.active:
            raise LoginRefused(_l("This account is disabled. Please ask an administrator."))
        raise LoginRefused(_l("User name or password is not right."))
    _forget_failures_of(session, username, address)
    user.last_login_at = now
    session.commit()
    return user


def check_second_factor(session: Session, user: StaffUser, code: str | None, address: str,
                        *, config, now: datetime | None = None) -> None:
    """The code of a login's second step; LoginRefused when it is wrong, counted as a
    failed login of the account from this address (the same limits and pauses)."""
    from locker_app.services import two_factor
    now = now or utcnow()
    address = (address or "unknown")[:64]
    _refuse_while_throttled(session, user.username, address, config, now)
    if not two_factor.check_code(user, code, now):
        _count_failure(session, user.username, address, now)
        raise LoginRefused(_l("This code is not right, or was used already. Please enter the "
                              "code your app shows now."))
    _forget_failures_of(session, user.username, address)
    session.commit()


def _refuse_while_throttled(session: Session, username: str, address: str, config,
                            now: datetime) -> None:
    """LoginRefused while this address may not try this account (see ``log_in``)."""
    minutes = config["LOGIN_FAILURE_WINDOW_MINUTES"]
    since = now - timedelta(minutes=minutes)
    pair, last = _failures(session, since, LoginAttempt.username == username,
                           LoginAttempt.address == address)
    by_address, _ = _failures(session, since, LoginAttempt.address == address)
    if pair >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] \
            or by_address >= config["LOGIN_MAX_FAILURES_PER_ADDRESS"]:
        raise LoginRefused(_l("Too many failed attempts. Please wait %(minutes)d minutes, or "
                              "ask an administrator to reset the password.", minutes=minutes))
    wait = pause_after(pair) - (now - last).total_seconds() if last else 0
    if wait > 0:
        raise LoginRefused(_l("Please wait %(seconds)d seconds before the next try.",
                              seconds=math.ceil(wait)))


def _count_failure(session: Session, username: str, address: str, now: datetime) -> None:
    """A wrong password or code, committed at once (it counts even if the caller rolls
    back); failures older than a day are dropped on the way."""
    session.add(LoginAttempt(username=username, address=address, at=now))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))
    session.commit()


def _forget_failures_of(session: Session, username: str, address: str) -> None:
    """Logged in from this address: its failures for the account count no more."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == username,
                                               LoginAttempt.address == address))


def forget_failures(session: Session, user: StaffUser) -> None:
    """An administrator set a new password: the account's failed logins count no more."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == user.username))


# Sessions on the server ------------------------------------------------------------------
# last_seen_at is written at most this often (the idle limit is minutes long).
SEEN_EVERY = timedelta(seconds=30)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: StaffUser, address: str, user_agent: str,
                  now: datetime | None = None) -> str:
    """A new session of ``user``; returns the token for the cookie (stored only hashed)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_token_hash(token), staff_user_id=user.id,
                             created_at=now, last_seen_at=now, address=(address or "")[:64],
                             user_agent=(user_agent or "")[:200]))
    return token


def current_session(session: Session, user: StaffUser, token: str | None, idle_minutes: int,
                    now: datetime | None = None) -> StaffSession | str | None:
    """The session of ``user`` the cookie's ``token`` names, its last activity noted; None
    when it has ended or never was, "idle" when it ended just now for being idle too long."""
    if not token:
        return None
    now = now or utcnow()
    found = session.scalars(select(StaffSession).where(
        StaffSession.token_hash == _token_hash(token),
        StaffSession.staff_user_id == user.id, StaffSession.ended_at.is_(None))).first()
    if found is None:
        return None
    if now - found.last_seen_at > timedelta(minutes=idle_minutes):
        found.ended_at = now
        session.commit()
        return "idle"
    if now - found.last_seen_at >= SEEN_EVERY:
        found.last_seen_at = now
        session.commit()
    return found


def end_session(session: Session, token: str | None, now: datetime | None = None) -> None:
    if token:
        session.execute(update(StaffSession).where(
            StaffSession.token_hash == _token_hash(token), StaffSession.ended_at.is_(None))
            .values(ended_at=now or utcnow()))


def end_sessions(session: Session, user: StaffUser, keep: StaffSession | None = None,
                 now: datetime | None = None) -> None:
    """End every session of ``user`` (but ``keep``): logging out everywhere, a new password,
    a disabled account. The account's session version rises too, so a cookie from before
    the server kept sessions is refused as well."""
    conditions = [StaffSession.staff_user_id == user.id, StaffSession.ended_at.is_(None)]
    if keep is not None:
        conditions.append(StaffSession.id != keep.id)
    session.execute(update(StaffSession).where(*conditions).values(ended_at=now or utcnow()))
    user.session_version += 1


def end_other_session(session: Session, user: StaffUser, session_id: int,
                      current: StaffSession) -> bool:
    """End one of ``user``'s own sessions other than ``current``; False when there was none."""
    if session_id == current.id:
        return False
    ended = session.execute(update(StaffSession).where(
        StaffSession.id == session_id, StaffSession.staff_user_id == user.id,
        StaffSession.ended_at.is_(None)).values(ended_at=utcnow()))
    return ended.rowcount == 1


def active_sessions(session: Session, user: StaffUser, idle_minutes: int,
                    now: datetime | None = None) -> list[StaffSession]:
    now = now or utcnow()
    return list(session.scalars(select(StaffSession).where(
        StaffSession.staff_user_id == user.id, StaffSession.ended_at.is_(None),
        StaffSession.last_seen_at >= now - timedelta(minutes=idle_minutes))
        .order_by(StaffSession.last_seen_at.desc())))


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
