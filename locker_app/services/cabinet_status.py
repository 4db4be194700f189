"""How each cabinet is doing, as staff see it: online or not, last sync, what its
controller reported (outbox backlog, boards, open doors)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from locker_app.models import Cabinet, Controller, utcnow

# A controller syncs every 10 s and holds a long poll: two minutes of silence is "offline".
ONLINE_WITHIN = timedelta(minutes=2)


@dataclass
class CabinetStatus:
    cabinet: Cabinet
    controllers: list[Controller]
    online: bool = False
    last_contact: datetime | None = None
    last_sync: datetime | None = None
    reported: dict = field(default_factory=dict)

    @property
    def doors_open(self) -> list[int]:
        return [int(n) for n in self.reported.get("doors_open", [])]

    @property
    def outbox(self) -> int | None:
        return self.reported.get("outbox")

    @property
    def boards_offline(self) -> list[int]:
        return list(self.reported.get("boards_offline", []))

    @property
    def family_mismatch(self) -> bool:
        reported = self.reported.get("board_family")
        return bool(reported) and reported != self.cabinet.board_family


def status_of(cabinet: Cabinet, controllers: list[Controller], now: datetime) -> CabinetStatus:
    status = CabinetStatus(cabinet, controllers)
    active = [c for c in controllers if c.retired_at is None]
    seen = [c for c in active if c.last_seen_at]
    if seen:
        latest = max(seen, key=lambda c: c.last_seen_at)
        status.last_contact = latest.last_seen_at
        status.last_sync = max((c.last_sync_at for c in seen if c.last_sync_at), default=None)
        status.online = now - latest.last_seen_at <= ONLINE_WITHIN
        try:
            status.reported = json.loads(latest.reported_status or "{}")
        except ValueError:
            status.reported = {}
    return status


def all_cabinets(session: Session, now: datetime | None = None) -> list[CabinetStatus]:
    """Every cabinet in use, with its status."""
    now = now or utcnow()
    cabinets = session.scalars(select(Cabinet).where(Cabinet.retired_at.is_(None))
                               .order_by(Cabinet.site_id, Cabinet.id)).all()
    controllers = session.scalars(select(Controller).order_by(Controller.id)).all()
    by_cabinet: dict[int, list[Controller]] = {}
    for controller in controllers:
        by_cabinet.setdefault(controller.cabinet_id, []).append(controller)
    return [status_of(c, by_cabinet.get(c.id, []), now) for c in cabinets]
