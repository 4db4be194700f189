"""Find a reservation again: by number and name (straight to the page), or by e-mail
address (the links come by mail; the page says the same whether the address is known)."""
from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from locker_app.booking import bp
from locker_app.booking.forms import FindByMailForm, FindByNumberForm
from locker_app.booking.routes import _locale
from locker_app.extensions import db
from locker_app.limits import lookup_limits
from locker_app.models import Site
from locker_app.services import lookup


def _page(number_form=None, mail_form=None, status=200, sent=False):
    return render_template("booking/find.html", number_form=number_form or FindByNumberForm(),
                           mail_form=mail_form or FindByMailForm(), sent=sent,
                           hotlines=_hotlines(), locale=_locale()), status


def _hotlines() -> list[tuple[str, str]]:
    """(site, number) to call for help, of each site in use that has one."""
    return [(site.name, site.hotline) for site in db.session.scalars(
        select(Site).where(Site.retired_at.is_(None), Site.hotline.is_not(None))
        .order_by(Site.name)) if site.hotline.strip()]


@bp.get("/wiederfinden")
def find():
    return _page()


@bp.post("/wiederfinden/nummer")
@lookup_limits
def find_by_number():
    form = FindByNumberForm()
    if form.validate_on_submit():
        found = lookup.find_by_number_and_name(db.session, form.number.data, form.name.data)
        if found is not None:
            return redirect(url_for("booking.reservation", token=found.code))
        form.form_errors.append(_("No active reservation has this number with this name. Please "
                                  "check both, or call us."))
    return _page(number_form=form, status=400 if form.errors or form.form_errors else 200)


@bp.post("/wiederfinden/mail")
@lookup_limits
def find_by_mail():
    form = FindByMailForm()
    if not form.validate_on_submit():
        return _page(mail_form=form, status=400)
    lookup.send_links(db.session, form.email.data)
    return _page(sent=True)
