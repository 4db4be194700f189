"""The public API for apps (the town's app first): sites, item types with their rules, free
times, and reservations booked, looked up and cancelled with their code. The OpenAPI 3.1
description at /api/v1/openapi.json is made from these models and routes by spectree."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request
from flask_babel import get_locale, gettext as _
from spectree import Response, SpecTree
from sqlalchemy import select

from locker_app.api import bp
from locker_app.api.schemas import (ERRORS, MAX_AVAILABILITY_DAYS, AvailabilityOut,
                                    AvailabilityQuery, CabinetOut, Day, Error, FreeRange,
                                    ItemTypeOut, ItemTypesOut, ReservationIn, ReservationOut,
                                    Rules, SiteOut, SitesOut, TypeAvailability)
from locker_app.extensions import db
from locker_app.input_guard import BadInput, parse_json_body
from locker_app.limits import booking_limits, cancel_limit, client_key
from locker_app.models import BookingRule, ItemType, Reservation, Site, utcnow
from locker_app.services import free_times, rules
from locker_app.services import booking, reservations
from locker_app.services import booking_keys
from locker_app.services.errors import DomainError, NotFound, SoldOut
from locker_app.services.sold_out_memo import sold_out_memo
from locker_app.services.mail import reservation_url
from locker_app.services.timeutil import aware_utc, local_to_utc, utc_naive



def _reject_validation_errors(req, resp, error, instance, adapter) -> None:
    """spectree's own answer to a request that does not fit the models, rewritten as our
    stable error object (the first problem, in plain words)."""
    if error is None or resp is None:
        return
    if req.method == "POST" and not req.is_json:
        resp.set_data(json.dumps({"error": _("Please send a JSON object (Content-Type: "
                                             "application/json)."),
                                  "code": "bad_request", "field": None}))
        resp.status_code = 400
        resp.mimetype = "application/json"
        return
    problems = adapter.validation_errors(error) if adapter else []
    first = problems[0] if problems else {}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    field = where[0] if where else None
    message = _("Please check %(field)s: %(problem)s", field=field or _("the request"),
                problem=first.get("msg", "not valid"))
    resp.set_data(json.dumps({"error": message, "code": "invalid", "field": field}))
    resp.status_code = 422
    resp.mimetype = "application/json"


spec = SpecTree(
    # spectree leaves out the routes under its own path, so it serves from a side path and
    # /api/v1/openapi.json (below) hands out the same document.
    "flask", title="Stadtpark-Schließfach API", version="1.0.0", path="api/v1/spec",
    filename="openapi.json", page_templates={}, before=_reject_validation_errors, mode="strict",
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
    description=(
        "Reserve a rollator or a handcart at a park's locker, free of charge. Times without "
        "an offset are the site's local time (Europe/Berlin). Errors are always "
        '{"error": <plain sentence in the language asked for by Accept-Language>, "code": '
        "<stable machine-readable code>, \"field\": <the field concerned or null>}."))


def error(message, code: str, status: int, field: str | None = None):
    return {"error": str(message), "code": code, "field": field}, status


def _locale() -> str:
    return str(get_locale() or "de")


def _rules(site: Site, item_type: ItemType, rule: BookingRule) -> Rules:
    return Rules(summary=free_times.rules_sentence(db.session, site, item_type, rule, _locale()),
                 **{name: getattr(rule, name) for name in Rules.model_fields if name != "summary"})


def _site_or_none(slug: str) -> Site | None:
    return reservations.site_by_slug(db.session, slug[:40])


def _offered(site: Site) -> list[reservations.Availability]:
    now = utcnow()
    return reservations.availability(db.session, site, now, now + timedelta(minutes=1))


@bp.get("/sites")
@spec.validate(resp=Response(HTTP_200=SitesOut), tags=["sites"])
def sites():
    """The sites with a locker, and the item types offered at each."""
    found = db.session.scalars(select(Site).where(Site.retired_at.is_(None)).order_by(Site.name)).all()
    return SitesOut(sites=[SiteOut(
        slug=site.slug, name=site.name, address=site.address, directions=site.directions,
        hotline=site.hotline, item_types=[offer.item_type.code for offer in _offered(site)])
        for site in found])


@bp.get("/sites/<slug>/item-types")
@spec.validate(resp=Response(HTTP_200=ItemTypesOut, **ERRORS), tags=["sites"])
def item_types(slug: str):
    """The item types at a site: names, how many there are and are free now, the rules."""
    site = _site_or_none(slug)
    if site is None:
        return error(_("There is no such site."), "unknown_site", 404, "slug")
    offers = _offered(site)
    found = {rule.item_type_id: rule for rule in rules.rules_for_site(
        db.session, site, {offer.item_type.id for offer in offers})}
    locale = _locale()
    return ItemTypesOut(site=site.slug, item_types=[ItemTypeOut(
        code=offer.item_type.code, name=offer.item_type.name(locale),
        plural=offer.item_type.plural(locale),
        description=getattr(offer.item_type, f"description_{locale}", None),
        items=offer.total, free_now=offer.free,
        rules=_rules(site, offer.item_type, found[offer.item_type.id])) for offer in offers])


@bp.get("/sites/<slug>/availability")
@spec.validate(query=AvailabilityQuery, resp=Response(HTTP_200=AvailabilityOut, **ERRORS),
               tags=["sites"])
def site_availability(slug: str):
    """Free times per item type and day: the stretches in which at least one is free, in
    quarter hours within the opening hours."""
    site, offered = reservations.offered_items(db.session, slug[:40])
    if site is None:
        return error(_("There is no such site."), "unknown_site", 404, "slug")
    query: AvailabilityQuery = request.context.query
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    now = utcnow()
    first = query.from_ or aware_utc(now).astimezone(zone).date()
    last = query.to or first + timedelta(days=6)
    if last < first:
        return error(_("The last day must not be before the first."), "invalid", 422, "to")
    if (last - first).days + 1 > MAX_AVAILABILITY_DAYS:
        return error(_("Please ask for at most %(days)d days at once.", days=MAX_AVAILABILITY_DAYS),
                     "invalid", 422, "to")
    offers = [(item_type, items) for item_type, items in offered
              if query.item_type is None or item_type.code == query.item_type]
    if query.item_type is not None and not offers:
        return error(_("There is no such item type at this site."), "unknown_item_type", 404,
                     "item_type")

    result = []
    free = free_times.free_days_by_type(
        db.session, site, [item_type.id for item_type, _items in offers], now,
        days=(last - first).days + 1, first=first,
        items={item_type.id: items for item_type, items in offers})
    for item_type, _items in offers:
        days = free[item_type.id]
        result.append(TypeAvailability(item_type=item_type.code, days=[
            Day(date=day.day, open=not day.closed,
                free=[FreeRange(start=a.astimezone(zone), end=b.astimezone(zone))
                      for a, b in day.spans]) for day in days]))
    return AvailabilityOut(site=site.slug, timezone=str(zone), item_types=result)


def json_guard(view):
    """The input guard before the models see the body: no NUL, no endless nesting."""
    @wraps(view)
    def guarded(*args, **kwargs):
        try:
            parse_json_body()
        except BadInput as refusal:
            return error(refusal, "bad_request", 400)
        return view(*args, **kwargs)
    return guarded


# The fields of a booking that make the sold-out memo's key: read from the raw body before
# the limits (sold_out_first) and from the checked one when remembered (create_reservation).
WINDOW_FIELDS = ("site", "item_type", "start", "end")


def sold_out_first(view):
    """A window found sold out a moment ago is refused before the rate limits and the
    checks of the body: when hundreds ask for the last items at once, the limits cost a
    refusal as much as the rest of it (bench.booking_rush). Such an answer books nothing and
    reads no database, so counting it against a limit would protect nothing."""
    @wraps(view)
    def answer(*args, **kwargs):
        try:
            payload = parse_json_body()
        except BadInput:
            payload = None
        window = (tuple(payload.get(field) for field in WINDOW_FIELDS)
                  if isinstance(payload, dict) else ())
        # Only what passed the checks once is remembered, so a window of strings that is
        # remembered needs no second check.
        if window and all(isinstance(part, str) for part in window):
            refusal = sold_out_memo().sold_out(window)
            if refusal:
                return error(refusal, "sold_out", 409)
        return view(*args, **kwargs)
    return answer


def _parse_time(raw: str, field: str) -> datetime:
    """ISO 8601; with an offset it is converted, without one it is the site's local time."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(_("%(field)s must be an ISO 8601 time such as 2026-06-10T10:30",
                            field=field), field) from None
    if moment.tzinfo is None:
        return local_to_utc(moment.date(), moment.time(), field=field)
    return utc_naive(moment, field)


