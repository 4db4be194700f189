"""The schema. Times are naive UTC in the database; pages show Europe/Berlin."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from sqlalchemy import (Boolean, CheckConstraint, ForeignKey, Index, String, Text,
                        UniqueConstraint, bindparam, func, text)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement

from locker_app.extensions import db


def utcnow() -> datetime:
    """Now as naive UTC, the way the database stores it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ReservationState:
    BOOKED = "booked"
    PICKED_UP = "picked_up"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    OVERDUE = "overdue"
    ALL = (BOOKED, PICKED_UP, RETURNED, CANCELLED, NO_SHOW, OVERDUE)
    # States in which the reservation holds its item.
    ACTIVE = (BOOKED, PICKED_UP, OVERDUE)


# The condition of the partial indexes on active reservations, word for word as
# ``active_reservation()`` writes it into a query: only then may a planner use them.
ACTIVE_STATES_SQL = "state IN ('booked', 'picked_up', 'overdue')"


class Site(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str | None] = mapped_column(String(200))
    # Where in the park the cabinets stand, in words a visitor can follow.
    directions: Mapped[str | None] = mapped_column(String(300))
    hotline: Mapped[str | None] = mapped_column(String(40))
    # New alerts of this site's cabinets are mailed here (the staff on duty).
    on_duty_email: Mapped[str | None] = mapped_column(String(254))
    retired_at: Mapped[datetime | None]
    cabinets: Mapped[list[Cabinet]] = relationship(back_populates="site", order_by="Cabinet.id")


class Cabinet(db.Model):
    """A steel cabinet of compartments behind one controller and one RS-485 bus."""

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    name: Mapped[str] = mapped_column(String(120))
    location: Mapped[str | None] = mapped_column(String(300))
    # The same in English, for the English pages; without it they show the German one.
    location_en: Mapped[str | None] = mapped_column(String(300))
    board_family: Mapped[str] = mapped_column(String(8), default="A")
    serial_port: Mapped[str] = mapped_column(String(200), default="/dev/ttyUSB0")
    baudrate: Mapped[int] = mapped_column(default=9600)
    # Feedback contacts wired the other way round: "closed" reads as 0.
    inverted_polarity: Mapped[bool] = mapped_column(default=False)
    # Salt of the numeric codes' hashes this cabinet's controller gets.
    code_salt: Mapped[str | None] = mapped_column(String(64))
    retired_at: Mapped[datetime | None]
    site: Mapped[Site] = relationship(back_populates="cabinets")
    compartments: Mapped[list[Compartment]] = relationship(back_populates="cabinet",
                                                           order_by="Compartment.number")
    __table_args__ = (CheckConstraint("board_family IN ('A', 'B')", name="family"),)

    def location_in(self, locale: str) -> str | None:
        """Where the cabinet stands, in the page's language when staff wrote it so."""
        return self.location_en if locale == "en" and self.location_en else self.location


