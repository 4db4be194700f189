"""Demo data: the Stadtpark, one cabinet on board address 1 with 8 compartments."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datetime import time

from locker_app.models import (RULE_DEFAULTS, BookingRule, Cabinet, Compartment, Item, ItemType,
                               OpeningHours, Site)
from locker_app.services.controllers import register_controller
from locker_app.services.signing import ensure_key


def seed(session: Session, controller_token: str | None = None,
         serial_port: str = "/dev/ttyUSB0") -> str | None:
    """Create the demo site when it is missing. Returns the new controller's token, or None
    when the data was already there."""
    ensure_key()
    if session.scalars(select(Site).where(Site.slug == "stadtpark")).first():
        return None
    rollator = ItemType(code="rollator", name_de="Rollator", name_en="Rollator",
                        plural_de="Rollatoren", plural_en="Rollators")
    cart = ItemType(code="bollerwagen", name_de="Bollerwagen", name_en="Handcart",
                    plural_de="Bollerwagen", plural_en="Handcarts")
    # Example contact details, clearly marked; staff put in the real ones on the staff pages.
    site = Site(slug="stadtpark", name="Stadtpark", address="Beispielweg 1, 01234 Musterstadt",
                directions="Am Haupteingang, neben dem Kiosk", hotline="0123 4567890",
                on_duty_email="bereitschaft@example.org")
    # Open round the clock, so the demo can be tried at any hour; staff set real hours.
    session.add_all([OpeningHours(site=site, weekday=day, opens=time(0, 0), closes=time(23, 59))
                     for day in range(7)])
    session.add_all([
        BookingRule(site=site, item_type=rollator, **RULE_DEFAULTS),
        # "Bollerwagen können höchstens einen Tag ausgeliehen werden."
        BookingRule(site=site, item_type=cart, **{**RULE_DEFAULTS, "max_loan_minutes": 24 * 60}),
    ])
    cabinet = Cabinet(site=site, name="Schrank am Haupteingang", board_family="A",
                      location="links vom Kiosk", location_en="left of the kiosk",
                      serial_port=serial_port, baudrate=9600)
    session.add_all([rollator, cart, site, cabinet])
    for number in range(1, 9):
        compartment = Compartment(cabinet=cabinet, number=number, board_address=1,
                                  lock_number=number)
        item_type = rollator if number <= 4 else cart
        label = f"{item_type.name_de} {number if number <= 4 else number - 4}"
        session.add_all([compartment, Item(item_type=item_type, compartment=compartment,
                                           label=label)])
    session.flush()
    _, token = register_controller(session, cabinet, "Demo-Controller", controller_token)
    return token