def reservation_out(reservation: Reservation, rule: BookingRule | None = None) -> ReservationOut:
    compartment = reservation.compartment
    site = compartment.cabinet.site
    item_type = reservation.item.item_type
    return ReservationOut(
        id=reservation.id, state=reservation.state, code=reservation.code,
        numeric_code=reservation.numeric_code if reservation.state in ("booked", "picked_up", "overdue") else None,
        url=reservation_url(reservation, request.url_root),
        qr_svg_url=reservation_url(reservation, request.url_root) + "/qr.svg",
        site=site.slug, item_type=item_type.code, compartment=compartment.number,
        cabinet=CabinetOut(name=compartment.cabinet.name, location=compartment.cabinet.location),
        start=aware_utc(reservation.start_at), end=aware_utc(reservation.end_at),
        pickup_until=aware_utc(reservation.pickup_until),
        can_cancel=reservations.can_cancel(reservation),
        rules=_rules(site, item_type, rule or rules.rule_for(db.session, site, item_type)))


@bp.post("/reservations")
@sold_out_first
@booking_limits
@json_guard
@spec.validate(json=ReservationIn,
               resp=Response(HTTP_201=ReservationOut, HTTP_409=Error, **ERRORS),
               tags=["reservations"])
def create_reservation():
    """Book as the visitor's form does: the same rules, the same limits per person and per
    client address. The answer carries the code, the numeric code and the page link.

    Send an ``Idempotency-Key`` header (16 to 64 letters, digits, '-' or '_', new for each
    booking) to retry safely: the same key never books twice, and a retry is answered with
    the booking made (header ``Idempotent-Replayed: true``); the key used for another
    booking is refused (409 ``key_reused``)."""
    payload: ReservationIn = request.context.json
    window = tuple(getattr(payload, field) for field in WINDOW_FIELDS)
    try:
        start = _parse_time(payload.start, "start")
        end = _parse_time(payload.end, "end")
        unreadable = None
    except DomainError as refusal:  # answered after an unknown site or item type
        start = end = None
        unreadable = refusal
    # The site, the item type and their rule in one statement; which one is missing is
    # asked only when one is.
    found = reservations.booking_context(db.session, payload.site[:40], payload.item_type[:40])
    if found is None:
        if _site_or_none(payload.site) is None:
            return error(_("There is no such site."), "unknown_site", 422, "site")
        return error(_("There is no such item type."), "unknown_item_type", 422, "item_type")
    if unreadable is not None:
        return error(unreadable, "refused", 422, unreadable.field)
    site, item_type, rule = found
    rule = rules.or_defaults(rule)
    names = {"de": item_type.name("de"), "en": item_type.name("en")}
    try:
        sent = booking_keys.stored_form(request.headers.get("Idempotency-Key"),
                                        "Idempotency-Key")
    except DomainError as refusal:
        return error(refusal, "invalid", 400, refusal.field)
    # What was just written is answered from memory: not expired by the commit, so the
    # answer does not read the reservation, its compartment and item again.
    session = db.session()
    session.expire_on_commit = False
    try:
        reservation, replayed = booking_keys.book_once(
            db.session, sent or booking_keys.stored_form(booking_keys.new_key()),
            ours=sent is None, site=site, item_type=item_type, start=start, end=end,
            name=payload.name,
            email=payload.email, grace_minutes=current_app.config["PICKUP_GRACE_MINUTES"],
            rule=rule,
            # The same per-person rules as the form; no browser session here, so the
            # client's address stands in for it.
            person=booking.Person(payload.email, (), client_key(),
                                  current_app.config["ADDRESS_MAX_ACTIVE"]))
    except SoldOut as refusal:
        sold_out_memo().remember(window, names)
        return error(refusal, "sold_out", 409)
    except booking_keys.KeyReused as refusal:
        db.session.rollback()
        return error(refusal, "key_reused", 409, "Idempotency-Key")
    except DomainError as refusal:
        db.session.rollback()
        return error(refusal, "refused", 422, refusal.field)
    finally:
        session.expire_on_commit = True
    if replayed:  # the booking made before with this key, answered as then
        return reservation_out(reservation, rule), 201, {"Idempotent-Replayed": "true"}
    return reservation_out(reservation, rule), 201


