"""The visitor's pages: what is free, reserve, the reservation page, cancel, bad input."""
import re
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import Reservation, ReservationEvent

NOW = "2026-06-10 08:00:00"  # 10:00 in Berlin (summer time)


def reserve(client, type_code="rollator", **fields):
    data = {"date": "2026-06-10", "start": "10:30", "end_date": "2026-06-10", "end": "12:00",
            "name": "Erika"}
    data.update(fields)
    return client.post(f"/s/stadtpark/reserve/{type_code}", data=data)


@freeze_time(NOW)
def test_start_page_shows_free_item_types_in_german(client):
    page = client.get("/").get_data(as_text=True)
    assert "Rollator" in page and "Bollerwagen" in page
    assert "4 von 4 jetzt frei" in page


@freeze_time(NOW)
def test_start_page_in_english_on_request(client):
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Handcart" in page and "4 of 4 free now" in page
    client.get("/lang/de")
    assert "Bollerwagen" in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)


@freeze_time(NOW)
def test_reserve_leads_to_page_with_qr_and_code(client, app):
    response = reserve(client)
    assert response.status_code == 302
    location = response.headers["Location"]
    token = location.rsplit("/r/", 1)[1]
    page = client.get(location).get_data(as_text=True)
    assert "<svg" in page and "Reserviert" in page
    # Shown in Berlin time; the pickup window is an hour.
    assert "10.06.2026 zwischen 10:30 und 11:30 Uhr" in page and "10.06.2026, 12:00 Uhr" in page
    # The numeric code, large; never the long signed token as text (pasted, it was refused).
    assert re.search(r'class="numeric-code" id="numeric-code">\d{4} \d{4}<', page)
    assert token[:20] not in page.replace(f"/r/{token}", "")
    assert "0123 4567890" in page and 'href="tel:01234567890"' in page  # the hotline
    assert "Bis zu 15 Minuten früher, wenn das Fach frei ist." in page
    with app.app_context():
        reservation = db.session.scalars(db.select(Reservation)).one()
        # Stored in UTC: 10:30 Berlin summer time is 08:30 UTC.
        assert reservation.start_at == datetime(2026, 6, 10, 8, 30)
        assert reservation.compartment.number == 1
        assert [e.to_state for e in reservation.events] == ["booked"]
    svg = client.get(location + "/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


@freeze_time(NOW)
def test_the_reservation_pages_show_the_early_pickup_of_its_own_rule(client, app):
    """The early pickup is read with the reservation (one statement for the page): the
    minutes staff set for the rollators at this site."""
    from locker_app.models import BookingRule, ItemType
    with app.app_context():
        rollator = db.session.scalars(db.select(ItemType).filter_by(code="rollator")).one()
        db.session.scalars(db.select(BookingRule).filter_by(item_type_id=rollator.id)).one() \
            .early_pickup_minutes = 25
        db.session.commit()
    location = reserve(client).headers["Location"]
    html = client.get(location).get_data(as_text=True)
    assert "Bis zu 25 Minuten früher, wenn das Fach frei ist." in html
    for page in ("/ticket", "/cancel"):  # the other pages of the reservation
        assert client.get(location + page).status_code == 200


@freeze_time(NOW)
def test_each_booking_gets_another_item_until_sold_out(app):
    for _ in range(4):
        assert reserve(app.test_client()).status_code == 302  # four visitors
    response = reserve(app.test_client())
    assert response.status_code == 409
    assert "kein Rollator frei" in response.get_data(as_text=True)
    # A window after the others is free again.
    assert reserve(app.test_client(), start="12:00", end="13:00").status_code == 302
    with app.app_context():
        compartments = [r.compartment.number for r in db.session.scalars(db.select(Reservation))]
    assert compartments == [1, 2, 3, 4, 1]


@freeze_time(NOW)
@pytest.mark.parametrize("fields, message", [
    ({"name": ""}, "Bitte geben Sie einen Namen"),
    ({"name": "x" * 81}, "höchstens 80 Zeichen"),
    ({"name": "\u200b\u0000"}, "Bitte geben Sie einen Namen"),
    ({"end": "10:00"}, "Rückgabezeit muss nach der Abholzeit"),
    ({"start": "08:00", "end": "09:00"}, "Abholzeit ist schon vorbei"),
    ({"date": "2027-06-10", "end_date": "2027-06-10"}, "höchstens 30 Tage im Voraus"),
    ({"end_date": "2026-06-11"}, "Rollatoren können höchstens 8 Stunden ausgeliehen werden."),
    ({"end": "10:45"}, "Rollatoren können mindestens 30 Minuten ausgeliehen werden."),
    ({"date": "kein Datum"}, "Bitte wählen Sie einen Tag"),
    ({"start": "25:99"}, "Bitte wählen Sie eine Uhrzeit"),
    ({"email": "nicht-eine-adresse"}, "sieht nicht wie eine E-Mail-Adresse aus"),
])
def test_bad_input_gets_a_message_next_to_the_field_and_stores_nothing(client, app, fields, message):
    response = reserve(client, **fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert "Not a valid" not in page
    with app.app_context():
        assert db.session.scalars(db.select(Reservation)).all() == []
        assert db.session.scalars(db.select(ReservationEvent)).all() == []


@freeze_time(NOW)
def test_unknown_item_type_and_forged_code_are_404_pages(client):
    assert client.get("/s/stadtpark/reserve/segway").status_code == 404
    response = client.get("/r/" + "A" * 110)
    assert response.status_code == 404
    assert "Reservierung" in response.get_data(as_text=True) or "Seite" in response.get_data(as_text=True)


@freeze_time(NOW)
def test_cancel_by_link(client, app):
    location = reserve(client).headers["Location"]
    response = client.post(location + "/cancel", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Storniert" in page and "storniert" in page
    assert "<svg" not in page
    with app.app_context():
        reservation = db.session.scalars(db.select(Reservation)).one()
        assert reservation.state == "cancelled"
        assert [(e.from_state, e.to_state, e.actor) for e in reservation.events] == [
            (None, "booked", "visitor"), ("booked", "cancelled", "visitor")]
    # A second cancel is refused politely, not with an error page.
    page = client.post(location + "/cancel", follow_redirects=True).get_data(as_text=True)
    assert "nicht mehr storniert" in page


@freeze_time(NOW)
def test_window_across_midnight_for_a_handcart(client, app):
    response = reserve(client, "bollerwagen", start="18:00", end_date="2026-06-11", end="09:00")
    assert response.status_code == 302
    with app.app_context():
        reservation = db.session.scalars(db.select(Reservation)).one()
        assert reservation.end_at - reservation.start_at == timedelta(hours=15)
        assert reservation.compartment.number == 5


def test_unexpected_errors_show_a_plain_page(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaputt")
    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Traceback" not in page and "kaputt" not in page
    assert "Auf unserer Seite ist etwas schiefgegangen" in page


def test_times_are_shown_in_berlin_across_daylight_saving(client, app):
    with freeze_time("2026-10-25 00:30:00"):  # 02:30 summer time, the night of the change
        response = reserve(client, date="2026-10-25", start="04:00", end_date="2026-10-25", end="05:00")
        assert response.status_code == 302
    with app.app_context():
        reservation = db.session.scalars(db.select(Reservation)).one()
        # After the change Berlin is UTC+1: 04:00 local is 03:00 UTC.
        assert reservation.start_at == datetime(2026, 10, 25, 3, 0)


@freeze_time(NOW)
def test_cancel_asks_first_and_then_offers_to_book_again(client, app):
    location = reserve(client).headers["Location"]
    page = client.get(location).get_data(as_text=True)
    assert f'href="{location}/cancel"' in page and "Sie können bis zum 10.06.2026 um 10:30 Uhr stornieren" in page
    confirm = client.get(location + "/cancel").get_data(as_text=True)
    assert "Reservierung stornieren?" in confirm and "Nein, Reservierung behalten" in confirm
    with app.app_context():
        assert db.session.scalars(db.select(Reservation)).one().state == "booked"  # asked only
    page = client.post(location + "/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Neu reservieren" in page and 'href="/s/stadtpark/"' in page
    assert client.get(location + "/cancel").status_code == 302  # nothing left to confirm


def test_after_the_pickup_began_the_page_says_whom_to_call(client, app):
    with freeze_time(NOW):
        location = reserve(client).headers["Location"]
    with freeze_time(datetime(2026, 6, 10, 8, 45)):  # 10:45 in Berlin: the window runs
        page = client.get(location).get_data(as_text=True)
    assert "hier kann die Reservierung nicht mehr storniert werden" in page
    assert "rufen Sie uns bitte an" in page and "0123 4567890" in page


@freeze_time(NOW)
def test_the_ticket_prints_without_javascript(client):
    location = reserve(client).headers["Location"]
    ticket = client.get(location + "/ticket").get_data(as_text=True)
    assert "<svg" in ticket and 'class="numeric-code"' in ticket
    assert "Schrank am Haupteingang" in ticket and "links vom Kiosk" in ticket
    assert "0123 4567890" in ticket and "10.06.2026 zwischen 10:30 und 11:30 Uhr" in ticket
    assert "Drucken Sie diese Seite" in ticket
