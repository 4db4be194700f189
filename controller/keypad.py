"""Numeric codes typed on a keypad at the locker: checked against the synced list of active
codes (stored hashed), so they work offline. Wrong codes lock the keypad for a growing time."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from controller.decide import Decision, decide_numeric
from signed_code import hash_numeric_code

logger = logging.getLogger(__name__)


class Keypad:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self.wrong_in_a_row = 0
        self.lockouts = 0
        self.locked_until: datetime | None = None
        self._lock = threading.Lock()

    def locked_until_text(self) -> str | None:
        return self.locked_until.isoformat() if self.locked_until else None

    def handle_line(self, line: str) -> Decision:
        controller = self.controller
        now = controller.clock()
        digits = "".join(ch for ch in line if ch.isdigit())
        with self._lock:
            if self.locked_until and now < self.locked_until:
                return controller.act_on(Decision(False, "keypad_locked"), source="keypad")
            salt = controller.store.setting("code_salt")
            if not 6 <= len(digits) <= 8 or not salt:
                local = None
            else:
                local = controller.store.reservation_by_code_hash(hash_numeric_code(digits, salt))
            decision = decide_numeric(local, now, self.controller.store.compartment_taken)
            if local is None:
                self._wrong(now)
            else:
                self.wrong_in_a_row = self.lockouts = 0
        return controller.act_on(decision, source="keypad")

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
