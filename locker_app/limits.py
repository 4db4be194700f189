"""Rate limits shared by every web process (Redis in production, memory for the demo):
generous per client address, strict per person (the e-mail address folded as one person).
Together with the per-person and per-address rules on active reservations
(services/reservations.py), one client cannot book out the park, while a care home or the
town hall's public Wi-Fi, many people behind one address, still can book."""
from __future__ import annotations

import hashlib
import hmac
import time

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits.storage import MemoryStorage

from locker_app.input_guard import BadInput, once_per_request, parse_json_body


def client_address() -> str:
    return request.remote_addr or "unknown"


def client_key() -> str:
    """The client's address as a keyed hash: enough to count, useless to anyone else."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, client_address().encode(), hashlib.sha256).hexdigest()[:32]


class SweptMemoryStorage(MemoryStorage):
    """``memory://`` (the demo's counters, and any process without Redis) as limits has
    it, but with expired counters swept at most once a second: the stock one starts a
    timer thread for almost every hit that comes more than 10 ms after the one before,
    0.14 to 0.3 ms of the 2.2 ms of processor time of a booking. Counting is unchanged:
    a counter's expiry is checked whenever it is read. It takes the ``memory`` scheme
    over once this module is imported (limits keeps one registry of schemes)."""

    STORAGE_SCHEME = ["memory"]
    SWEEP_SECONDS = 1.0
    clock = staticmethod(time.monotonic)
    _next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # the hook every hit calls
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            super()._MemoryStorage__schedule_expiry()


# One per process (the app factory binds it); in production each process has one app.
limiter = Limiter(key_func=client_address)


def _config(name: str):
    return lambda: current_app.config[name]


def submitted_email() -> str | None:
    """The e-mail address in a booking (form or JSON), folded as one person; found once per
    request (the limits ask for it four times: their key and whether they apply, before the
    view and after it)."""
    return once_per_request("submitted_email", _submitted_email)


def _submitted_email() -> str | None:
    from locker_app.services.reservations import person_key
    if request.mimetype == "application/json":
        try:
            payload = parse_json_body()
        except BadInput:
            return None
        raw = payload.get("email") if isinstance(payload, dict) else None
    else:
        raw = request.form.get("email")
    return person_key(raw) if isinstance(raw, str) and "@" in raw else None


def _booked(response) -> bool:
    return response.status_code in (201, 302)


def booking_limits(view):
    """Per address every attempt counts (but a refusal from the sold-out memo, which comes
    before the limits: api/public.py sold_out_first); per person only the bookings made."""
    view = limiter.shared_limit(_config("LIMIT_BOOKING_PER_ADDRESS"), "booking-address",
                                methods=["POST"])(view)
    return limiter.shared_limit(_config("LIMIT_BOOKING_PER_PERSON"), "booking-person",
                                methods=["POST"], key_func=lambda: submitted_email() or "",
                                exempt_when=lambda: submitted_email() is None,
                                deduct_when=_booked)(view)


login_limit = limiter.limit(_config("LIMIT_LOGIN_PER_ADDRESS"), methods=["POST"], scope="login")
cancel_limit = limiter.limit(_config("LIMIT_CANCEL_PER_ADDRESS"), methods=["POST"], scope="cancel")


def lookup_limits(view):
    """Finding a reservation again: per client address every attempt counts (nobody
    searches through numbers); per e-mail address every links mail (nobody floods an inbox)."""
    view = limiter.shared_limit(_config("LIMIT_LOOKUP_PER_ADDRESS"), "lookup-address",
                                methods=["POST"])(view)
    return limiter.shared_limit(_config("LIMIT_LOOKUP_PER_EMAIL"), "lookup-email",
                                methods=["POST"], key_func=lambda: submitted_email() or "",
                                exempt_when=lambda: submitted_email() is None)(view)


# What visitors send to staff: feedback and defect reports.
report_limit = limiter.limit(_config("LIMIT_REPORTS_PER_ADDRESS"), methods=["POST"], scope="reports")


def register_limits(app: Flask) -> None:
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded):
        message = _("Too many attempts in a short time. Please wait a little and try again. "
                    "If you need help now, please call us.")
        if request.path.startswith("/api/"):
            return jsonify(error=message, code="rate_limited", field=None), 429
        return render_template("error.html", message=message, code=429), 429
