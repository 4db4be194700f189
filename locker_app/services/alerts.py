"""Alerts for staff: what the controllers report (door left open, forced, ...) and what
the server notices itself (a cabinet gone silent). Mailed to the site's on-duty address by
the mail job; acknowledged by staff with a note."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from locker_app.models import Cabinet, Controller, ControllerEvent, OutgoingMail, utcnow
from locker_app.services.controllers import ALERTS, alert_ended, server_key


@dataclass(frozen=True)
class Alert:
    event: ControllerEvent
    controller: Controller
    ended: bool  # its closing event came (door closed again, board back, ...)


def inbox(session: Session, *, acknowledged: bool = False, site_id: int | None = None,
          limit: int = 200) -> list[Alert]:
    """Alerts newest first: those still to acknowledge, or those acknowledged."""
    statement = (select(ControllerEvent, Controller)
                 .join(Controller, ControllerEvent.controller_id == Controller.id)
                 .options(joinedload(Controller.cabinet).joinedload(Cabinet.site))
                 .where(ControllerEvent.kind.in_(ALERTS),
                        ControllerEvent.acknowledged_at.is_not(None) if acknowledged
                        else ControllerEvent.acknowledged_at.is_(None)))
    if site_id:
        statement = statement.join(Cabinet, Controller.cabinet_id == Cabinet.id).where(
            Cabinet.site_id == site_id)
    rows = session.execute(statement.order_by(ControllerEvent.id.desc()).limit(limit)).all()
    return [Alert(event, controller, alert_ended(session, event)) for event, controller in rows]


def acknowledge(session: Session, event: ControllerEvent, who: str, note: str | None,
                now: datetime | None = None) -> bool:
    """False when someone else acknowledged it first."""
    if event.acknowledged_at is not None:
        return False
    event.acknowledged_at = now or utcnow()
    event.acknowledged_by = who[:120]
    event.acknowledge_note = " ".join((note or "").split())[:500] or None
    return True


def _mail_on_duty(session: Session, controller: Controller, event: ControllerEvent) -> None:
    """Leave the alert for the mail job, to the site's on-duty address when it has one."""
    address = controller.cabinet.site.on_duty_email
    if address:
        session.add(OutgoingMail(controller_event_id=event.id, to_address=address, kind="alert"))


def queue_alert_mails(session: Session, controller: Controller, stored_keys: list[str]) -> None:
    """A mail to the site's on-duty address for each new alert; sent by the mail job."""
    if not controller.cabinet.site.on_duty_email or not stored_keys:
        return
    for event in session.scalars(select(ControllerEvent).where(
            ControllerEvent.controller_id == controller.id,
            ControllerEvent.idempotency_key.in_(stored_keys),
            ControllerEvent.kind.in_(ALERTS))):
        _mail_on_duty(session, controller, event)
    session.commit()


def raise_silent_cabinets(session: Session, now: datetime, silent_after: timedelta,
                          only: list[int] | None = None) -> int:
    """A controller not heard from for ``silent_after``, or whose broker connection was
    lost since it was last heard from (the broker's last will), gets a ``cabinet_silent``
    alert (once per silence), and a ``cabinet_back`` when it talks again. Safe to run
    twice: the idempotency key of each is unique per controller."""
    raised = 0
    conditions = [Controller.retired_at.is_(None), Controller.last_seen_at.is_not(None)]
    if only is not None:
        conditions.append(Controller.id.in_(only))
    for controller in session.scalars(select(Controller).where(*conditions)).all():
        last = session.scalars(select(ControllerEvent).where(
            ControllerEvent.controller_id == controller.id,
            ControllerEvent.kind.in_(("cabinet_silent", "cabinet_back")))
            .order_by(ControllerEvent.id.desc()).limit(1)).first()
        is_silent = (now - controller.last_seen_at >= silent_after
                     or (controller.broker_offline_at is not None
                         and controller.broker_offline_at >= controller.last_seen_at))
        if is_silent and (last is None or last.kind == "cabinet_back"):
            event = ControllerEvent(
                controller_id=controller.id, kind="cabinet_silent", occurred_at=now,
                idempotency_key=server_key(
                    "server", "silent", f"{controller.last_seen_at:%Y%m%d%H%M%S%f}"),
                detail=json.dumps({"last_seen": controller.last_seen_at.isoformat() + "Z"}))
        elif not is_silent and last is not None and last.kind == "cabinet_silent":
            event = ControllerEvent(controller_id=controller.id, kind="cabinet_back",
                                    occurred_at=controller.last_seen_at,
                                    idempotency_key=server_key("server", "back", last.id))
        else:
            continue
        try:
            with session.begin_nested():
                session.add(event)
        except IntegrityError:  # the other scheduler stored it a moment ago
            continue
        if event.kind == "cabinet_silent":
            raised += 1
            _mail_on_duty(session, controller, event)
    session.commit()
    return raised


def alert_title(kind: str) -> str:
    """The alert in staff's words (translated where it is shown)."""
    from flask_babel import gettext as _
    titles = {
        "door_forced": _("Door opened without an unlock (forced?)"),
        "door_left_open": _("Door left open"),
        "unlock_failed": _("Unlock sent, but the door did not open"),
        "return_incomplete": _("Door closed on an empty compartment"),
        "board_offline": _("Lock board does not answer"),
        "scanner_lost": _("Scanner disconnected"),
        "keypad_lost": _("Keypad disconnected"),
        "keypad_locked": _("Keypad locked after wrong codes"),
        "server_unreachable": _("Controller could not reach the server"),
        "config_mismatch": _("Controller settings disagree with the cabinet"),
        "cabinet_silent": _("Cabinet not heard from"),
        "anomaly": _("The locker reported something that does not fit"),
    }
    return titles.get(kind, kind)
