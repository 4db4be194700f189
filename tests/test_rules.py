"""Booking rules: opening hours, special days, lead time, per-person limits, chains, and the
daylight-saving changes. Each refusal is a plain German sentence next to its field."""
import re
from datetime import date, datetime, time

import pytest
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import BookingRule, OpeningHours, Reservation, SpecialDay


def errors(response) -> list[str]:
    html = response.get_data(as_text=True)
    # Errors beside the fields, and the form's own in the error summary (unlinked items).
    summary = re.search(r'<div class="error-box"[^>]*>(.*?)</div>', html, re.S)
    return re.findall(r'class="error"[^>]*>([^<]*)<', html) + \
        (re.findall(r'<li>([^<]*)</li>', summary.group(1)) if summary else [])


def reserve(client, type_code="rollator", **fields):
    data = {"date": "2026-06-10", "start": "10:30", "end_date": "2026-06-10", "end": "12:00",
            "name": "Erika"}
    data.update(fields)
    return client.post(f"/s/stadtpark/reserve/{type_code}", data=data)


@pytest.fixture
def hours(app):
    """The Stadtpark open 8 to 20 every day, closed on 24 June, short hours on 17 June."""
    with app.app_context():
        for row in db.session.scalars(db.select(OpeningHours)):
            row.opens, row.closes = time(8), time(20)
        db.session.add_all([SpecialDay(site_id=1, day=date(2026, 6, 24), note="Stadtfest"),
                            SpecialDay(site_id=1, day=date(2026, 6, 17), opens=time(10),
                                       closes=time(14))])
        db.session.commit()


def set_rule(app, type_code="rollator", **values):
    with app.app_context():
        rule = db.session.scalars(db.select(BookingRule).join(BookingRule.item_type).where(
            BookingRule.item_type.has(code=type_code))).one()
        for name, value in values.items():
            setattr(rule, name, value)
        db.session.commit()


NOW = "2026-06-10 04:00:00"  # 06:00 in Berlin


@freeze_time(NOW)
@pytest.mark.parametrize("fields, message", [
    ({"start": "07:30"}, "Am Mittwoch, 10. Juni 2026 ist das Schließfach von 08:00 bis 20:00 Uhr "
                         "geöffnet. Bitte wählen Sie eine Abholzeit in dieser Zeit."),
    ({"start": "19:00", "end": "21:00"}, "Bitte wählen Sie eine Rückgabezeit in dieser Zeit."),
    ({"date": "2026-06-24", "end_date": "2026-06-24"}, "Am Mittwoch, 24. Juni 2026 ist das "
                                                       "Schließfach geschlossen."),
    ({"date": "2026-06-17", "end_date": "2026-06-17", "start": "13:00", "end": "15:00"},
     "von 10:00 bis 14:00 Uhr geöffnet"),
])
def test_opening_hours_and_special_days(app, client, hours, fields, message):
    response = reserve(client, **fields)
    assert response.status_code == 422
    assert any(message in e for e in errors(response)), errors(response)


@freeze_time(NOW)
def test_special_hours_allow_a_window_inside_them(app, client, hours):
    response = reserve(client, date="2026-06-17", end_date="2026-06-17", start="10:00", end="13:00")
    assert response.status_code == 302


@freeze_time(NOW)
@pytest.mark.parametrize("item_type, start, end, field, message", [
    ("rollator", "2026-06-10T07:30", "2026-06-10T09:00", "start",
     "Am Mittwoch, 10. Juni 2026 ist das Schließfach von 08:00 bis 20:00 Uhr geöffnet. "
     "Bitte wählen Sie eine Abholzeit in dieser Zeit."),
    ("rollator", "2026-06-24T10:30", "2026-06-24T12:00", "start",
     "Am Mittwoch, 24. Juni 2026 ist das Schließfach geschlossen."),
    ("rollator", "2026-06-17T13:00", "2026-06-17T15:00", "end",
     "Am Mittwoch, 17. Juni 2026 ist das Schließfach von 10:00 bis 14:00 Uhr geöffnet. "
     "Bitte wählen Sie eine Rückgabezeit in dieser Zeit."),
    # Overnight: the last day's hours count for the return.
    ("bollerwagen", "2026-06-23T19:00", "2026-06-24T10:00", "end",
     "Am Mittwoch, 24. Juni 2026 ist das Schließfach geschlossen."),
    ("bollerwagen", "2026-06-16T19:00", "2026-06-17T09:00", "end",
     "Am Mittwoch, 17. Juni 2026 ist das Schließfach von 10:00 bis 14:00 Uhr geöffnet. "
     "Bitte wählen Sie eine Rückgabezeit in dieser Zeit."),
])
def test_the_api_refuses_by_the_same_hours_as_the_form(app, client, hours, item_type, start,
                                                       end, field, message):
    """The API and the form check a window by the same rules (services/booking.py)."""
    answer = client.post("/api/v1/reservations", json={
        "site": "stadtpark", "item_type": item_type, "start": start, "end": end, "name": "Erika"})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json() == {"error": message, "code": "refused", "field": field}
    (day, start_time), (end_day, end_time) = start.split("T"), end.split("T")
    form = reserve(app.test_client(), item_type, date=day, start=start_time, end_date=end_day,
                   end=end_time)
    assert message in errors(form), errors(form)


@freeze_time(NOW)
def test_the_api_books_within_a_special_days_hours_and_overnight(app, client, hours):
    for item_type, start, end in (("rollator", "2026-06-17T10:00", "2026-06-17T13:00"),
                                  ("bollerwagen", "2026-06-16T19:00", "2026-06-17T10:30")):
        answer = client.post("/api/v1/reservations", json={
            "site": "stadtpark", "item_type": item_type, "start": start, "end": end,
            "name": "Erika"})
        assert answer.status_code == 201, answer.get_json()


