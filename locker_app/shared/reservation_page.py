"""The values of a reservation's page: the visitor's page and ticket, and the staff's
ticket for a caller."""
from __future__ import annotations

import io
from functools import lru_cache

import qrcode
import qrcode.image.svg
from flask import request
from markupsafe import Markup

from locker_app.extensions import db
from locker_app.services import numeric_codes, rules
from locker_app.services.mail import reservation_url
from locker_app.services.timeutil import to_local


def public_url(reservation) -> str:
    return reservation_url(reservation, request.url_root)


@lru_cache(maxsize=256)
def qr_svg(data: str) -> str:
    """The QR as SVG, made once per link and process (drawing it was 80 % of a reservation
    page's time); kept by the link itself, so a changed link is drawn anew."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)  # 4 modules: the quiet zone
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode("utf-8")


def reservation_page_values(reservation, early_minutes: int | None = None) -> dict:
    """What the reservation page, the visitor's ticket and the staff ticket show.
    ``early_minutes``: the rule's early pickup, when read with the reservation
    (reservations.find_with_early_minutes); else it is asked here."""
    svg = qr_svg(public_url(reservation))
    if early_minutes is None:
        early_minutes = rules.rule_for(db.session, reservation.compartment.cabinet.site,
                                       reservation.item.item_type).early_pickup_minutes
    # The SVG comes from our own QR generator, not from user input.
    return dict(qr_svg=Markup(svg[svg.index("<svg"):]),
                numeric_code=numeric_codes.grouped(reservation.numeric_code),
                start=to_local(reservation.start_at), end=to_local(reservation.end_at),
                pickup_until=to_local(reservation.pickup_until),
                early_minutes=early_minutes, site=reservation.compartment.cabinet.site)
