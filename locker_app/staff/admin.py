"""Administration: sites with opening hours, cabinets and compartments, item types and
their rules, controllers (staff accounts and the audit log: admin_accounts.py). Nothing
with history is deleted: it is retired."""
from __future__ import annotations

from datetime import date, time

from babel.dates import get_day_names
from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from locker_app.extensions import db
from locker_app.models import (RULE_DEFAULTS, BookingRule, Cabinet, Compartment, Controller,
                               ItemType, OpeningHours, Site, SpecialDay, utcnow)
from locker_app.services import controllers as controller_service
from locker_app.services.timeutil import to_local
from locker_app.staff import admin_bp as bp
from locker_app.staff.common import audit, get_or_404, saved
from locker_app.staff.forms import (options, CabinetForm, CompartmentForm, ControllerForm,
                                    ItemTypeForm, RuleForm, SiteForm, SpecialDayForm)
from locker_app.auth.forms import ConfirmForm
from locker_app.staff.confirm import asks_once_more



def weekday_names() -> list[str]:
    names = get_day_names("wide", locale=str(get_locale() or "de"))
    return [names[day] for day in range(7)]  # 0 = Monday, as OpeningHours counts


def _commit_or_error(form, message: str) -> bool:
    try:
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        form.form_errors.append(message)
        return False


# Sites -------------------------------------------------------------------------------------
@bp.get("/sites")
def sites():
    return render_template("staff/admin/sites.html",
                           sites=db.session.scalars(select(Site).order_by(Site.name)).all(),
                           retire_form=ConfirmForm())


@bp.route("/sites/new", methods=["GET", "POST"])
@bp.route("/sites/<int:site_id>", methods=["GET", "POST"])
def site_edit(site_id: int | None = None):
    site = get_or_404(Site, site_id) if site_id else None
    form = SiteForm(obj=site)
    if form.validate_on_submit():
        site = site or Site()
        form.populate_obj(site)
        for name in ("address", "directions", "hotline", "on_duty_email"):
            setattr(site, name, (getattr(site, name) or "").strip() or None)
        db.session.add(site)
        audit("site_saved", form.slug.data, {"name": form.name.data})
        if _commit_or_error(form, _("Another site already uses this short name.")):
            saved()
            return redirect(url_for("admin.site_edit", site_id=site.id))
    hours = {}
    specials = []
    if site:
        hours = {h.weekday: h for h in db.session.scalars(
            select(OpeningHours).where(OpeningHours.site_id == site.id))}
        specials = db.session.scalars(select(SpecialDay).where(
            SpecialDay.site_id == site.id, SpecialDay.day >= to_local(utcnow()).date())
            .order_by(SpecialDay.day)).all()
    return render_template("staff/admin/site.html", site=site, form=form, hours=hours,
                           weekdays=weekday_names(), specials=specials, special_form=SpecialDayForm(),
                           hours_form=ConfirmForm()), 422 if request.method == "POST" else 200


def _retiring_site(site_id: int):
    site = get_or_404(Site, site_id)
    return None if site.retired_at else (
        _("Retire the site %(name)s? Visitors can no longer book there.", name=site.name),
        _("Yes, retire the site"))


@bp.post("/sites/<int:site_id>/retire")
@asks_once_more(_retiring_site)
def site_retire(site_id: int):
    site = get_or_404(Site, site_id)
    if ConfirmForm().validate_on_submit():
        site.retired_at = None if site.retired_at else utcnow()
        audit("site_retired" if site.retired_at else "site_reactivated", site.slug)
        db.session.commit()
        saved()
    return redirect(url_for("admin.sites"))


def _clock(text: str | None) -> time | None:
    try:
        return time.fromisoformat(text) if text else None
    except ValueError:
        return None