@freeze_time(NOW)
def test_lead_time(app, client):
    set_rule(app, lead_minutes=24 * 60)
    response = reserve(client)
    assert errors(response) == ["Bitte reservieren Sie mindestens 1 Tag vor der Abholung."]
    assert reserve(client, date="2026-06-11", end_date="2026-06-11").status_code == 302


@freeze_time(NOW)
def test_a_handcart_for_at_most_a_day(app, client):
    response = reserve(client, "bollerwagen", end_date="2026-06-11", end="10:31")
    assert errors(response) == ["Bollerwagen können höchstens 1 Tag ausgeliehen werden."]
    assert reserve(client, "bollerwagen", end_date="2026-06-11", end="10:30").status_code == 302


@freeze_time(NOW)
def test_active_reservations_per_browser_session(any_app):
    """On both databases (on PostgreSQL the browser's reservations go as a list to the
    pipelined turn)."""
    app, client = any_app, any_app.test_client()
    assert reserve(client, start="09:00", end="10:00").status_code == 302
    assert reserve(client, start="14:00", end="15:00").status_code == 302
    response = reserve(client, start="18:00", end="19:00")
    assert errors(response) == ["Sie haben schon 2 aktive Reservierungen. Bitte geben Sie zuerst "
                                "etwas zurück oder stornieren Sie eine."]
    # Another visitor is not affected.
    assert reserve(app.test_client(), start="18:00", end="19:00").status_code == 302


@freeze_time(NOW)
def test_active_reservations_per_email_address_across_browsers(any_app):
    app = any_app
    for start, end in (("09:00", "10:00"), ("14:00", "15:00")):
        assert reserve(app.test_client(), start=start, end=end, email="erika@example.org").status_code == 302
    response = reserve(app.test_client(), start="18:00", end="19:00", email="ERIKA@example.org")
    assert "Sie haben schon 2 aktive Reservierungen" in errors(response)[0]


@freeze_time(NOW)
def test_back_to_back_chains_cannot_dodge_the_longest_loan(app, client):
    set_rule(app, max_active_per_person=5)
    assert reserve(client, start="09:00", end="15:00").status_code == 302
    response = reserve(client, start="15:30", end="18:00")  # 9 hours in a row with the first
    assert errors(response) == [
        "Zusammen mit Ihrer anderen Reservierung wäre das eine Ausleihe von mehr als 8 Stunden. "
        "Bitte lassen Sie mindestens 2 Stunden zwischen Ihren Ausleihen."]
    assert reserve(client, start="15:30", end="16:30").status_code == 302  # 7.5 h in all: fine


@freeze_time(NOW)
def test_nothing_is_stored_when_a_rule_refuses(app, client, hours):
    reserve(client, start="07:00")
    with app.app_context():
        assert db.session.scalars(db.select(Reservation)).all() == []


# Daylight saving: 29 March 2026 (02:00 -> 03:00) and 25 October 2026 (03:00 -> 02:00).

@freeze_time("2026-03-28 06:00:00")
def test_spring_change_a_day_is_a_day_and_the_missing_hour_is_refused(app, client):
    response = reserve(client, "bollerwagen", date="2026-03-28", start="08:00",
                       end_date="2026-03-29", end="08:00")  # 23 real hours
    assert response.status_code == 302
    with app.app_context():
        r = db.session.scalars(db.select(Reservation)).one()
        assert (r.start_at, r.end_at) == (datetime(2026, 3, 28, 7), datetime(2026, 3, 29, 6))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "29.03.2026, 08:00 Uhr" in page
    response = reserve(app.test_client(), "bollerwagen", date="2026-03-29", start="02:30",
                       end_date="2026-03-29", end="04:00")
    assert errors(response) == ["Diese Uhrzeit gibt es an dem Tag wegen der Zeitumstellung nicht. "
                                "Bitte wählen Sie eine andere."]


@freeze_time("2026-10-24 06:00:00")
def test_autumn_change_a_day_is_a_day(app, client):
    response = reserve(client, "bollerwagen", date="2026-10-24", start="08:00",
                       end_date="2026-10-25", end="08:00")  # 25 real hours
    assert response.status_code == 302
    with app.app_context():
        r = db.session.scalars(db.select(Reservation)).one()
        assert (r.start_at, r.end_at) == (datetime(2026, 10, 24, 6), datetime(2026, 10, 25, 7))
    assert "25.10.2026, 08:00 Uhr" in client.get(response.headers["Location"]).get_data(as_text=True)


@freeze_time(NOW)
@pytest.mark.parametrize("name", ["Ünal Çelik", "李小龍", "Zoë 🌳", "O'Brien-Müller"])
def test_names_in_any_script_are_kept(app, name):
    response = reserve(app.test_client(), name=name)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(Reservation.visitor_name)).one() == name


@freeze_time(NOW)
def test_invisible_and_direction_characters_are_removed_from_names(app):
    assert reserve(app.test_client(), name="Eri\u200bka\u202e ").status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(Reservation.visitor_name)).one() == "Erika"


@freeze_time(NOW)
def test_cancelling_is_possible_until_the_window_starts(app, client):
    location = reserve(client, start="09:00", end="10:00").headers["Location"]
    with freeze_time("2026-06-10 07:00:01"):  # 09:00:01 in Berlin
        page = client.post(location + "/cancel", follow_redirects=True).get_data(as_text=True)
    assert "nicht mehr storniert" in page
    with app.app_context():
        assert db.session.scalars(db.select(Reservation.state)).one() == "booked"
