"""What the server does for the on-site controllers: authenticate, take events and status.
The sync is services/controller_sync.py."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from locker_app.models import (Cabinet, Controller, ControllerEvent, RemoteCommand, Reservation,
                               ReservationState, utcnow)
from locker_app.services.errors import DomainError
from locker_app.services.reservation_log import record_change
from locker_app.services.timeutil import FIRST_YEAR, LAST_YEAR

logger = logging.getLogger(__name__)
EVENT_KINDS = frozenset({
    "scan_refused", "unlock_sent", "unlock_unanswered", "unlock_failed", "door_opened",
    "door_closed", "door_forced", "door_left_open", "pickup", "return", "return_incomplete",
    "board_offline", "board_online", "scanner_lost", "scanner_back", "keypad_lost",
    "keypad_back", "keypad_locked", "server_unreachable", "server_back", "remote_refused",
    "config_mismatch", "defect_reported",
})
# What staff must see, and the event that ends each (None: staff close it by hand).
ALERTS = {
    "door_forced": None, "door_left_open": "door_closed", "unlock_failed": None,
    "return_incomplete": "return", "board_offline": "board_online", "scanner_lost": "scanner_back",
    "keypad_lost": "keypad_back", "keypad_locked": None, "server_unreachable": "server_back",
    "config_mismatch": None,
    # Raised by the server itself, never sent by a controller: an event that does not fit
    # what the server knows (below), and a cabinet gone silent (services/alerts.py).
    "anomaly": None,
    "cabinet_silent": "cabinet_back",
}
MAX_STATUS_BYTES = 4000
MAX_EVENTS_PER_POST = 200


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def register_controller(session: Session, cabinet: Cabinet, name: str,
                        token: str | None = None) -> tuple[Controller, str]:
    """Create a controller for a cabinet. The token is returned once and stored hashed."""
    token = token or secrets.token_urlsafe(32)
    controller = Controller(cabinet=cabinet, name=name, token_hash=hash_token(token))
    session.add(controller)
    session.commit()
    return controller, token


def authenticate(session: Session, token: str | None) -> Controller | None:
    if not token:
        return None
    return session.scalars(select(Controller).where(
        Controller.token_hash == hash_token(token), Controller.retired_at.is_(None))).first()


def rotate_token(session: Session, controller: Controller) -> str:
    """A new token for the controller; the old one stops working at once."""
    token = secrets.token_urlsafe(32)
    controller.token_hash = hash_token(token)
    session.flush()
    return token


@dataclass(frozen=True)
class IncomingEvent:
    idempotency_key: str
    kind: str
    occurred_at: datetime
    reservation_id: int | None
    compartment: int | None
    detail: dict


# A controller's event keys. The keys the server gives its own events hold a ":", so no
# controller can send one first and make the server's fail (a batch refused on every
# retry, an alert never raised).
CONTROLLER_KEY = re.compile(r"[A-Za-z0-9_.-]{8,64}")


def server_key(*parts: object) -> str:
    """The idempotency key of an event the server records itself."""
    return ":".join(str(part) for part in parts)[:64]


def parse_events(payload: object) -> list[IncomingEvent]:
    """Check a whole batch before anything is stored; one bad event refuses the batch."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise DomainError('expected a JSON object with a list "events"')
    raw_events = payload["events"]
    if len(raw_events) > MAX_EVENTS_PER_POST:
        raise DomainError(f"at most {MAX_EVENTS_PER_POST} events per request")
    events = []
    for index, raw in enumerate(raw_events):
        where = f"event {index}"
        if not isinstance(raw, dict):
            raise DomainError(f"{where}: not an object")
        key = raw.get("idempotency_key")
        if not isinstance(key, str) or not CONTROLLER_KEY.fullmatch(key):
            raise DomainError(f"{where}: idempotency_key must be 8 to 64 letters, digits, "
                              "'-', '_' or '.'")
        kind = raw.get("kind")
        if kind not in EVENT_KINDS:
            raise DomainError(f"{where}: unknown kind {kind!r}")
        try:
            occurred = datetime.fromisoformat(str(raw.get("occurred_at")).replace("Z", "+00:00"))
        except ValueError:
            raise DomainError(f"{where}: occurred_at must be an ISO 8601 time") from None
        if occurred.tzinfo is None:
            raise DomainError(f"{where}: occurred_at needs a time zone")
        if not FIRST_YEAR <= occurred.year <= LAST_YEAR:
            raise DomainError(f"{where}: occurred_at must lie between {FIRST_YEAR} and {LAST_YEAR}")
        occurred = occurred.astimezone(timezone.utc).replace(tzinfo=None)
        reservation_id = raw.get("reservation_id")
        compartment = raw.get("compartment")
        for name, value in (("reservation_id", reservation_id), ("compartment", compartment)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 < value < 2**31):
                raise DomainError(f"{where}: {name} must be a positive integer")
        detail = raw.get("detail") or {}
        if not isinstance(detail, dict):
            raise DomainError(f"{where}: detail must be an object")
        events.append(IncomingEvent(key, kind, occurred, reservation_id, compartment, detail))
    return events


