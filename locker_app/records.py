"""The schema's second half: staff accounts and their sessions, login attempts, remote opens
staff asked for, the audit log, visitor reports and the statistics' daily aggregates (the first half, the park and its
loans: models.py, which imports these, so both are imported from there)."""
from __future__ import annotations

from datetime import date, datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from locker_app.extensions import db
from locker_app.models import Item, Reservation, utcnow


class RemoteCommand(db.Model):
    """Staff asked a cabinet to open a compartment. The controller carries it out at most
    once and refuses it after ``expires_at``; the state says only what was reported."""

    id: Mapped[int] = mapped_column(primary_key=True)  # also the controllers' cursor
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"), index=True)
    compartment: Mapped[int]
    requested_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # pending -> unlock_sent / refused; pending past expires_at counts as expired
    state: Mapped[str] = mapped_column(String(16), default="pending")
    result_at: Mapped[datetime | None]
    result_detail: Mapped[str | None] = mapped_column(String(200))
    # The id of the staff request that asked for it (locker_app/logs.py): sent along to the
    # controller and back in its events, so the logs follow one action to the door.
    request_id: Mapped[str | None] = mapped_column(String(64))


class StaffRole:
    ADMIN = "admin"  # staff accounts, sites, cabinets, controllers, settings
    STAFF = "staff"  # daily work
    ALL = (ADMIN, STAFF)


class StaffUser(UserMixin, db.Model):
    """A member of the parks staff who logs in to the staff pages."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)  # lower case
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.STAFF)
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the session's login id: raising it logs the account out everywhere.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # The second factor (TOTP, RFC 6238), when the account has one: its shared secret
    # (base32), and the last time step whose code was used (a code is good once).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None]
    __table_args__ = (CheckConstraint("role IN ('admin', 'staff')", name="role"),)

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        """The login id in the session: raising the version ends every session."""
        return f"{self.id}:{self.session_version}"


class StaffSession(db.Model):
    """A staff login, kept on the server: logging out, "log out everywhere", the idle limit
    and disabling an account end it at once, whatever a copy of the cookie says. The cookie
    holds a random token; only its SHA-256 is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (Index("ix_staff_session_user", "staff_user_id", "ended_at"),)


class LoginAttempt(db.Model):
    """Failed logins, counted per account and per address across all web processes."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_login_attempt_username", "username", "at"),
                      Index("ix_login_attempt_address", "address", "at"))


class AuditEntry(db.Model):
    """Who did what, when and why: every staff action and every remote open."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class VisitorReport(db.Model):
    """What a visitor tells staff: a defect found on an item (from the reservation page or
    the cabinet's keypad), or feedback on the site's accessibility and anything else."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "defect" or "feedback"
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"))
    page: Mapped[str | None] = mapped_column(String(200))  # what the feedback is about
    message: Mapped[str] = mapped_column(Text)
    # How to answer (a name, an address or a number), erased with the other personal data.
    contact: Mapped[str | None] = mapped_column(String(254))
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(120))
    item: Mapped[Item | None] = relationship()
    reservation: Mapped[Reservation | None] = relationship()
    __table_args__ = (CheckConstraint("kind IN ('defect', 'feedback')", name="report_kind"),)


class DailyUsage(db.Model):
    """One item's day (the site's local calendar day), kept up to date by the scheduler so
    the statistics never walk all of history. Holds no personal data."""

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_type.id"))
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    compartment: Mapped[int]
    bookings: Mapped[int] = mapped_column(default=0)  # made that day
    bookings_phone: Mapped[int] = mapped_column(default=0)  # of them taken by staff
    bookings_without_email: Mapped[int] = mapped_column(default=0)
    cancellations: Mapped[int] = mapped_column(default=0)  # cancelled that day
    cancel_lead_minutes: Mapped[int] = mapped_column(default=0)  # sum: how early
    loans: Mapped[int] = mapped_column(default=0)  # picked up that day
    loan_minutes: Mapped[int] = mapped_column(default=0)  # sum over loans picked up that day
    loan_minutes_max: Mapped[int] = mapped_column(default=0)
    # Loan lengths in quarter hours, {"4": 3} = three loans of 60-74 minutes: the median
    # of any period comes from these without reading the loans again.
    loan_histogram: Mapped[str] = mapped_column(Text, default="{}")
    minutes_lent: Mapped[int] = mapped_column(default=0)  # of this day, loans across midnight split
    due: Mapped[int] = mapped_column(default=0)  # loans due back that day
    overdue: Mapped[int] = mapped_column(default=0)  # of them back late or not yet
    late_minutes: Mapped[int] = mapped_column(default=0)  # sum over the late ones
    late_minutes_max: Mapped[int] = mapped_column(default=0)
    starts: Mapped[int] = mapped_column(default=0)  # reservations whose pickup was due that day
    no_shows: Mapped[int] = mapped_column(default=0)  # of them never picked up
    __table_args__ = (UniqueConstraint("day", "item_id", name="uq_daily_usage_day_item"),
                      Index("ix_daily_usage_site_day", "site_id", "day"))


class DailyEvents(db.Model):
    """What a cabinet reported on one day, counted by kind (and reason for refused scans)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(40), default="")
    count: Mapped[int] = mapped_column(default=0)
    __table_args__ = (UniqueConstraint("day", "cabinet_id", "kind", "reason",
                                       name="uq_daily_events"),
                      Index("ix_daily_events_site_day", "site_id", "day"))
