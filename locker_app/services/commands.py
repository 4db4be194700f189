"""Remote commands from staff to a cabinet ("open compartment 3"), delivered to its
controller over the message broker at once when there is one, else by long poll within
about two seconds while it is online."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app import logs
from locker_app.models import Cabinet, Compartment, Controller, RemoteCommand, utcnow
from locker_app.services.errors import DomainError
from locker_app.services.timeutil import aware_utc

POLL_STEP = 0.25  # how often a waiting long poll looks for new commands


def request_open(session: Session, cabinet: Cabinet, compartment: int, *, requested_by: str,
                 reason: str | None = None, ttl_seconds: int = 60,
                 now: datetime | None = None) -> RemoteCommand:
    now = now or utcnow()
    if not session.scalar(select(Compartment.id).where(Compartment.cabinet_id == cabinet.id,
                                                       Compartment.number == compartment)):
        raise DomainError(f"cabinet {cabinet.name} has no compartment {compartment}")
    command = RemoteCommand(uuid=str(uuid.uuid4()), cabinet_id=cabinet.id, compartment=compartment,
                            requested_by=requested_by, reason=reason, created_at=now,
                            expires_at=now + timedelta(seconds=ttl_seconds),
                            request_id=logs.request_id())
    session.add(command)
    session.commit()
    from locker_app.services import broker
    broker.publish_command(command, now)  # at once over the broker, when there is one
    return command


def command_document(command: RemoteCommand) -> dict:
    """A command as the controller gets it, over HTTP or the broker."""
    def iso(moment: datetime) -> str:
        return aware_utc(moment).isoformat().replace("+00:00", "Z")
    return {"id": command.uuid, "seq": command.id, "cabinet": command.cabinet_id,
            "compartment": command.compartment, "expires_at": iso(command.expires_at),
            "created_at": iso(command.created_at),
            **({"request_id": command.request_id} if command.request_id else {})}


def describe(command: RemoteCommand, now: datetime | None = None) -> str:
    """What staff are told: only what the controller reported."""
    now = now or utcnow()
    if command.state == "pending":
        return "expired" if now >= command.expires_at else "pending"
    return command.state


def pending_for(session: Session, controller: Controller, after: int, wait: float,
                now_fn=utcnow) -> list[dict]:
    """Commands for the controller's cabinet after cursor ``after``; waits up to ``wait``
    seconds for one to appear (a long poll)."""
    deadline = time.monotonic() + max(0.0, min(wait, 25.0))
    while True:
        commands = session.scalars(select(RemoteCommand).where(
            RemoteCommand.cabinet_id == controller.cabinet_id, RemoteCommand.id > after,
            RemoteCommand.state == "pending", RemoteCommand.expires_at > now_fn())
            .order_by(RemoteCommand.id).limit(20)).all()
        if commands or time.monotonic() >= deadline:
            session.commit()  # end the read transaction; the next look sees new rows
            return [command_document(c) for c in commands]
        session.commit()
        time.sleep(POLL_STEP)
