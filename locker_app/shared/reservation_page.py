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


def reservation_page_values(reservation) -> dict:
    """What the reservation page, the visitor's ticket and the staff ticket show."""
    svg = qr_svg(public_url(reservation))
    rule = rules.rule_for(db.session, reservation.compartment.cabinet.site, reservation.item.item_type)
    # The SVG comes from our own QR generator, not from user input.
    return dict(qr_svg=Markup(svg[svg.index("<svg"):]),
                numeric_code=numeric_codes.grouped(reservation.numeric_code),
                start=to_local(reservation.start_at), end=to_local(reservation.end_at),
                pickup_until=to_local(reservation.pickup_until),
                early_minutes=rule.early_pickup_minutes, site=reservation.compartment.cabinet.site)
