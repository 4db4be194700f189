"""Visitor pages: what is free, reserve, the reservation with its QR code, cancel."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps

from flask import (Response, abort, current_app, flash, redirect, render_template, request,
                   session, url_for)
from flask_babel import get_locale, gettext as _
from sqlalchemy import select

from locker_app.booking import bp
from locker_app.booking.forms import CancelForm, ReservationForm
from locker_app.extensions import db
from locker_app.models import ItemType, Site, utcnow
from locker_app.limits import booking_limits, cancel_limit, client_key
from locker_app.security import safe_next
from locker_app.shared.fields import chosen_window, show_error
from locker_app.shared.reservation_page import public_url, qr_svg, reservation_page_values
from locker_app.services import (booking, booking_keys, free_times, people, reports, reservations,
                                 rules)
from locker_app.services.errors import DomainError, NotFound, SoldOut
from locker_app.services.sold_out_memo import sold_out_memo
from locker_app.services.timeutil import to_local


def _site(slug: str) -> Site:
    site = reservations.site_by_slug(db.session, slug)
    if site is None:
        abort(404)
    return site


def _person(email: str | None = None) -> people.Person:
    return people.Person(email, tuple(session.get("mine", [])[-50:]), client_key(),
                          current_app.config["ADDRESS_MAX_ACTIVE"])


def _locale() -> str:
    return str(get_locale() or "de")


@bp.get("/")
def index():
    sites = db.session.scalars(select(Site).where(Site.retired_at.is_(None)).order_by(Site.name)).all()
    if len(sites) == 1:
        return site_index(sites[0].slug)
    return render_template("booking/sites.html", sites=sites, locale=_locale())


@bp.get("/s/<slug>/")
def site_index(slug: str):
    site = _site(slug)
    now = utcnow()
    offers = reservations.availability(db.session, site, now, now + timedelta(minutes=1))
    return render_template("booking/index.html", site=site, offers=offers, locale=_locale())


def _suggested_window(site: Site, item_type: ItemType) -> tuple[datetime, datetime]:
    """Now, when the locker is open (a visitor standing at the cabinet gets the door open at
    once); else the next quarter hour."""
    rule = rules.rule_for(db.session, site, item_type)
    now = utcnow()
    local_now = to_local(now)
    if rules.is_open(db.session, site, now):
        start = local_now.replace(second=0, microsecond=0)
    else:
        start = (local_now + timedelta(minutes=15 - local_now.minute % 15)).replace(
            second=0, microsecond=0)
    length = min(timedelta(hours=2), timedelta(minutes=rule.max_loan_minutes))
    return start, start + length


# The answers that make a form's key in the sold-out memo: the window as typed.
FORM_WINDOW = ("date", "start", "end_date", "end")
# What the short sold-out page hands back to the form, so that nothing typed is lost.
FORM_ANSWERS = FORM_WINDOW + ("name", "email", "booking_key", "csrf_token")


def _typed_window(slug: str, type_code: str) -> tuple[str, ...]:
    return ("form", slug, type_code) + tuple(request.form.get(name, "") for name in FORM_WINDOW)


def sold_out_first(view):
    """A form whose window was found sold out a moment ago gets a short page at once: the
    refusal and one button back to the form with every answer kept. In a rush for the last
    items, the whole form page again (its checks, the limits, the free times, nine
    statements) made each of 990 refusals cost about 10 ms, and the last waited 8 to 11 s
    (bench.booking_rush --via form). The one-time key is still asked first: a form sent twice
    finds the booking it made. Like the API's refusal from memory, it is not counted by the
    limits: it books nothing."""
    @wraps(view)
    def answer(slug: str, type_code: str):
        if request.method == "POST" and "change" not in request.form:
            refusal = sold_out_memo().sold_out(_typed_window(slug, type_code))
            if refusal and not _booked_with_this_form():
                answers = [(name, request.form.get(name, "")) for name in FORM_ANSWERS]
                return render_template("booking/sold_out.html", refusal=refusal, slug=slug,
                                       type_code=type_code, answers=answers,
                                       locale=_locale()), 409
        return view(slug, type_code)
    return answer


def _booked_with_this_form() -> bool:
    key = _readable_key(request.form.get("booking_key"))
    return key is not None and booking.booked_with_key(db.session, key) is not None


def _readable_key(raw: str | None) -> str | None:
    """A form's one-time key as stored, when it sent a readable one."""
    return booking_keys.stored_form(raw) if raw and booking_keys.KEY.fullmatch(raw) else None


