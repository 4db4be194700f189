"""Items going out of service and coming back."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app.models import (Compartment, Item, Reservation, ReservationEvent,
                               ReservationState as S, utcnow)
from locker_app.services.reservation_log import queue_mail, record_change


def take_out_of_service(session: Session, item: Item, *, actor: str = "staff",
                        reason: str = "out of service", now: datetime | None = None,
                        commit: bool = True) -> dict:
    """Take an item out (repair, theft). Its future bookings move to another free item of
    the same type in the same cabinet (the visitor's code keeps working: the controller
    learns the new compartment with its next sync); where none is free they are cancelled
    and the visitor gets a mail. Returns what happened, for the person who asked."""
    now = now or utcnow()
    item.in_service = False
    session.flush()
    moved, cancelled = [], []
    reservations = session.scalars(select(Reservation).where(
        Reservation.item_id == item.id, Reservation.state == S.BOOKED,
        Reservation.end_at > now).order_by(Reservation.start_at)).all()
    for reservation in reservations:
        replacement = _free_twin(session, item, reservation)
        if replacement is None:
            record_change(session, reservation, S.CANCELLED, actor=actor,
                          cause=f"item {item.label} {reason}; no other free", at=now)
            queue_mail(session, reservation, "cancelled_by_staff")
            cancelled.append(reservation.id)
            continue
        reservation.item = replacement
        reservation.compartment = replacement.compartment  # same cabinet: same code salt
        session.add(ReservationEvent(
            reservation=reservation, from_state=S.BOOKED, to_state=S.BOOKED, actor=actor, at=now,
            cause=f"moved to compartment {replacement.compartment.number}: {item.label} {reason}"))
        session.flush()
        moved.append(reservation.id)
    if commit:
        session.commit()
    return {"moved": moved, "cancelled": cancelled}


def _free_twin(session: Session, item: Item, reservation: Reservation) -> Item | None:
    busy = select(Reservation.item_id).where(
        Reservation.state.in_(S.ACTIVE), Reservation.id != reservation.id,
        Reservation.start_at < reservation.end_at, Reservation.end_at > reservation.start_at)
    return session.scalars(
        select(Item).join(Item.compartment)
        .where(Item.item_type_id == item.item_type_id, Item.in_service.is_(True),
               Item.id != item.id, Compartment.cabinet_id == item.compartment.cabinet_id,
               Item.id.not_in(busy))
        .order_by(Compartment.number).limit(1)).first()


def back_in_service(session: Session, item: Item) -> None:
    item.in_service = True
    session.commit()
