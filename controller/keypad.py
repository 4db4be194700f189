"""Numeric codes typed on a keypad at the locker: checked against the synced list of active
codes (stored hashed), so they work offline. Wrong codes lock the keypad for a growing time.

The keypad's D key reports a defect: D alone within ``DEFECT_AFTER_RETURN`` of a return
at this cabinet reports it for that return; D and the number (then Enter) for an item
still out. The server puts the item to "check needed"."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from controller.decide import Decision, decide_numeric
from signed_code import hash_numeric_code

logger = logging.getLogger(__name__)
DEFECT_KEY = "D"
DEFECT_AFTER_RETURN = timedelta(minutes=2)


class Keypad:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self.wrong_in_a_row = 0
        self.lockouts = 0
        self.locked_until: datetime | None = None
        self.last_return: tuple[int, int | None, datetime] | None = None  # id, compartment, when
        self._lock = threading.Lock()

    def locked_until_text(self) -> str | None:
        return self.locked_until.isoformat() if self.locked_until else None

    def noticed_return(self, reservation_id: int | None, compartment: int | None) -> None:
        if reservation_id is not None:
            self.last_return = (reservation_id, compartment, self.controller.clock())

    def handle_line(self, line: str) -> Decision:
        controller = self.controller
        now = controller.clock()
        digits = "".join(ch for ch in line if ch.isdigit())
        with self._lock:
            if self.locked_until and now < self.locked_until:
                return controller.act_on(Decision(False, "keypad_locked"), source="keypad")
            if line.strip().upper().startswith(DEFECT_KEY):
                return self._defect(digits, now)
            local = self._look_up(digits, now)
            decision = decide_numeric(local, now, self.controller.store.compartment_taken)
        return controller.act_on(decision, source="keypad")

    def _look_up(self, digits: str, now: datetime):
        """The synced reservation with this numeric code; a wrong code counts toward the lock."""
        salt = self.controller.store.setting("code_salt")
        local = self.controller.store.reservation_by_code_hash(hash_numeric_code(digits, salt)) \
            if salt and 6 <= len(digits) <= 8 else None
        if local is None:
            self._wrong(now)
        else:
            self.wrong_in_a_row = self.lockouts = 0
        return local

    def _defect(self, digits: str, now: datetime) -> Decision:
        """D alone: the return just made here; D and a number: an item still out."""
        controller = self.controller
        if not digits:
            last = self.last_return
            if last is None or now - last[2] > DEFECT_AFTER_RETURN:
                controller.display.show("defect_how", tone="no")
                return Decision(False, "defect_without_return")
            reservation_id, compartment = last[0], last[1]
        else:
            local = self._look_up(digits, now)
            if local is None:
                return controller.act_on(Decision(False, "unknown_code"), source="keypad")
            if not {local.server_state, local.local_state} & {"picked_up", "overdue", "returned"}:
                controller.display.show("defect_how", tone="no")
                return Decision(False, "defect_before_pickup", local.id, local.compartment)
            reservation_id, compartment = local.id, local.compartment
        self.last_return = None  # one report per return
        controller.event("defect_reported", reservation_id=reservation_id, compartment=compartment,
                         detail={"source": "keypad"})
        return Decision(False, "defect_reported", reservation_id, compartment)

    def _wrong(self, now: datetime) -> None:
        self.wrong_in_a_row += 1
        if self.wrong_in_a_row < self.settings.keypad_max_attempts:
            return
        seconds = self.settings.keypad_lock_seconds * 2 ** self.lockouts
        self.lockouts += 1
        self.wrong_in_a_row = 0
        self.locked_until = now + timedelta(seconds=seconds)
        logger.warning("keypad locked for %.0f s after %d wrong codes", seconds,
                       self.settings.keypad_max_attempts)
        self.controller.event("keypad_locked", detail={"seconds": seconds,
                                                       "lockouts": self.lockouts})
