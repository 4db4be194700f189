"""Logs for the town's IT. Every request carries a request id (from nginx's ``X-Request-ID``
when it is a plain token, else a new one), answered in ``X-Request-ID`` and written with
every log line of the request. With LOCKER_LOG_FORMAT=json each line is one JSON object,
and each request writes one line when it is answered: time, level, request id, method,
route, endpoint, status, duration and the staff user when one is logged in. The route is
the pattern (``/r/<token>``), never the path: a visitor's name, e-mail address or code is
never written."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

REQUEST_LOG = logging.getLogger("locker_app.requests")
# What an id from outside may look like (nginx's $request_id is 32 hex digits).
_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# Attributes every LogRecord has; the rest are a line's own fields (``extra=``).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def request_seconds() -> float | None:
    """How long the request being answered has taken so far (None before this module's
    first hook ran, as for a request the CSRF check refused)."""
    started = g.get("request_started")
    return None if started is None else time.perf_counter() - started


def request_id() -> str | None:
    """The id of the request being answered, if any."""
    if has_request_context():
        return g.get("request_id")
    return None


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage(),
                "request_id": getattr(record, "request_id", "-")}
        line.update({key: value for key, value in vars(record).items()
                     if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Stderr(logging.StreamHandler):
    """Standard error as it is when a line is written, not when the handler was made (a
    test runner swaps it, and wrote to a closed stream afterwards)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_handler: logging.Handler | None = None  # one per process, however many apps are made


def configure_logging(app: Flask) -> None:
    """The project's log lines to standard error, as text or JSON (LOCKER_LOG_FORMAT), and
    the request id of each request."""
    global _handler
    as_json = app.config.get("LOG_FORMAT") == "json"
    if not app.testing:
        if _handler is None:
            _handler = _Stderr()
            _handler.addFilter(_WithRequestId())
            ours = logging.getLogger("locker_app")
            ours.addHandler(_handler)
            ours.setLevel(logging.INFO)
            # Written once, in the chosen format: not again by a handler of the root logger
            # (the scheduler configures one for the libraries it runs).
            ours.propagate = False
        _handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    # One line per request in JSON only: as text, gunicorn's access log says the same.
    REQUEST_LOG.disabled = not as_json

    @app.before_request
    def take_request_id():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def answer_request_id(response):
        # (A request refused before this app's first hook, by the CSRF check, gets one now.)
        g.request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = g.request_id
        if not REQUEST_LOG.disabled:
            REQUEST_LOG.info("%s %s %s", request.method,
                             request.url_rule.rule if request.url_rule else "(no route)",
                             response.status_code, extra=_request_fields(response))
        return response


def _request_fields(response) -> dict:
    seconds = request_seconds()
    fields = {"request_id": g.request_id, "method": request.method,
              "route": request.url_rule.rule if request.url_rule else None,
              "endpoint": request.endpoint, "status": response.status_code,
              "duration_ms": None if seconds is None else round(seconds * 1000, 1)}
    if g.get("staff_username"):  # set when the request's staff login was checked
        fields["staff_user"] = g.staff_username
    return fields
