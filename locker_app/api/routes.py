"""The controller API: JSON over HTTP, one bearer token per controller. (The public API
for apps is in public.py.)"""
from __future__ import annotations

import threading
from datetime import timedelta
from functools import wraps

from flask import current_app, g, jsonify, request

from locker_app.api import bp
from locker_app.extensions import db
from locker_app.input_guard import BadInput, parse_json_body, seconds, whole_number
from locker_app.services import controller_sync, controllers
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
    return jsonify(controller_sync.sync(db.session, g.controller, since,
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


class LongPollPlaces:
    """How many controllers' long polls this process holds at once. Each holds a server
    thread for up to 25 s: without a limit, eight controllers without a broker held every
    thread and the public home page took 24 s."""

    #: When a controller answered at once for want of a place asks again.
    RETRY_SECONDS = 5.0

    def __init__(self, places: int) -> None:
        self._free = threading.BoundedSemaphore(places) if places > 0 else None
        self._lock = threading.Lock()
        self.taken = 0
        self.turned_away = 0

    def take(self) -> bool:
        got = self._free is not None and self._free.acquire(blocking=False)
        with self._lock:
            if got:
                self.taken += 1
            else:
                self.turned_away += 1
        return got

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1
        self._free.release()


def long_poll_places() -> LongPollPlaces:
    """The places of this app (each process has its own)."""
    places = current_app.extensions.get("long_poll_places")
    if places is None:
        places = current_app.extensions.setdefault(
            "long_poll_places", LongPollPlaces(current_app.config["LONG_POLLS_PER_PROCESS"]))
    return places


@bp.get("/controller/commands")
@controller_required
def commands():
    """Long poll: answers at once when a command waits, else after up to ``wait`` seconds.
    When the process holds as many long polls as it may, it answers at once with
    ``retry_after`` (seconds): the controller asks again then."""
    try:
        after = whole_number(request.args.get("after"), "after")
        wait = seconds(request.args.get("wait"), "wait", 25.0)
    except BadInput as error:
        return jsonify(error=str(error)), 400
    if wait <= 0:
        return jsonify(commands=pending_for(db.session, g.controller, after, 0.0))
    places = long_poll_places()
    if not places.take():
        return jsonify(commands=pending_for(db.session, g.controller, after, 0.0),
                       retry_after=LongPollPlaces.RETRY_SECONDS)
    try:
        return jsonify(commands=pending_for(db.session, g.controller, after, wait))
    finally:
        places.give_back()