def _by_code(code: str) -> Reservation:
    return reservations.find_by_code(db.session, code[:2000])


@bp.get("/reservations/<code>")
@spec.validate(resp=Response(HTTP_200=ReservationOut, **ERRORS), tags=["reservations"])
def lookup_reservation(code: str):
    """A reservation by its code (the one in the QR code and the page link)."""
    try:
        return reservation_out(_by_code(code))
    except NotFound as missing:
        return error(missing, "not_found", 404, "code")


@bp.post("/reservations/<code>/cancel")
@cancel_limit
@spec.validate(resp=Response(HTTP_200=ReservationOut, HTTP_409=Error, **ERRORS),
               tags=["reservations"])
def cancel_reservation(code: str):
    """Cancel before the pickup time; the item is free for others at once."""
    try:
        reservation = _by_code(code)
    except NotFound as missing:
        return error(missing, "not_found", 404, "code")
    if reservation.state == "cancelled":
        return reservation_out(reservation)  # asked twice: the same answer
    try:
        reservations.cancel_reservation(db.session, reservation)
    except DomainError as refusal:
        db.session.rollback()
        return error(refusal, "not_cancellable", 409)
    return reservation_out(reservation)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 description of this API, made by spectree from the routes above."""
    return jsonify(spec.spec)


def register_openapi(app) -> None:
    spec.register(app)