@bp.post("/sites/<int:site_id>/hours")
def site_hours(site_id: int):
    """Seven rows: opens and closes per weekday; both empty means closed that day."""
    site = get_or_404(Site, site_id)
    if not ConfirmForm().validate_on_submit():
        flash(_("The form was too old. Please try again."), "error")
        return redirect(url_for("admin.site_edit", site_id=site.id))
    problems = []
    wanted = {}
    for weekday in range(7):
        raw_open, raw_close = request.form.get(f"opens-{weekday}"), request.form.get(f"closes-{weekday}")
        opens, closes = _clock(raw_open), _clock(raw_close)
        if not raw_open and not raw_close:
            wanted[weekday] = None
        elif opens is None or closes is None or closes <= opens:
            problems.append(weekday_names()[weekday])
        else:
            wanted[weekday] = (opens, closes)
    if problems:
        flash(_("Please check the hours for: %(days)s. Closing must be after opening; leave "
                "both empty for closed.", days=", ".join(problems)), "error")
        return redirect(url_for("admin.site_edit", site_id=site.id))
    existing = {h.weekday: h for h in db.session.scalars(
        select(OpeningHours).where(OpeningHours.site_id == site.id))}
    for weekday, value in wanted.items():
        row = existing.get(weekday)
        if value is None and row:
            db.session.delete(row)
        elif value and row:
            row.opens, row.closes = value
        elif value:
            db.session.add(OpeningHours(site_id=site.id, weekday=weekday, opens=value[0],
                                        closes=value[1]))
    audit("opening_hours_saved", site.slug, {str(k): v and f"{v[0]:%H:%M}-{v[1]:%H:%M}"
                                              for k, v in wanted.items()})
    db.session.commit()
    saved()
    return redirect(url_for("admin.site_edit", site_id=site.id))


@bp.post("/sites/<int:site_id>/special-days")
def special_day(site_id: int):
    site = get_or_404(Site, site_id)
    form = SpecialDayForm()
    if form.validate_on_submit():
        opens, closes = form.opens.data, form.closes.data
        if bool(opens) != bool(closes) or (opens and closes <= opens):
            flash(_("Give both times with closing after opening, or none for closed all day."),
                  "error")
        else:
            row = db.session.scalars(select(SpecialDay).where(
                SpecialDay.site_id == site.id, SpecialDay.day == form.day.data)).first() \
                or SpecialDay(site_id=site.id, day=form.day.data)
            row.opens, row.closes, row.note = opens, closes, form.note.data or None
            db.session.add(row)
            audit("special_day_saved", site.slug, {"day": form.day.data.isoformat(),
                                                   "hours": opens and f"{opens:%H:%M}-{closes:%H:%M}"})
            db.session.commit()
            saved()
    else:
        flash(_("Please choose a day."), "error")
    return redirect(url_for("admin.site_edit", site_id=site.id))


@bp.post("/sites/<int:site_id>/special-days/<day>/delete")
def special_day_delete(site_id: int, day: str):
    site = get_or_404(Site, site_id)
    try:
        when = date.fromisoformat(day)
    except ValueError:
        return redirect(url_for("admin.site_edit", site_id=site.id))
    row = db.session.scalars(select(SpecialDay).where(SpecialDay.site_id == site.id,
                                                      SpecialDay.day == when)).first()
    if row and ConfirmForm().validate_on_submit():
        db.session.delete(row)
        audit("special_day_removed", site.slug, {"day": day})
        db.session.commit()
        saved(_("The special day is removed; the usual hours apply."))
    return redirect(url_for("admin.site_edit", site_id=site.id))


# Cabinets and compartments --------------------------------------------------------------
@bp.route("/cabinets/new", methods=["GET", "POST"])
@bp.route("/cabinets/<int:cabinet_id>/edit", methods=["GET", "POST"])
def cabinet_edit(cabinet_id: int | None = None):
    cabinet = get_or_404(Cabinet, cabinet_id) if cabinet_id else None
    form = CabinetForm(obj=cabinet)
    form.site.choices = options([(s.id, s.name) for s in db.session.scalars(
        select(Site).where(Site.retired_at.is_(None)).order_by(Site.name))])
    if cabinet and request.method == "GET":
        form.site.data = cabinet.site_id
    if form.validate_on_submit():
        cabinet = cabinet or Cabinet(serial_port="/dev/ttyUSB0")
        cabinet.site_id = form.site.data
        cabinet.name, cabinet.location = form.name.data.strip(), (form.location.data or "").strip() or None
        cabinet.location_en = (form.location_en.data or "").strip() or None
        cabinet.board_family = form.board_family.data
        cabinet.baudrate = 9600 if form.board_family.data == "A" else 19200
        cabinet.inverted_polarity = form.inverted_polarity.data
        db.session.add(cabinet)
        db.session.flush()
        audit("cabinet_saved", cabinet.name, {"family": cabinet.board_family,
                                              "inverted_polarity": cabinet.inverted_polarity})
        db.session.commit()
        saved(_("Saved. The controller takes the change with its next sync."))
        return redirect(url_for("staff.cabinet", cabinet_id=cabinet.id))
    return render_template("staff/form.html", form=form,
                           title=_("Edit cabinet") if cabinet else _("New cabinet")), \
        422 if request.method == "POST" else 200


