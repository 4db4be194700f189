"""Rate limits shared by every web process (Redis in production, memory for the demo):
generous per client address, strict per person (the e-mail address folded as one person).
Together with the per-person and per-address rules on active reservations
(services/booking.py), one client cannot book out the park, while a care home or the
town hall's public Wi-Fi, many people behind one address, still can book."""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from functools import lru_cache, wraps

from flask import Flask, after_this_request, current_app, request
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from locker_app.errors import error_response
from locker_app.input_guard import BadInput, once_per_request, parse_json_body


def client_address() -> str:
    return request.remote_addr or "unknown"


def client_key() -> str:
    """The client's address as a keyed hash: enough to count, useless to anyone else."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, client_address().encode(), hashlib.sha256).hexdigest()[:32]


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
    from locker_app.services.people import person_key
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
    """A booking made by this request (a replay of one made before is not counted again)."""
    return response.status_code in (201, 302) and "Idempotent-Replayed" not in response.headers


class TooManyAttempts(Exception):
    """A booking limit refused the request; ``retry_after`` seconds until it has room."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


@lru_cache(maxsize=32)
def _parsed(setting: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(setting))


class BookingCounter:
    """The booking limits counted with limits itself, in Flask-Limiter's storage (Redis, or
    memory) and under the keys it used, so counts carry over. Flask-Limiter's way through two
    shared limits (resolving, filtering and sorting every limit of the endpoint, before the
    view and after it, and X-RateLimit headers read back from the storage) took 1.0M of the
    9.6M instructions of a booking through the API (callgrind, one process, 10k).

    When the storage fails (Redis gone), it is logged and counted in this process's memory
    for ``RETRY_SECONDS``, then the storage is asked again: a refusal for everyone would be
    worse than a count per process for a while."""

    RETRY_SECONDS = 30.0
    clock = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self._fallback: RateLimiter | None = None
        self._dead_until = 0.0

    def _storage_up(self) -> bool:
        return self.clock() >= self._dead_until

    def _counted(self, method: str, limit: RateLimitItem, *keys: str) -> bool:
        if self._storage_up():
            try:
                return getattr(limiter.limiter, method)(limit, *keys)
            except Exception as error:  # any storage failure: count here for a while
                logging.getLogger(__name__).warning(
                    "Rate limit storage unreachable (%s): counting bookings in this "
                    "process's memory for %d s", error, self.RETRY_SECONDS)
                self._dead_until = self.clock() + self.RETRY_SECONDS
        if self._fallback is None:
            self._fallback = FixedWindowRateLimiter(MemoryStorage())
        return getattr(self._fallback, method)(limit, *keys)

    def hit(self, limit: RateLimitItem, *keys: str) -> bool:
        return self._counted("hit", limit, *keys)

    def test(self, limit: RateLimitItem, *keys: str) -> bool:
        return self._counted("test", limit, *keys)

    def refuse(self, limit: RateLimitItem, *keys: str) -> TooManyAttempts:
        """The refusal, with the seconds until ``limit`` has room again."""
        strategy = limiter.limiter if self._storage_up() else self._fallback
        try:
            reset = strategy.get_window_stats(limit, *keys).reset_time
        except Exception:  # the storage went away between the count and this
            reset = time.time() + limit.get_expiry()
        return TooManyAttempts(max(1, math.ceil(reset - time.time())))


def _keys(prefix: str, key: str, scope: str) -> tuple[str, ...]:
    """Flask-Limiter's keys of a shared limit, the prefix left out when empty."""
    return (prefix, key, scope) if prefix else (key, scope)


def booking_limits(view):
    """Per address every attempt counts (but a refusal from the sold-out memo, which comes
    before the limits: api/public.py sold_out_first); per person only the bookings made
    (a refusal for a full park or a broken rule does not use up a person's allowance)."""
    @wraps(view)
    def limited(*args, **kwargs):
        config = current_app.config
        if request.method != "POST" or not config.get("RATELIMIT_ENABLED", True):
            return view(*args, **kwargs)
        counter: BookingCounter = current_app.extensions["booking_counter"]
        prefix = config.get("RATELIMIT_KEY_PREFIX") or ""
        keys = _keys(prefix, client_address(), "booking-address")
        for limit in _parsed(config["LIMIT_BOOKING_PER_ADDRESS"]):
            if not counter.hit(limit, *keys):
                raise counter.refuse(limit, *keys)
        person = submitted_email()
        if person:
            keys = _keys(prefix, person, "booking-person")
            limits = _parsed(config["LIMIT_BOOKING_PER_PERSON"])
            for limit in limits:
                if not counter.test(limit, *keys):
                    raise counter.refuse(limit, *keys)

            @after_this_request
            def count_booking(response):
                if _booked(response):
                    for limit in limits:
                        counter.hit(limit, *keys)
                return response
        return view(*args, **kwargs)
    limited.counted_by_booking_limits = True  # kept by decorators that use functools.wraps
    return limited


@limiter.request_filter
def _counted_by_booking_limits() -> bool:
    """Flask-Limiter leaves the booking endpoints alone: it has no limit of theirs, yet
    looking for one before every request cost 0.1 ms of a booking's processor time."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "counted_by_booking_limits", False)


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
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis", "rediss")):
        # Bounded waits: a stalled Redis fails fast, and the fallback counts in memory.
        timeout = app.config["REDIS_TIMEOUT_SECONDS"]
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {
            "socket_connect_timeout": timeout, "socket_timeout": timeout,
            **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})}
    limiter.init_app(app)
    app.extensions["booking_counter"] = BookingCounter()

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded):
        response = _too_many()
        breached = limiter.current_limit  # the limit this request went over
        reset = breached.reset_at if breached else time.time() + error.limit.limit.get_expiry()
        response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
        return response

    @app.errorhandler(TooManyAttempts)
    def too_many_bookings(error: TooManyAttempts):
        response = _too_many()
        response.headers["Retry-After"] = str(error.retry_after)
        return response


def _too_many():
    return error_response(_("Too many attempts in a short time. Please wait a little and try "
                            "again. If you need help now, please call us."), "rate_limited", 429)
