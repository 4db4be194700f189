"""Cabinets as staff see them: live status, compartments and their items, remote open;
items in and out of service."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from sqlalchemy import select

from locker_app.extensions import db
from locker_app.models import (Cabinet, Compartment, Controller, Item, ItemType, RemoteCommand,
                               Reservation, Site, utcnow)
from locker_app.services import alerts as alert_service
from locker_app.services import cabinet_status, commands
from locker_app.services.errors import DomainError
from locker_app.services.inventory import back_in_service, take_out_of_service
from locker_app.services.timeutil import to_local
from locker_app.staff import bp
from locker_app.staff.common import audit, get_or_404, who
from locker_app.staff.confirm import asks_once_more
from locker_app.staff.forms import options, ItemForm, ItemServiceForm, OpenForm, ReasonForm

COMMAND_TTL_SECONDS = 60


def command_texts() -> dict[str, str]:
    """What staff are told of a remote open: only what the controller reported."""
    return {
        "pending": _("Waiting for the locker to answer. If it is offline, the command expires "
                     "after a minute and nothing opens."),
        "unlock_sent": _("The locker sent the unlock. The door should be open now."),
        "refused": _("The locker refused the command."),
        "expired": _("The locker did not take the command in time. Nothing was opened."),
    }


@bp.get("/cabinets")
def cabinets():
    return render_template("staff/cabinets.html",
                           statuses=cabinet_status.all_cabinets(db.session), to_local=to_local)


def _cabinet_page(cabinet: Cabinet, open_form: OpenForm | None = None, status: int = 200):
    controllers = db.session.scalars(select(Controller).where(
        Controller.cabinet_id == cabinet.id).order_by(Controller.id)).all()
    state = cabinet_status.status_of(cabinet, controllers, utcnow())
    recent = db.session.scalars(select(RemoteCommand).where(RemoteCommand.cabinet_id == cabinet.id)
                                .order_by(RemoteCommand.id.desc()).limit(10)).all()
    cabinet_alerts = [a for a in alert_service.inbox(db.session)
                      if a.controller.cabinet_id == cabinet.id]
    return render_template(
        "staff/cabinet.html", cabinet=cabinet, status=state, commands=recent,
        describe=commands.describe, texts=command_texts(), alerts=cabinet_alerts,
        title_of=alert_service.alert_title, open_form=open_form or OpenForm(),
        to_local=to_local, locale=str(get_locale() or "de")), status


@bp.get("/cabinets/<int:cabinet_id>")
def cabinet(cabinet_id: int):
    return _cabinet_page(get_or_404(Cabinet, cabinet_id))


def _open(cabinet: Cabinet, compartment: int, reason: str, target: str):
    command = commands.request_open(db.session, cabinet, compartment, requested_by=who(),
                                    reason=reason, ttl_seconds=COMMAND_TTL_SECONDS)
    audit("remote_open", f"{cabinet.name}, compartment {compartment}",
          {"reason": reason, "command": command.uuid, "for": target})
    db.session.commit()
    return redirect(url_for("staff.command", command_id=command.id))


def _opening(cabinet_id: int):
    cabinet, number = get_or_404(Cabinet, cabinet_id), request.form.get("compartment", "")
    if not (request.form.get("reason") or "").strip() or not number.isdigit():
        return None  # refused by the form below, without asking first
    return (_("Open compartment %(number)s of %(cabinet)s from afar? The door springs open "
              "at once.", number=number, cabinet=cabinet.name), _("Yes, open the door"))


@bp.post("/cabinets/<int:cabinet_id>/open")
@asks_once_more(_opening)
def open_compartment(cabinet_id: int):
    cabinet = get_or_404(Cabinet, cabinet_id)
    form = OpenForm()
    if form.validate_on_submit():
        try:
            return _open(cabinet, form.compartment.data, form.reason.data, "service")
        except DomainError:
            db.session.rollback()
            form.compartment.errors = [_("This cabinet has no such compartment.")]
    return _cabinet_page(cabinet, form, 422)


def _opening_for(reservation_id: int):
    r = get_or_404(Reservation, reservation_id)
    if not (request.form.get("open-reason") or "").strip():
        return None
    return (_("Open compartment %(number)s of %(cabinet)s from afar? The door springs open "
              "at once.", number=r.compartment.number, cabinet=r.compartment.cabinet.name),
            _("Yes, open the door"))


@bp.post("/reservations/<int:reservation_id>/open")
@asks_once_more(_opening_for)
def open_for_reservation(reservation_id: int):
    from locker_app.staff.desk import _reservation_page
    r = get_or_404(Reservation, reservation_id)
    form = OpenForm(prefix="open")
    if form.validate_on_submit():
        return _open(r.compartment.cabinet, r.compartment.number, form.reason.data,
                     f"reservation {r.id}")
    return _reservation_page(r, 422, open_form=form)


def _command_view(command: RemoteCommand) -> dict:
    state = commands.describe(command)
    return {"state": state, "text": command_texts().get(state, state),
            "detail": command.result_detail or "", "final": state != "pending"}


@bp.get("/commands/<int:command_id>")
def command(command_id: int):
    found = get_or_404(RemoteCommand, command_id)
    return render_template("staff/command.html", command=found, view=_command_view(found),
                           cabinet=db.session.get(Cabinet, found.cabinet_id), to_local=to_local)


@bp.get("/commands/<int:command_id>.json")
def command_json(command_id: int):
    return jsonify(_command_view(get_or_404(RemoteCommand, command_id)))


# Items -------------------------------------------------------------------------------------
@bp.get("/items")
def items():
    rows = db.session.execute(
        select(Item, Compartment, Cabinet).outerjoin(Item.compartment)
        .outerjoin(Compartment.cabinet).order_by(Cabinet.id, Compartment.number, Item.id)).all()
    return render_template("staff/items.html", rows=rows, locale=str(get_locale() or "de"),
                           service_form=ItemServiceForm(), back_form=ReasonForm())


@bp.post("/items/<int:item_id>/out-of-service")
def item_out(item_id: int):
    item = get_or_404(Item, item_id)
    form = ItemServiceForm()
    if not form.validate_on_submit():
        flash(_("Please give a reason."), "error")
        return redirect(url_for("staff.items"))
    item.service_reason = form.reason.data
    result = take_out_of_service(db.session, item, actor="staff", reason=form.reason.data)
    audit("item_out_of_service", item.label, {"reason": form.reason.data, **result})
    db.session.commit()
    flash(_("%(item)s is out of service. Bookings moved: %(moved)d, cancelled (visitors get a "
            "mail): %(cancelled)d.", item=item.label, moved=len(result["moved"]),
            cancelled=len(result["cancelled"])), "info")
    return redirect(url_for("staff.items"))


@bp.post("/items/<int:item_id>/back-in-service")
def item_back(item_id: int):
    item = get_or_404(Item, item_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Please say what was checked or repaired."), "error")
        return redirect(url_for("staff.items"))
    was_check = item.check_needed
    item.check_needed = False
    item.service_reason = None
    back_in_service(db.session, item)
    audit("item_released" if was_check else "item_back_in_service", item.label,
          {"reason": form.reason.data})
    db.session.commit()
    flash(_("%(item)s can be lent out again.", item=item.label), "info")
    return redirect(url_for("staff.items"))


def _retiring_item(item_id: int):
    item = get_or_404(Item, item_id)
    if item.retired_at or not (request.form.get("reason") or "").strip():
        return None
    return (_("Retire %(item)s for good? It keeps its history, and its compartment is free "
              "for another item.", item=item.label), _("Yes, retire it"))


@bp.post("/items/<int:item_id>/retire")
@asks_once_more(_retiring_item)
def item_retire(item_id: int):
    """An item leaves for good (stolen, worn out): kept with its history, its compartment
    free for another."""
    item = get_or_404(Item, item_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Please give a reason."), "error")
    elif db.session.scalar(select(Reservation.id).where(
            Reservation.item_id == item.id,
            Reservation.state.in_(("booked", "picked_up", "overdue"))).limit(1)):
        flash(_("%(item)s has active reservations. Take it out of service first; that moves or "
                "cancels them.", item=item.label), "error")
    elif item.retired_at is None:
        item.retired_at, item.in_service = utcnow(), False
        item.service_reason, item.compartment_id = form.reason.data, None
        audit("item_retired", item.label, {"reason": form.reason.data})
        db.session.commit()
        flash(_("%(item)s is retired.", item=item.label), "info")
    return redirect(url_for("staff.items"))


def _item_form(item: Item | None) -> ItemForm:
    form = ItemForm(obj=item) if item and request.method == "GET" else ItemForm()
    locale = str(get_locale() or "de")
    form.item_type.choices = options([(t.id, t.name(locale)) for t in db.session.scalars(
        select(ItemType).where(ItemType.retired_at.is_(None)).order_by(ItemType.id))])
    taken = {i.compartment_id for i in db.session.scalars(select(Item).where(
        Item.compartment_id.is_not(None), Item.retired_at.is_(None)))
        if not item or i.id != item.id}
    compartments = db.session.execute(select(Compartment, Cabinet, Site).join(Compartment.cabinet)
                                      .join(Cabinet.site).where(Cabinet.retired_at.is_(None))
                                      .order_by(Site.name, Cabinet.id, Compartment.number)).all()
    form.compartment.choices = options([(0, _("none (in the depot)"))] + [
        (c.id, f"{s.name}, {cab.name}, {_('compartment %(n)d', n=c.number)}")
        for c, cab, s in compartments if c.id not in taken])
    if item and request.method == "GET":
        form.item_type.data = item.item_type_id
        form.compartment.data = item.compartment_id or 0
    return form


@bp.route("/items/new", methods=["GET", "POST"])
@bp.route("/items/<int:item_id>/edit", methods=["GET", "POST"])
def item_edit(item_id: int | None = None):
    item = get_or_404(Item, item_id) if item_id else None
    if item is not None and item.retired_at is not None:
        # Retired for good: changing it (a compartment, the type) would only confuse its
        # history.
        flash(_("%(item)s is retired and can no longer be changed.", item=item.label), "error")
        return redirect(url_for("staff.items"))
    form = _item_form(item)
    if form.validate_on_submit():
        item = item or Item(in_service=True)
        if item.id is None:
            db.session.add(item)
        moved = item.compartment_id != (form.compartment.data or None)
        if moved and item.id and db.session.scalar(select(Reservation.id).where(
                Reservation.item_id == item.id, Reservation.state.in_(("booked", "picked_up", "overdue"))).limit(1)):
            form.compartment.errors = [_("This item has active reservations; it can move to "
                                         "another compartment once they are over.")]
        else:
            item.label, item.notes = form.label.data.strip(), (form.notes.data or "").strip() or None
            item.item_type_id = form.item_type.data
            item.compartment_id = form.compartment.data or None
            audit("item_saved", item.label, {"compartment": item.compartment_id,
                                             "type": item.item_type_id})
            db.session.commit()
            flash(_("Saved."), "info")
            return redirect(url_for("staff.items"))
    return render_template("staff/form.html", form=form,
                           title=_("Edit item") if item else _("New item")), \
        422 if request.method == "POST" else 200
