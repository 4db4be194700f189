"""Error pages in plain language: never a stack trace, JSON for the API."""
from __future__ import annotations

import logging

import psycopg
from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from locker_app.services.errors import DomainError

logger = logging.getLogger(__name__)


# How long a visitor is asked to wait when the database does not answer (Retry-After).
RETRY_AFTER_SECONDS = 60

JSON_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large"}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(message: str, json_code: str, status: int, field: str | None = None):
    """A refusal in words: the API's error object under /api/, else the error page."""
    if _wants_json():
        response = jsonify(error=message, code=json_code, field=field)
    else:
        response = current_app.make_response(
            render_template("error.html", message=message, code=status))
    response.status_code = status
    return response


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def form_expired(error: CSRFError):
        if _wants_json():
            return jsonify(error=error.description, code="bad_request", field=None), 400
        message = _("This form was open too long or came from another page. Please go back, "
                    "reload the page and try again.")
        return render_template("error.html", message=message, code=400), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            400: _("Something in the request was not right. Please go back and try again."),
            403: _("You may not use this page. Please ask an administrator if you need it."),
            404: _("This page does not exist."),
            405: _("This page cannot be used like that."),
            413: _("That was too much data at once."),
        }
        message = messages.get(error.code, error.description or _("Something went wrong."))
        if _wants_json():  # the API's error object: a sentence and a stable code
            response = jsonify(error=error.description or message, field=None,
                               code=JSON_CODES.get(error.code, "http_error"))
        else:
            response = current_app.make_response(
                render_template("error.html", message=message, code=error.code))
        response.status_code = error.code
        # What the exception says beside its body: a 405's Allow, for one.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(DomainError)
    def refused_input(error: DomainError):
        """A refusal that no view caught (a day in a page's address that cannot be read,
        say): a 400 with its sentence."""
        return error_response(str(error), "invalid", 400, error.field)

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(psycopg.OperationalError)
    def database_unavailable(error: Exception):
        """The database did not answer within DATABASE_TIMEOUT_SECONDS, or not at all: a
        plain "try again in a minute", never a blank wait. Nothing was confirmed, and the
        request's transaction is rolled back when its session closes."""
        logger.error("database unavailable on %s %s: %s", request.method, request.path,
                     getattr(error, "orig", None) or error)
        response = error_response(
            _("That is not possible right now. Please try again in a minute."),
            "unavailable", 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        logger.exception("unexpected error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error="internal error; the server log has the details",
                           code="internal", field=None), 500
        message = _("Something went wrong on our side. Please try again in a moment.")
        return render_template("error.html", message=message, code=500), 500