def store_events(session: Session, controller: Controller, events: list[IncomingEvent],
                 clock_ahead: timedelta | None = None) -> dict[str, list[str]]:
    """Store each event exactly once (the unique key decides, also under races) and
    apply what it means for its reservation."""
    stored, duplicates, anomalies = [], [], []
    numbers = {c.number for c in controller.cabinet.compartments}
    now = utcnow()
    for event in events:
        reservation = None
        if event.reservation_id is not None:
            reservation = session.get(Reservation, event.reservation_id)
            if reservation is not None and reservation.compartment.cabinet_id != controller.cabinet_id:
                reservation = None  # not this controller's business; keep the event only
        try:
            with session.begin_nested():
                session.add(ControllerEvent(
                    controller_id=controller.id, idempotency_key=event.idempotency_key,
                    kind=event.kind, occurred_at=event.occurred_at,
                    reservation_id=reservation.id if reservation else None,
                    compartment=event.compartment,
                    detail=json.dumps(event.detail, ensure_ascii=False, sort_keys=True)))
        except IntegrityError:
            duplicates.append(event.idempotency_key)
            continue
        stored.append(event.idempotency_key)
        problem = anomaly(event, reservation, numbers, now, clock_ahead or CLOCK_AHEAD)
        if problem:
            # Kept as it came, the reservation untouched, and staff told.
            anomalies.append(_record_anomaly(session, controller, event, reservation, problem))
        elif reservation is not None:
            _apply(session, reservation, event)
            if event.kind == "defect_reported":
                _report_defect(session, reservation, event)
        if "command_id" in event.detail:
            _apply_to_command(session, controller, event)
    controller.last_seen_at = utcnow()
    session.commit()
    from locker_app.services.alerts import queue_alert_mails
    queue_alert_mails(session, controller, stored + anomalies)
    return {"stored": stored, "duplicates": duplicates}