def _retiring_cabinet(cabinet_id: int):
    cabinet = get_or_404(Cabinet, cabinet_id)
    return None if cabinet.retired_at else (
        _("Retire the cabinet %(name)s? Its items can no longer be booked.", name=cabinet.name),
        _("Yes, retire the cabinet"))


@bp.post("/cabinets/<int:cabinet_id>/retire")
@asks_once_more(_retiring_cabinet)
def cabinet_retire(cabinet_id: int):
    cabinet = get_or_404(Cabinet, cabinet_id)
    if ConfirmForm().validate_on_submit():
        cabinet.retired_at = None if cabinet.retired_at else utcnow()
        audit("cabinet_retired" if cabinet.retired_at else "cabinet_reactivated", cabinet.name)
        db.session.commit()
        saved()
    return redirect(url_for("staff.cabinet", cabinet_id=cabinet.id))


@bp.route("/cabinets/<int:cabinet_id>/compartments/new", methods=["GET", "POST"])
@bp.route("/compartments/<int:compartment_id>", methods=["GET", "POST"])
def compartment_edit(cabinet_id: int | None = None, compartment_id: int | None = None):
    compartment = get_or_404(Compartment, compartment_id) if compartment_id else None
    cabinet = compartment.cabinet if compartment else get_or_404(Cabinet, cabinet_id)
    form = CompartmentForm(obj=compartment)
    if form.validate_on_submit():
        compartment = compartment or Compartment(cabinet_id=cabinet.id)
        form.populate_obj(compartment)
        db.session.add(compartment)
        audit("compartment_saved", f"{cabinet.name}, compartment {form.number.data}",
              {"board": form.board_address.data, "lock": form.lock_number.data,
               "item_sensor": form.item_sensor.data})
        if _commit_or_error(form, _("Another compartment of this cabinet has this number or "
                                    "this board address and lock.")):
            saved(_("Saved. The controller takes the change with its next sync."))
            return redirect(url_for("staff.cabinet", cabinet_id=cabinet.id))
    return render_template("staff/form.html", form=form,
                           title=_("Compartment of %(cabinet)s", cabinet=cabinet.name)), \
        422 if request.method == "POST" else 200


# Item types and rules ----------------------------------------------------------------------
@bp.get("/item-types")
def item_types():
    return render_template("staff/admin/item_types.html",
                           types=db.session.scalars(select(ItemType).order_by(ItemType.id)).all(),
                           sites=db.session.scalars(select(Site).where(Site.retired_at.is_(None))
                                                    .order_by(Site.name)).all(),
                           retire_form=ConfirmForm(), locale=str(get_locale() or "de"))


@bp.route("/item-types/new", methods=["GET", "POST"])
@bp.route("/item-types/<int:type_id>", methods=["GET", "POST"])
def item_type_edit(type_id: int | None = None):
    kind = get_or_404(ItemType, type_id) if type_id else None
    form = ItemTypeForm(obj=kind)
    if form.validate_on_submit():
        kind = kind or ItemType()
        form.populate_obj(kind)
        db.session.add(kind)
        audit("item_type_saved", form.code.data)
        if _commit_or_error(form, _("Another item type already uses this short name.")):
            saved()
            return redirect(url_for("admin.item_types"))
    return render_template("staff/form.html", form=form,
                           title=_("Edit item type") if kind else _("New item type")), \
        422 if request.method == "POST" else 200


def _retiring_item_type(type_id: int):
    kind = get_or_404(ItemType, type_id)
    locale = str(get_locale() or "de")
    return None if kind.retired_at else (
        _("Stop offering %(items)s? Visitors can no longer book them.",
          items=kind.plural(locale)), _("Yes, stop offering them"))