@bp.route("/s/<slug>/reserve/<type_code>", methods=["GET", "POST"])
@sold_out_first
@booking_limits
def reserve(slug: str, type_code: str):
    """The form, then (step "check") the answers to check with a change button for each,
    then the booking. A POST without a step books at once (scripts, the tests' helpers)."""
    site = _site(slug)
    item_type = db.session.scalars(select(ItemType).where(
        ItemType.code == type_code, ItemType.retired_at.is_(None))).first()
    if item_type is None:
        abort(404)
    form = ReservationForm()
    if request.method == "GET":
        start, end = _suggested_window(site, item_type)
        form.date.data, form.start.data = start.date(), start.time()
        form.end_date.data, form.end.data = end.date(), end.time()
        form.booking_key.data = booking_keys.new_key()
    elif request.form.get("change") in ANSWERS:
        # Back from the check: the form as it was, the chosen field focused.
        return _form_page(site, item_type, form, focus=request.form["change"]), 200
    status, sold_out = 200, False
    if request.method == "POST" and not form.validate_on_submit():
        _check_every_answer(form, site, item_type)
        status = 422
    elif request.method == "POST":
        checking = request.form.get("step") == "check"
        try:
            start, end = chosen_window(form)
            values = dict(site=site, item_type=item_type, start=start, end=end,
                          name=form.name.data, email=form.email.data, person=_person(),
                          grace_minutes=current_app.config["PICKUP_GRACE_MINUTES"])
            if checking:
                booking.check_booking(db.session, **values)
            else:
                key = _booking_key(form)
                reservation, replayed = booking_keys.book_once(db.session, key,
                                                               memo=sold_out_memo(), **values)
        except booking_keys.KeyReused:
            # Back in the browser and sent again with other answers: the booking made with
            # this form stands; a new booking starts from a new form.
            db.session.rollback()
            earlier = booking.booked_with_key(db.session, key)
            flash(_("You already reserved with this form. Here is that reservation; for "
                    "another one, please start again from the site's page."), "info")
            return redirect(url_for("booking.reservation", token=earlier.code))
        except DomainError as error:
            db.session.rollback()
            show_error(form, error)
            if error.field in ANSWERS:  # and whatever else is wrong with the answers
                _check_every_answer(form, site, item_type)
            sold_out = isinstance(error, SoldOut)
            if sold_out:  # the same answers again within a second: the short page
                sold_out_memo().remember(_typed_window(slug, type_code),
                                         {"de": item_type.name("de"), "en": item_type.name("en")})
            status = 409 if sold_out else 422
        else:
            if checking:
                return render_template("booking/check.html", site=site, item_type=item_type,
                                       form=form, start=to_local(start), end=to_local(end),
                                       locale=_locale())
            if reservation.id not in session.get("mine", []):
                session["mine"] = (session.get("mine", []) + [reservation.id])[-50:]
            session["just_booked"] = reservation.id  # the next view shows the confirmation
            response = redirect(url_for("booking.reservation", token=reservation.code))
            if replayed:  # sent twice: booked once (and counted once by the limits)
                response.headers["Idempotent-Replayed"] = "true"
            return response
    return _form_page(site, item_type, form, sold_out=sold_out), status


# The form's answers, each a field that a refusal can be shown next to.
ANSWERS = ("date", "start", "end_date", "end", "name", "email")


