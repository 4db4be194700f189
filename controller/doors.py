"""A compartment's state machine, driven by debounced door (and item) readings and by the
unlocks we send. Pure: no I/O; the service stores ``to_dict()`` after every change so a
restart carries on where the last run stopped.

States: locked -> unlocking -> open -> closed_after_pickup / closed_after_return, and
fault (an unlock that did not open the door). Events say only what was observed.

Where the board has item sensors (family B), they tell what happened behind a door that
never read open: opened and shut between two reads, or while the line waited for a reply.
An item gone after an unlock for a pickup is that pickup; an item back after an unlock for
a return is that return; an item that changes with no unlock is reported as a forced door.
Such observations carry ``"unseen": "item_sensor"``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

LOCKED, UNLOCKING, OPEN = "locked", "unlocking", "open"
CLOSED_AFTER_PICKUP, CLOSED_AFTER_RETURN, FAULT = "closed_after_pickup", "closed_after_return", "fault"


@dataclass
class PendingUnlock:
    reservation_id: int | None
    purpose: str  # "pickup", "return", "remote"
    sent_at: float  # wall-clock seconds (survives a restart)
    opened: bool = False
    silence_reported: bool = False  # the board stopped answering after this unlock


@dataclass(frozen=True)
class Observation:
    kind: str
    reservation_id: int | None = None
    detail: dict = field(default_factory=dict)


class DoorTracker:
    """One compartment's door. It counts as opened or closed only after two readings in a
    row agree (feedback contacts bounce)."""

    def __init__(self) -> None:
        self.closed: bool | None = None  # debounced; None before two readings agree
        self.state = LOCKED
        self.pending: PendingUnlock | None = None
        self.opened_at: float | None = None
        self.left_open_reported = False
        self.item: bool | None = None  # item sensor, debounced like the door; None: unknown
        self._last_reading: bool | None = None
        self._last_item: bool | None = None

    @property
    def unconfirmed(self) -> bool:
        """The last reading differs from what counts now: read again at once to confirm it."""
        return self._last_reading is not None and self._last_reading != self.closed

    # Persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"closed": self.closed, "state": self.state, "opened_at": self.opened_at,
                "left_open_reported": self.left_open_reported,
                "item": self.item, "pending": asdict(self.pending) if self.pending else None}

    @classmethod
    def from_dict(cls, data: dict) -> "DoorTracker":
        tracker = cls()
        tracker.closed = data.get("closed")
        tracker.state = data.get("state", LOCKED)
        tracker.opened_at = data.get("opened_at")
        tracker.left_open_reported = bool(data.get("left_open_reported"))
        tracker.item = data.get("item")
        tracker.pending = PendingUnlock(**data["pending"]) if data.get("pending") else None
        return tracker

    # What we do -------------------------------------------------------------------------------
    def unlock_sent(self, reservation_id: int | None, purpose: str, now: float) -> list[Observation]:
        self.pending = PendingUnlock(reservation_id, purpose, now)
        if self.closed is False:
            # Already reading open (perhaps a broken cable): the visitor has access now.
            return self._opened(now, detail={"already_open": True})
        self.state = UNLOCKING
        return []

    def board_silent(self, now: float, open_timeout: float) -> list[Observation]:
        """The board does not answer: an unlock waiting for its door is reported once, when
        its time to open has run out, as not confirmed (the door may yet read open when the
        board answers again; then it counts as opened)."""
        pending = self.pending
        if pending is None or pending.opened or pending.silence_reported \
                or now - pending.sent_at <= open_timeout:
            return []
        pending.silence_reported = True
        return [Observation("unlock_unanswered", pending.reservation_id,
                            {"purpose": pending.purpose, "why": "board not answering"})]

    # What the board says ------------------------------------------------------------------------
    def reading(self, closed: bool, now: float, open_timeout: float, *,
                item_present: bool | None = None, left_open_after: float | None = None) -> list[Observation]:
        agreed = closed == self._last_reading
        self._last_reading = closed
        observations: list[Observation] = []
        if agreed and closed != self.closed:
            first = self.closed is None
            self.closed = closed
            if closed and not first:
                observations += self._closed(item_present)
            elif not closed and (not first or self.pending):
                observations += self._opened(now)
            elif not closed:
                self.state, self.opened_at = OPEN, now  # open when we started: nothing new
        if item_present is not None:
            observations += self._item_reading(item_present, now)
        pending = self.pending
        # Only a confirmed reading ends the wait: the first reading after the board was
        # silent may be the door that opened meanwhile.
        if pending and not pending.opened and agreed and now - pending.sent_at > open_timeout:
            self.pending = None
            self.state = FAULT
            observations.append(Observation("unlock_failed", pending.reservation_id,
                                            {"purpose": pending.purpose, "why": "door did not open"}))
        if (self.closed is False and left_open_after is not None and not self.left_open_reported
                and self.opened_at is not None and now - self.opened_at > left_open_after):
            self.left_open_reported = True
            observations.append(Observation(
                "door_left_open", pending.reservation_id if pending else None,
                {"open_seconds": round(now - self.opened_at)}))
        return observations

    def _item_reading(self, present: bool, now: float) -> list[Observation]:
        agreed = present == self._last_item
        self._last_item = present
        if not agreed or self.closed is not True:
            return []  # one reading, or the door is open: items come and go
        before, self.item = self.item, present
        if before is None or before == present:
            return []
        # The item changed behind a door that has read shut all along.
        pending = self.pending
        unseen = {"unseen": "item_sensor"}
        if pending is not None and not pending.opened and (
                (pending.purpose == "pickup" and not present)
                or (pending.purpose == "return" and present) or pending.purpose == "remote"):
            return self._opened(now, detail=unseen) + self._closed(present, detail=unseen)
        return [Observation("door_forced", pending.reservation_id if pending else None,
                            {**unseen, "item_present": present})]

    def _opened(self, now: float, detail: dict | None = None) -> list[Observation]:
        self.state, self.opened_at, self.left_open_reported = OPEN, now, False
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

    def _closed(self, item_present: bool | None, detail: dict | None = None) -> list[Observation]:
        pending = self.pending
        reservation_id = pending.reservation_id if pending else None
        detail = dict(detail or {})
        if item_present is not None:
            detail["item_present"] = item_present
            self.item = self._last_item = item_present
        observations = [Observation("door_closed", reservation_id, detail)]
        self.opened_at = None
        self.state = LOCKED
        if pending and pending.opened:
            self.pending = None
            if pending.purpose == "pickup":
                self.state = CLOSED_AFTER_PICKUP
            elif pending.purpose == "return":
                if item_present is False:
                    # The door closed on an empty compartment: not a return. The code still
                    # opens for the return; staff are told.
                    observations.append(Observation("return_incomplete", reservation_id,
                                                    {"why": "no item in the compartment"}))
                else:
                    self.state = CLOSED_AFTER_RETURN
                    observations.append(Observation("return", reservation_id, detail))
        return observations