@bp.post("/item-types/<int:type_id>/retire")
@asks_once_more(_retiring_item_type)
def item_type_retire(type_id: int):
    kind = get_or_404(ItemType, type_id)
    if ConfirmForm().validate_on_submit():
        kind.retired_at = None if kind.retired_at else utcnow()
        audit("item_type_retired" if kind.retired_at else "item_type_reactivated", kind.code)
        db.session.commit()
        saved()
    return redirect(url_for("admin.item_types"))


@bp.route("/rules/<int:site_id>/<int:type_id>", methods=["GET", "POST"])
def rules(site_id: int, type_id: int):
    site, kind = get_or_404(Site, site_id), get_or_404(ItemType, type_id)
    rule = db.session.scalars(select(BookingRule).where(
        BookingRule.site_id == site.id, BookingRule.item_type_id == kind.id)).first()
    form = RuleForm(obj=rule or BookingRule(**RULE_DEFAULTS))
    if form.validate_on_submit():
        if form.max_loan_minutes.data < form.min_loan_minutes.data or form.min_loan_minutes.data < 1:
            form.max_loan_minutes.errors = [_("The longest loan must be at least the shortest, "
                                              "and the shortest at least one minute.")]
        elif form.pickup_window_minutes.data < 1:
            form.pickup_window_minutes.errors = [_("The pickup window needs at least one minute.")]
        else:
            rule = rule or BookingRule(site_id=site.id, item_type_id=kind.id)
            form.populate_obj(rule)
            db.session.add(rule)
            audit("rules_saved", f"{site.slug}/{kind.code}",
                  {name: getattr(rule, name) for name in RULE_DEFAULTS})
            if _commit_or_error(form, _("These values do not fit together.")):
                saved()
                return redirect(url_for("admin.item_types"))
    return render_template("staff/form.html", form=form,
                           title=_("Rules for %(item)s at %(site)s",
                                   item=kind.name(str(get_locale() or "de")), site=site.name)), \
        422 if request.method == "POST" else 200


# Controllers ---------------------------------------------------------------------------------
@bp.route("/cabinets/<int:cabinet_id>/controllers/new", methods=["GET", "POST"])
def controller_new(cabinet_id: int):
    cabinet = get_or_404(Cabinet, cabinet_id)
    form = ControllerForm()
    if form.validate_on_submit():
        controller, token = controller_service.register_controller(db.session, cabinet,
                                                                   form.name.data.strip())
        audit("controller_added", f"{cabinet.name}: {controller.name}")
        db.session.commit()
        return render_template("staff/admin/token.html", controller=controller, token=token)
    return render_template("staff/form.html", form=form,
                           title=_("New controller for %(cabinet)s", cabinet=cabinet.name)), \
        422 if request.method == "POST" else 200


@bp.post("/controllers/<int:controller_id>/rotate")
def controller_rotate(controller_id: int):
    controller = get_or_404(Controller, controller_id)
    if not ConfirmForm().validate_on_submit() or controller.retired_at:
        return redirect(url_for("staff.cabinet", cabinet_id=controller.cabinet_id))
    token = controller_service.rotate_token(db.session, controller)
    audit("controller_token_rotated", f"{controller.cabinet.name}: {controller.name}")
    db.session.commit()
    return render_template("staff/admin/token.html", controller=controller, token=token)


def _retiring_controller(controller_id: int):
    controller = get_or_404(Controller, controller_id)
    return None if controller.retired_at else (
        _("Retire the controller %(name)s? Its token stops working at once.",
          name=controller.name), _("Yes, retire the controller"))


@bp.post("/controllers/<int:controller_id>/retire")
@asks_once_more(_retiring_controller)
def controller_retire(controller_id: int):
    controller = get_or_404(Controller, controller_id)
    if ConfirmForm().validate_on_submit() and controller.retired_at is None:
        controller.retired_at = utcnow()
        audit("controller_retired", f"{controller.cabinet.name}: {controller.name}")
        db.session.commit()
        saved(_("The controller is retired; its token no longer works."))
    return redirect(url_for("staff.cabinet", cabinet_id=controller.cabinet_id))
