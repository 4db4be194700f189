"""The controller API: JSON over HTTP, one bearer token per controller. (The public API
for apps is in public.py.)"""
from __future__ import annotations

from datetime import timedelta
from functools import wraps

from flask import current_app, g, jsonify, request

from locker_app.api import bp
from locker_app.extensions import db
from locker_app.input_guard import BadInput, parse_json_body, seconds, whole_number
from locker_app.services import controllers
from locker_app.services.commands import pending_for
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
        since = whole_number(request.args.get("since"), "since")
    except BadInput as error:
        return jsonify(error=str(error)), 400
    return jsonify(controllers.sync(db.session, g.controller, since,
                                    current_app.config["SYNC_PAGE_SIZE"]))


@bp.post("/controller/events")
@controller_required
def events():
    try:
        parsed = controllers.parse_events(parse_json_body())
    except (BadInput, DomainError) as error:
        return jsonify(error=str(error)), 400
    ahead = timedelta(minutes=current_app.config["EVENT_CLOCK_AHEAD_MINUTES"])
    return jsonify(controllers.store_events(db.session, g.controller, parsed, ahead))


@bp.post("/controller/status")
@controller_required
def status():
    try:
        controllers.store_status(db.session, g.controller, parse_json_body())
    except (BadInput, DomainError) as error:
        return jsonify(error=str(error)), 400
    return jsonify(ok=True)


@bp.get("/controller/commands")
@controller_required
def commands():
    """Long poll: answers at once when a command waits, else after up to ``wait`` seconds."""
    try:
        after = whole_number(request.args.get("after"), "after")
        wait = seconds(request.args.get("wait"), "wait", 25.0)
    except BadInput as error:
        return jsonify(error=str(error)), 400
    return jsonify(commands=pending_for(db.session, g.controller, after, wait))
