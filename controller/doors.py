"""What a door is doing, from debounced readings and the unlocks we sent. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PendingUnlock:
    reservation_id: int | None
    purpose: str  # "pickup", "return"
    sent_at: float
    opened: bool = False


@dataclass(frozen=True)
class Observation:
    kind: str
    reservation_id: int | None = None
    detail: dict = field(default_factory=dict)


class DoorTracker:
    """One compartment's door. A door counts as opened or closed only after two readings
    in a row agree (feedback contacts bounce)."""

    def __init__(self) -> None:
        self.closed: bool | None = None  # the debounced state; None before two readings agree
        self._last_reading: bool | None = None
        self.pending: PendingUnlock | None = None

    def unlock_sent(self, reservation_id: int | None, purpose: str, now: float) -> list[Observation]:
        self.pending = PendingUnlock(reservation_id, purpose, now)
        if self.closed is False:
            # Already reading open (perhaps a broken cable): the visitor has access now.
            return self._opened(detail={"already_open": True})
        return []

    def reading(self, closed: bool, now: float, open_timeout: float) -> list[Observation]:
        agreed = closed == self._last_reading
        self._last_reading = closed
        observations: list[Observation] = []
        if agreed and closed != self.closed:
            first = self.closed is None
            self.closed = closed
            if not first:
                observations += self._closed() if closed else self._opened()
            elif not closed and self.pending:
                observations += self._opened()
        pending = self.pending
        if pending and not pending.opened and now - pending.sent_at > open_timeout:
            self.pending = None
            observations.append(Observation("unlock_failed", pending.reservation_id,
                                            {"purpose": pending.purpose,
                                             "why": "door did not open"}))
        return observations

    def _opened(self, detail: dict | None = None) -> list[Observation]:
        pending = self.pending
        if pending is None:
            return [Observation("door_forced")]
        if pending.opened:
            return []
        pending.opened = True
        observations = [Observation("door_opened", pending.reservation_id, detail or {})]
        if pending.purpose == "pickup":
            observations.append(Observation("pickup", pending.reservation_id))
        return observations

    def _closed(self) -> list[Observation]:
        pending = self.pending
        reservation_id = pending.reservation_id if pending else None
        observations = [Observation("door_closed", reservation_id)]
        if pending and pending.opened:
            self.pending = None
            if pending.purpose == "return":
                observations.append(Observation("return", reservation_id))
        return observations
