"""Error pages in plain language: never a stack trace, JSON for the API."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


JSON_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large"}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


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
            return jsonify(error=error.description or message, field=None,
                           code=JSON_CODES.get(error.code, "http_error")), error.code
        return render_template("error.html", message=message, code=error.code), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        logger.exception("unexpected error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error="internal error; the server log has the details",
                           code="internal", field=None), 500
        message = _("Something went wrong on our side. Please try again in a moment.")
        return render_template("error.html", message=message, code=500), 500
