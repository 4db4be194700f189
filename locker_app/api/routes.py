"""The controller API: JSON over HTTP, one bearer token per controller."""
from __future__ import annotations

from functools import wraps

from flask import current_app, g, jsonify, request

from locker_app.api import bp
from locker_app.extensions import db
from locker_app.services import controllers
from locker_app.services.errors import DomainError


def controller_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        controller = controllers.authenticate(db.session, token)
        if controller is None:
            response = jsonify(error="unknown or missing controller token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="locker"'
            return response, 401
        g.controller = controller
        return view(*args, **kwargs)
    return wrapper


@bp.get("/controller/sync")
@controller_required
def sync():
    try:
        since = int(request.args.get("since", "0"))
    except ValueError:
        return jsonify(error="since must be a whole number"), 400
    return jsonify(controllers.sync(db.session, g.controller, max(since, 0),
                                    current_app.config["SYNC_PAGE_SIZE"]))


@bp.post("/controller/events")
@controller_required
def events():
    payload = request.get_json(silent=True)
    try:
        parsed = controllers.parse_events(payload)
    except DomainError as error:
        return jsonify(error=str(error)), 400
    return jsonify(controllers.store_events(db.session, g.controller, parsed))
