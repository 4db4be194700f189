"""The sold-out memo: a window found sold out is answered so for a second without asking
the database again. When hundreds ask for the last items at once (a launch-day rush), the
refusals come at once instead of queueing behind the bookings that take those items
(bench.booking_rush). A cancellation shows a second later at most; a booking always asks
the database. One memo per process, shared by the API and the booking form."""
from __future__ import annotations

import threading
from time import monotonic

from flask import current_app
from flask_babel import get_locale, gettext as _

from locker_app.metrics import REFUSALS


class SoldOutMemo:
    """Windows (any hashable key: site, item type, start, end as given) found sold out in
    the last ``SECONDS``, with the item type's name in each language for the refusal."""

    SECONDS = 1.0
    # Past this many windows, the expired ones are dropped (a memo never grows without end).
    MOST = 10_000

    def __init__(self) -> None:
        self._seen: dict[tuple, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def sold_out(self, key: tuple) -> str | None:
        """The refusal's sentence when the window was sold out a moment ago, else None."""
        with self._lock:
            at, names = self._seen.get(key, (None, None))
        if at is None or monotonic() - at >= self.SECONDS:
            return None
        REFUSALS.labels("sold_out").inc()
        locale = str(get_locale() or "de")
        return _("Sorry, no %(item)s is free at that time. Please try another time.",
                 item=names.get(locale, names["de"]))

    def remember(self, key: tuple, names: dict[str, str]) -> None:
        with self._lock:
            now = monotonic()
            if len(self._seen) > self.MOST:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.SECONDS}
            self._seen[key] = (now, names)


def sold_out_memo() -> SoldOutMemo:
    """The memo of this app (each process has its own)."""
    memo = current_app.extensions.get("sold_out_memo")
    if memo is None:
        memo = current_app.extensions.setdefault("sold_out_memo", SoldOutMemo())
    return memo
