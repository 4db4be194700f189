"""The controller API: JSON over HTTP, one bearer token per controller."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, g, jsonify, request
from sqlalchemy import select

from locker_app.api import bp
from locker_app.extensions import db
from locker_app.limits import booking_limits, client_key
from locker_app.input_guard import BadInput, parse_json_body, seconds, whole_number
from locker_app.models import ItemType, Site
from locker_app.services import controllers
from locker_app.services import reservations as booking
from locker_app.services.commands import pending_for
from locker_app.services.errors import DomainError
from locker_app.services.mail import reservation_url
from locker_app.services.timeutil import aware_utc, local_to_utc, utc_naive


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


def _parse_time(raw: object, field: str):
    """ISO 8601; with an offset it is converted, without one it is Berlin wall-clock time."""
    if not isinstance(raw, str) or len(raw) > 40:
        raise DomainError(f"{field} must be an ISO 8601 time such as 2026-06-10T10:30", field)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(f"{field} must be an ISO 8601 time such as 2026-06-10T10:30", field) from None
    if moment.tzinfo is None:
        return local_to_utc(moment.date(), moment.time(), field=field)
    return utc_naive(moment, field)


@bp.post("/reservations")
@booking_limits
def create_reservation():
    """Book as the visitor's form does, for apps and the phone service."""
    try:
        payload = parse_json_body()
    except BadInput as error:
        return jsonify(error=str(error)), 400
    if not isinstance(payload, dict):
        return jsonify(error="expected a JSON object"), 400
    site = db.session.scalars(select(Site).where(Site.slug == str(payload.get("site", ""))[:40],
                                                 Site.retired_at.is_(None))).first()
    if site is None:
        return jsonify(error="unknown site", field="site"), 422
    item_type = db.session.scalars(select(ItemType).where(
        ItemType.code == str(payload.get("item_type", ""))[:40],
        ItemType.retired_at.is_(None))).first()
    if item_type is None:
        return jsonify(error="unknown item type", field="item_type"), 422
    try:
        start = _parse_time(payload.get("start"), "start")
        end = _parse_time(payload.get("end"), "end")
        name, email = payload.get("name"), payload.get("email")
        if not isinstance(name, (str, type(None))) or not isinstance(email, (str, type(None))):
            raise DomainError("name and email must be strings", "name")
        reservation = booking.create_reservation(
            db.session, site=site, item_type=item_type, start=start, end=end, name=name,
            email=email, grace_minutes=current_app.config["PICKUP_GRACE_MINUTES"],
            # The same per-person rules as the form; no browser session here, so the
            # client's address stands in for it.
            person=booking.Person(email, (), client_key(), current_app.config["ADDRESS_MAX_ACTIVE"]))
    except booking.SoldOut as error:
        return jsonify(error=str(error), code="sold_out"), 409
    except DomainError as error:
        db.session.rollback()
        return jsonify(error=str(error), field=error.field), 422
    return jsonify(id=reservation.id, state=reservation.state, code=reservation.code,
                   url=reservation_url(reservation, request.url_root), compartment=reservation.compartment.number,
                   start=aware_utc(reservation.start_at).isoformat(),
                   end=aware_utc(reservation.end_at).isoformat(),
                   pickup_until=aware_utc(reservation.pickup_until).isoformat()), 201


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