def store_status(session: Session, controller: Controller, payload: object) -> None:
    """What the controller says of itself (outbox backlog, boards, open doors), kept as
    it came for the staff pages; only its size and shape are checked."""
    if not isinstance(payload, dict) or not isinstance(payload.get("status"), dict):
        raise DomainError('expected a JSON object with an object "status"')
    text = json.dumps(payload["status"], ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_STATUS_BYTES:
        raise DomainError(f"status larger than {MAX_STATUS_BYTES} characters")
    controller.reported_status = text
    controller.last_seen_at = utcnow()
    session.commit()


# How far a controller's clock may run ahead of the server's, and how old an event that
# changes a reservation may be (a controller offline for days still delivers its own).
CLOCK_AHEAD = timedelta(minutes=10)
OLDEST = timedelta(days=60)
# From which states a controller's observation moves a reservation, and to which.
TRANSITIONS = {
    # A late pickup after the no-show job ran while the locker was offline is still real.
    "pickup": ((ReservationState.BOOKED, ReservationState.NO_SHOW), ReservationState.PICKED_UP,
               "picked up at compartment {}"),
    "return": ((ReservationState.PICKED_UP, ReservationState.OVERDUE), ReservationState.RETURNED,
               "returned to compartment {}"),
}
# States in which a repeated observation is harmless: it changes nothing and is no anomaly.
ALREADY = {"pickup": (ReservationState.PICKED_UP, ReservationState.OVERDUE), "return": ()}


def anomaly(event: IncomingEvent, reservation: Reservation | None, numbers: set[int],
            now: datetime, clock_ahead: timedelta = CLOCK_AHEAD) -> str | None:
    """Why an event does not fit what the server knows, or None when it fits."""
    if event.compartment is not None and event.compartment not in numbers:
        return f"compartment {event.compartment} is not in this cabinet"
    if event.occurred_at > now + clock_ahead:
        return "occurred_at lies in the future"
    if reservation is None or event.kind not in TRANSITIONS:
        return None
    if event.occurred_at < now - OLDEST or event.occurred_at < reservation.created_at - clock_ahead:
        return "occurred_at lies before the reservation existed"
    if event.compartment is not None and event.compartment != reservation.compartment.number:
        return (f"{event.kind} at compartment {event.compartment}, but the reservation is in "
                f"compartment {reservation.compartment.number}")
    allowed = TRANSITIONS[event.kind][0] + ALREADY[event.kind]
    if reservation.state not in allowed:
        return f"{event.kind} of a reservation that is {reservation.state}"
    return None


def _record_anomaly(session: Session, controller: Controller, event: IncomingEvent,
                    reservation: Reservation | None, problem: str) -> str:
    key = server_key("anomaly", hashlib.sha256(event.idempotency_key.encode()).hexdigest()[:48])
    session.add(ControllerEvent(
        controller_id=controller.id, idempotency_key=key, kind="anomaly", occurred_at=utcnow(),
        reservation_id=reservation.id if reservation else None, compartment=event.compartment,
        detail=json.dumps({"event": event.idempotency_key, "kind": event.kind,
                           "problem": problem}, ensure_ascii=False, sort_keys=True)))
    session.flush()
    return key


def _apply(session: Session, reservation: Reservation, event: IncomingEvent) -> None:
    if event.kind not in TRANSITIONS:
        return
    from_states, to_state, cause = TRANSITIONS[event.kind]
    if reservation.state in from_states:
        record_change(session, reservation, to_state, actor="controller",
                      cause=cause.format(event.compartment), at=event.occurred_at)


def _report_defect(session: Session, reservation: Reservation, event: IncomingEvent) -> None:
    """A defect reported at the cabinet's keypad: the same as on the reservation page."""
    from locker_app.services import reports
    try:
        with session.begin_nested():
            reports.report_defect(session, reservation, "", source="keypad",
                                  now=event.occurred_at, commit=False)
    except DomainError as error:  # too late or reported already: the event itself is kept
        logger.info("keypad defect for reservation %s not recorded: %s", reservation.id, error)


def _apply_to_command(session: Session, controller: Controller, event: IncomingEvent) -> None:
    command = session.scalars(select(RemoteCommand).where(
        RemoteCommand.uuid == str(event.detail["command_id"])[:36],
        RemoteCommand.cabinet_id == controller.cabinet_id)).first()
    if command is None or command.state != "pending":
        return
    if event.kind == "unlock_sent":
        command.state = "unlock_sent"
    elif event.kind == "remote_refused":
        command.state = "refused"
        command.result_detail = str(event.detail.get("reason", ""))[:200]
    else:
        return
    command.result_at = event.occurred_at
    # Under the id of the staff request that asked for it: one action, staff page to door.
    logger.info("remote open of compartment %s (command %s): %s, reported by %s",
                command.compartment, command.uuid, command.state, controller.name,
                extra={"request_id": command.request_id or "-"})


def alert_ended(session: Session, alert: ControllerEvent) -> bool:
    """Whether the event that ends this alert came after it (door closed, board back)."""
    ender = ALERTS.get(alert.kind)
    if ender is None:
        return False
    conditions = [ControllerEvent.controller_id == alert.controller_id,
                  ControllerEvent.kind == ender, ControllerEvent.id > alert.id]
    if alert.compartment is not None:
        conditions.append(ControllerEvent.compartment == alert.compartment)
    return session.scalar(select(ControllerEvent.id).where(*conditions).limit(1)) is not None


def open_alerts(session: Session) -> list[ControllerEvent]:
    """Alerts not yet ended by their closing event (newest first)."""
    alerts = session.scalars(select(ControllerEvent).where(
        ControllerEvent.kind.in_(ALERTS)).order_by(ControllerEvent.id.desc()).limit(500)).all()
    return [alert for alert in alerts if not alert_ended(session, alert)]
