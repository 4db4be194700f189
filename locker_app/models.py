"""The schema. Times are naive UTC in the database; pages show Europe/Berlin."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint,
                        func)
from sqlalchemy.orm import Mapped, mapped_column, relationship

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


class Site(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    cabinets: Mapped[list[Cabinet]] = relationship(back_populates="site", order_by="Cabinet.id")


class Cabinet(db.Model):
    """A steel cabinet of compartments behind one controller and one RS-485 bus."""

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    name: Mapped[str] = mapped_column(String(120))
    board_family: Mapped[str] = mapped_column(String(8), default="A")
    serial_port: Mapped[str] = mapped_column(String(200), default="/dev/ttyUSB0")
    baudrate: Mapped[int] = mapped_column(default=9600)
    # Feedback contacts wired the other way round: "closed" reads as 0.
    inverted_polarity: Mapped[bool] = mapped_column(default=False)
    site: Mapped[Site] = relationship(back_populates="cabinets")
    compartments: Mapped[list[Compartment]] = relationship(back_populates="cabinet",
                                                           order_by="Compartment.number")
    __table_args__ = (CheckConstraint("board_family IN ('A', 'B')", name="family"),)


class Compartment(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    number: Mapped[int]  # what is painted on the door
    board_address: Mapped[int]
    lock_number: Mapped[int]
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
    max_loan_minutes: Mapped[int] = mapped_column(default=24 * 60)
    __table_args__ = (CheckConstraint("max_loan_minutes > 0", name="max_loan"),)

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_de


class Item(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    item_type_id: Mapped[int] = mapped_column(ForeignKey("item_type.id"))
    compartment_id: Mapped[int | None] = mapped_column(ForeignKey("compartment.id"), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    in_service: Mapped[bool] = mapped_column(default=True)
    item_type: Mapped[ItemType] = relationship()
    compartment: Mapped[Compartment | None] = relationship(back_populates="item")


class Reservation(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    compartment_id: Mapped[int] = mapped_column(ForeignKey("compartment.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=ReservationState.BOOKED)
    # Personal data: the least that works, erased after the loan (nullable for that).
    visitor_name: Mapped[str | None] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254))
    code: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    item: Mapped[Item] = relationship()
    compartment: Mapped[Compartment] = relationship()
    events: Mapped[list[ReservationEvent]] = relationship(back_populates="reservation",
                                                          order_by="ReservationEvent.id")
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="window"),
        CheckConstraint("state IN ('booked', 'picked_up', 'returned', 'cancelled', 'no_show', "
                        "'overdue')", name="state"),
        Index("ix_reservation_item_window", "item_id", "start_at", "end_at"),
    )


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


class Controller(db.Model):
    """An on-site controller; it authenticates with a bearer token stored hashed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    cabinet_id: Mapped[int] = mapped_column(ForeignKey("cabinet.id"))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_seen_at: Mapped[datetime | None]
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
    __table_args__ = (
        UniqueConstraint("controller_id", "idempotency_key", name="uq_controller_event_key"),
    )