def _check_every_answer(form: ReservationForm, site: Site, item_type: ItemType) -> None:
    """Show every answer the booking would refuse next to its field, not only the first:
    three mistakes took three submits (issue 32). The name and the address are checked
    each on its own, the window against the rules when its days and times could be read.
    Run only after something was refused, so a booking that passes checks nothing twice."""
    def show(check) -> None:
        try:
            check()
        except DomainError as error:
            show_error(form, error)

    if not form.name.errors:
        show(lambda: people.clean_name(form.name.data))
    if not form.email.errors:
        show(lambda: people.clean_email(form.email.data))
    if not any(field.errors for field in (form.date, form.start, form.end_date, form.end)):
        def window() -> None:
            start, end = chosen_window(form)
            rules.check_window(db.session, site, item_type,
                               rules.rule_for(db.session, site, item_type), start, end,
                               utcnow(), grace_minutes=current_app.config["PICKUP_GRACE_MINUTES"])
        show(window)


def _booking_key(form: ReservationForm) -> str:
    """The form's one-time key as stored; a form without a readable one (sent by a script)
    gets one of its own, so a booking whose answer was lost is still found."""
    return (_readable_key(form.booking_key.data)
            or booking_keys.stored_form(booking_keys.new_key()))


def _form_page(site: Site, item_type: ItemType, form: ReservationForm, *, focus: str | None = None,
               sold_out: bool = False) -> str:
    rule = rules.rule_for(db.session, site, item_type)
    return render_template(
        "booking/reserve.html", site=site, item_type=item_type, form=form, locale=_locale(),
        focus=focus, sold_out=sold_out,
        rules_sentence=free_times.rules_sentence(db.session, site, item_type, rule, _locale()),
        free_days=free_times.free_days(db.session, site, item_type, utcnow()))


def _reservation_or_404(token: str):
    try:
        return reservations.find_by_code(db.session, token)
    except NotFound:
        abort(404)


def _reservation_page_or_404(token: str):
    """The reservation and what its pages show, in one statement."""
    try:
        reservation, early = reservations.find_with_early_minutes(db.session, token)
    except NotFound:
        abort(404)
    return reservation, reservation_page_values(reservation, early)


@bp.get("/r/<token>")
def reservation(token: str):
    reservation, values = _reservation_page_or_404(token)
    return render_template(
        "booking/reservation.html", reservation=reservation, token=token,
        can_cancel=reservations.can_cancel(reservation), locale=_locale(),
        can_report=reports.can_report_defect(reservation),
        just_booked=session.pop("just_booked", None) == reservation.id
        and reservation.state == "booked", **values)


@bp.get("/r/<token>/ticket")
def ticket(token: str):
    """The ticket to print, its own page: works without JavaScript."""
    reservation, values = _reservation_page_or_404(token)
    return render_template("booking/ticket.html", r=reservation, token=token, lang=_locale(),
                           **values)


@bp.get("/r/<token>/cancel")
def cancel_confirm(token: str):
    """Cancelling asks once more, on its own page."""
    reservation, values = _reservation_page_or_404(token)
    if not reservations.can_cancel(reservation):
        return redirect(url_for("booking.reservation", token=token))
    return render_template("booking/cancel.html", reservation=reservation, token=token,
                           cancel_form=CancelForm(), locale=_locale(), **values)


@bp.get("/r/<token>/qr.svg")
def reservation_qr(token: str):
    reservation = _reservation_or_404(token)
    return Response(qr_svg(public_url(reservation)), mimetype="image/svg+xml")


@bp.post("/r/<token>/cancel")
@cancel_limit
def cancel(token: str):
    reservation = _reservation_or_404(token)
    form = CancelForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        reservations.cancel_reservation(db.session, reservation)
    except DomainError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        flash(_("Your reservation is cancelled."), "info")
    return redirect(url_for("booking.reservation", token=token))


@bp.get("/lang/<code>")
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("booking.index"))