class Compartment(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    number: Mapped[int]  # what is painted on the door
    board_address: Mapped[int]
    lock_number: Mapped[int]
    # The board reports whether an item is inside (family B boards with sensors).
    item_sensor: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    cabinet: Mapped[Cabinet] = relationship(back_populates="compartments")
    item: Mapped[Item | None] = relationship(back_populates="compartment")
    __table_args__ = (
        UniqueConstraint("cabinet_id", "number", name="uq_compartment_number"),
        UniqueConstraint("cabinet_id", "board_address", "lock_number", name="uq_compartment_lock"),
        CheckConstraint("number > 0 AND lock_number > 0 AND board_address >= 0",
                        name="positive"),
    )


class ItemType(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # "rollator", "bollerwagen"
    name_de: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str] = mapped_column(String(80))
    plural_de: Mapped[str] = mapped_column(String(80))
    plural_en: Mapped[str] = mapped_column(String(80))
    description_de: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[datetime | None]

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_de

    def plural(self, locale: str) -> str:
        return self.plural_en if locale == "en" else self.plural_de


class Item(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_type.id"))
    compartment_id: Mapped[int | None] = mapped_column(ForeignKey("compartment.id"), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    in_service: Mapped[bool] = mapped_column(default=True)
    # Why it is out of service, for staff.
    service_reason: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)  # condition, repairs
    # A visitor reported a defect: not lent out again until staff have looked at it.
    check_needed: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    retired_at: Mapped[datetime | None]
    item_type: Mapped[ItemType] = relationship()
    compartment: Mapped[Compartment | None] = relationship(back_populates="item")


class Reservation(db.Model):
    """A visitor's hold on one item for [start_at, end_at).

    The database refuses two active reservations of one item with overlapping windows:
    on PostgreSQL an exclusion constraint, on SQLite triggers (see the first migration).
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    compartment_id: Mapped[int] = mapped_column(ForeignKey("compartment.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=ReservationState.BOOKED)
    # Personal data: the least that works, erased after the loan (nullable for that).
    visitor_name: Mapped[str | None] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254))
    # Bookings taken by staff on the phone: a number to call back instead of an address.
    phone: Mapped[str | None] = mapped_column(String(40))
    # Who counts as one person for the limits: the address folded (case, "+tags"), and a
    # keyed hash of the client's network address. Erased with the personal data.
    person_key: Mapped[str | None] = mapped_column(String(254))
    client_key: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The short code for the keypad and the phone, unique among active reservations; its
    # hash (with the cabinet's salt) is what the controller gets.
    numeric_code: Mapped[str | None] = mapped_column(String(8))
    numeric_code_hash: Mapped[str | None] = mapped_column(String(64))
    # The end of the pickup window: not picked up by then is a no-show.
    pickup_until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None]
    # The booking's one-time key (hashed): the form's hidden key or the API's
    # Idempotency-Key. The same key never books twice; a retry is answered with this one.
    booking_key: Mapped[str | None] = mapped_column(String(64))
    # Whether an e-mail address was given: kept for the statistics after the address is erased.
    booked_with_email: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # The language the visitor booked in: mails go out in it.
    locale: Mapped[str] = mapped_column(String(5), default="de")
    item: Mapped[Item] = relationship()
    compartment: Mapped[Compartment] = relationship()
    events: Mapped[list[ReservationEvent]] = relationship(back_populates="reservation",
                                                          order_by="ReservationEvent.id")
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="window"),
        CheckConstraint("pickup_until > start_at AND pickup_until <= end_at", name="pickup_window"),
        CheckConstraint("state IN ('booked', 'picked_up', 'returned', 'cancelled', 'no_show', "
                        "'overdue')", name="state"),
        # The statistics' daily rebuild: reservations ending from a date on, and those out now.
        Index("ix_reservation_end", "end_at"),
        Index("ix_reservation_state", "state"),
        # Is the item free? Past reservations end before the window asked about: (item, end)
        # skips them all.
        Index("ix_reservation_item_end", "item_id", "end_at", "start_at"),
        # The same for the active ones only: a few hundred rows however long the history.
        # PostgreSQL's generic plan of a prepared statement uses it (it cannot know that
        # a window in the future skips the past; with only the other index its plan read
        # every reservation).
        Index("ix_reservation_active_item", "item_id", "end_at", "start_at",
              sqlite_where=text(ACTIVE_STATES_SQL), postgresql_where=text(ACTIVE_STATES_SQL)),
        Index("ix_reservation_person_key", "person_key", "end_at"),
        Index("ix_reservation_client_key", "client_key", "end_at"),
        Index("uq_reservation_booking_key", "booking_key", unique=True),
        Index("uq_reservation_active_numeric_code", "numeric_code", unique=True,
              sqlite_where=text(ACTIVE_STATES_SQL), postgresql_where=text(ACTIVE_STATES_SQL)),
    )


def active_reservation():
    """Reservation.state among the active states, the states written into the statement
    (not bound as parameters), so that the partial indexes above apply: a planner uses
    one only when the query's condition implies the index's, which a parameter cannot."""
    return Reservation.state.in_(bindparam("active_states", list(ReservationState.ACTIVE),
                                           expanding=True, literal_execute=True, unique=True))


def active_by_key():
    """Reservation.state among the active states as values bound to the statement, for the
    reservations of one person or one address: no partial index on active reservations
    applies, so they are read by the key's index (person or client key, end time). With the
    states written in, PostgreSQL's generic plan walked every active reservation through
    the exclusion constraint's index whenever its statistics, taken when few were active,
    put them at one (a booking's check 0.37 ms at first, 2.9 ms after 2,500 bookings)."""
    return Reservation.state.in_(bindparam("active_state_values", list(ReservationState.ACTIVE),
                                           expanding=True, unique=True))


class _RangesMeet(FunctionElement):
    """See ``time_ranges_meet``."""

    type = Boolean()
    inherit_cache = True
    name = "ranges_meet"


@compiles(_RangesMeet)
def _ranges_meet_elsewhere(element, compiler, **kw):
    return "1 = 1"


@compiles(_RangesMeet, "postgresql")
def _ranges_meet_on_postgresql(element, compiler, **kw):
    start_at, end_at, start, end = (compiler.process(clause, **kw)
                                    for clause in element.clauses)
    return (f"tsrange({start_at}, {end_at}) && "
            f"tsrange(LEAST({start}, {end}), GREATEST({start}, {end}), '[]')")


def time_ranges_meet(start, end):
    """On PostgreSQL ``tsrange(start_at, end_at) && tsrange(start, end, '[]')`` (the window
    taken in either order, so that one given backwards reaches the refusal): implied by
    the comparisons a query of reservations in a window makes (start_at < end, end_at >
    start) but a condition the exclusion constraint's index (item, time range) looks up.
    Such a query then reads the reservations that meet the window, never all active ones,
    however the planner guesses their number: its statistics, taken when few were active,
    put them at one, and the free-item check walked all of them (1 ms of a booking after
    2,500 bookings). Elsewhere true (the comparisons decide)."""
    return _RangesMeet(Reservation.start_at, Reservation.end_at, start, end)


class ReservationEvent(db.Model):
    """Every change of a reservation's state, with time, cause and actor. Its id is also
    the cursor of the controllers' incremental sync."""

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservation.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))  # visitor, staff, controller, scheduler
    cause: Mapped[str] = mapped_column(String(200))
    reservation: Mapped[Reservation] = relationship(back_populates="events")
    # The statistics' daily rebuild finds what happened on a day by this.
    __table_args__ = (Index("ix_reservation_event_at", "at"),)


class Controller(db.Model):
    """An on-site controller; it authenticates with a bearer token stored hashed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_seen_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    # What the controller last said of itself (outbox backlog, boards, open doors), as JSON.
    reported_status: Mapped[str | None] = mapped_column(Text)
    # When the message broker said the controller's connection was lost (its last will);
    # cleared when it says "online" again.
    broker_offline_at: Mapped[datetime | None]
    # The number of the controller's broker connection its last presence message named:
    # an older one (replayed by someone on the broker) is not believed.
    presence_seq: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    retired_at: Mapped[datetime | None]
    cabinet: Mapped[Cabinet] = relationship()


class ControllerEvent(db.Model):
    """What a controller observed, stored exactly once per idempotency key."""

    id: Mapped[int] = mapped_column(primary_key=True)
    controller_id: Mapped[int] = mapped_column(ForeignKey("controller.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"))
    compartment: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(Text)
    # Alerts: staff acknowledge them with a note.
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    acknowledge_note: Mapped[str | None] = mapped_column(String(500))
    controller: Mapped[Controller] = relationship()
    __table_args__ = (
        UniqueConstraint("controller_id", "idempotency_key", name="uq_controller_event_key"),
        Index("ix_controller_event_kind", "kind", "id"),
    )


RULE_DEFAULTS = {"min_loan_minutes": 30, "max_loan_minutes": 8 * 60, "max_days_ahead": 30,
                 "lead_minutes": 0, "max_active_per_person": 2, "chain_gap_minutes": 120,
                 "pickup_window_minutes": 60, "early_pickup_minutes": 15}


class BookingRule(db.Model):
    """What visitors may book of one item type at one site."""

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_type.id"))
    site: Mapped[Site] = relationship()
    item_type: Mapped[ItemType] = relationship()
    min_loan_minutes: Mapped[int] = mapped_column(default=30)
    max_loan_minutes: Mapped[int] = mapped_column(default=8 * 60)
    max_days_ahead: Mapped[int] = mapped_column(default=30)
    # How long before the pickup one must book at the latest.
    lead_minutes: Mapped[int] = mapped_column(default=0)
    max_active_per_person: Mapped[int] = mapped_column(default=2)
    # Loans of one person closer together than this count as one loan (no chains).
    chain_gap_minutes: Mapped[int] = mapped_column(default=120)
    pickup_window_minutes: Mapped[int] = mapped_column(default=60)
    # A visitor at the cabinet this long before the pickup time gets the item when it is free
    # (the controller decides: no one else has it out or is due to pick it up now).
    early_pickup_minutes: Mapped[int] = mapped_column(default=15, server_default="15")
    __table_args__ = (
        UniqueConstraint("site_id", "item_type_id", name="uq_booking_rule_site_type"),
        CheckConstraint("min_loan_minutes > 0 AND max_loan_minutes >= min_loan_minutes AND "
                        "max_days_ahead >= 0 AND lead_minutes >= 0 AND max_active_per_person > 0 "
                        "AND chain_gap_minutes >= 0 AND pickup_window_minutes > 0", name="sane"),
    )


class OpeningHours(db.Model):
    """Regular hours of a site on one weekday (0 = Monday). No row: closed that weekday."""

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    site: Mapped[Site] = relationship()
    weekday: Mapped[int]
    opens: Mapped[time]
    closes: Mapped[time]
    __table_args__ = (
        UniqueConstraint("site_id", "weekday", name="uq_opening_hours_day"),
        CheckConstraint("weekday BETWEEN 0 AND 6 AND closes > opens", name="sane"),
    )


class SpecialDay(db.Model):
    """A date with other hours than usual; no hours means closed all day."""

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    day: Mapped[date]
    opens: Mapped[time | None]
    closes: Mapped[time | None]
    note: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        UniqueConstraint("site_id", "day", name="uq_special_day"),
        CheckConstraint("(opens IS NULL AND closes IS NULL) OR (opens IS NOT NULL AND "
                        "closes IS NOT NULL AND closes > opens)", name="sane"),
    )


class OutgoingMail(db.Model):
    """Mail waits here until the mail job sends it: no visitor request waits for SMTP.
    One mail of each kind per reservation, even if two schedulers ran."""

    id: Mapped[int] = mapped_column(primary_key=True)
    # A mail to a visitor about a reservation, or (alerts) to a site's on-duty address.
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"))
    controller_event_id: Mapped[int | None] = mapped_column(ForeignKey("controller_event.id"),
                                                            unique=True)
    to_address: Mapped[str | None] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    __table_args__ = (UniqueConstraint("reservation_id", "kind", name="uq_outgoing_mail_kind"),)


# The schema's second half (staff accounts, remote opens, the audit log, visitor reports,
# the statistics' daily aggregates) lives in locker_app/records.py; importable from here.
from locker_app.records import (AuditEntry, DailyEvents, DailyUsage, LoginAttempt,  # noqa: E402
                                RemoteCommand, StaffRole, StaffSession, StaffUser,
                                VisitorReport)
