"""What no input may do: reach a parser or the database with characters it cannot take
(NUL bytes, lone UTF-16 surrogates), nest JSON without end, or carry numbers the database
cannot hold. Each is refused with a 4xx and a reason, never a 500."""
from __future__ import annotations

import json
import re

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

MAX_JSON_DEPTH = 16
_WHOLE_NUMBER = re.compile(r"\d{1,18}")  # fits a 64-bit column
_SECONDS = re.compile(r"\d{1,3}(\.\d{1,3})?")


class DatabaseInteger(IntegerConverter):
    """``<int:...>`` in a route: a whole number an integer column holds (PostgreSQL's
    ``integer``). A larger one names nothing here: 404, where it overflowed to a 500."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):  # noqa: A002 (werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class BadInput(ValueError):
    """Input refused before it reaches anything; the message says why."""


def bad_text(value: str) -> bool:
    """True for text no database column should receive: NUL, or a lone surrogate (not
    encodable as UTF-8)."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def once_per_request(name: str, make):
    """``make()``'s answer, made once per request and kept with the request itself: g
    outlives a request when an app context was pushed before it (as scripts and tests do)."""
    key = "locker." + name
    if key not in request.environ:
        request.environ[key] = make()
    return request.environ[key]


def parse_json_body() -> object:
    """The request's JSON, checked: BadInput when it is not JSON, nests deeper than
    MAX_JSON_DEPTH, or holds text with NUL or lone surrogates (keys included). Parsed once
    per request: the rate limits and the view all ask for it."""
    return once_per_request("checked_json", _parse_json_body)


def _parse_json_body() -> object:
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH applies: 413 before this
    if not raw.strip():
        return None  # the caller says what shape it expected
    try:
        document = json.loads(raw)
    except RecursionError:
        raise BadInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body is not valid JSON") from None
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, str):
            if bad_text(value):
                raise BadInput("text with a NUL byte or an unpaired surrogate")
        elif isinstance(value, dict):
            for key, item in value.items():
                if bad_text(key):
                    raise BadInput("a key with a NUL byte or an unpaired surrogate")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return document


def whole_number(raw: str | None, name: str, default: int = 0) -> int:
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise BadInput(f"{name} must be a whole number from 0 to 999999999999999999")
    return int(raw)


def seconds(raw: str | None, name: str, maximum: float) -> float:
    if raw is None or raw == "":
        return 0.0
    if not _SECONDS.fullmatch(raw):
        raise BadInput(f"{name} must be a number of seconds such as 20 or 2.5")
    return min(float(raw), maximum)


def register_input_guard(app: Flask) -> None:
    @app.before_request
    def refuse_unusable_characters():
        # A NUL in a URL part never names anything here (PostgreSQL would refuse it).
        if "\x00" in request.path:
            abort(404)
        # Query parameters are never names or addresses: refused whole. Form fields go on to
        # their validators (a name is cleaned of control characters there), and the
        # database guard below catches whatever still carries a NUL.
        for key, values in request.args.lists():
            if bad_text(key) or any(bad_text(v) for v in values):
                abort(400, f"{key!r} holds a NUL byte or an unpaired surrogate")

    @app.errorhandler(NulInText)
    def nul_refused(error):
        from flask import jsonify, render_template
        from flask_babel import gettext as _
        from locker_app.extensions import db
        db.session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(error="text with a NUL byte is not accepted"), 400
        return render_template("error.html", code=400, message=_(
            "Something in the request was not right. Please go back and try again.")), 400


class NulInText(BadInput):
    """A NUL byte on its way into PostgreSQL, which refuses it in text."""


def guard_postgresql(engine) -> None:
    """Check every parameter for NUL before PostgreSQL sees it (it would answer with an
    error the request could not explain)."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def refuse_nul(conn, cursor, statement, parameters, context, executemany):
        rows = parameters if executemany else [parameters]
        for row in rows or ():
            values = row.values() if isinstance(row, dict) else (row or ())
            for value in values:
                if isinstance(value, str) and "\x00" in value:
                    raise NulInText("text with a NUL byte")
