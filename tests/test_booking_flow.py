"""The booking flow after the GOV.UK and KERN patterns: the rules in one sentence before the
form, free times as text, a check-your-answers step with change buttons, a confirmation
panel with what happens next, and the next free times when the item went meanwhile."""
import re
from datetime import datetime, time

from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import ItemType, OpeningHours, Reservation, Site
from locker_app.services import free_times
from locker_app.services.booking import create_reservation
from locker_app.services.timeutil import local_to_utc

MONDAY = "2026-11-23"  # a Monday


def set_hours(app, opens=time(8), closes=time(20), closed_weekdays=()):
    with app.app_context():
        for row in db.session.scalars(db.select(OpeningHours)):
            row.opens, row.closes = opens, closes
            if row.weekday in closed_weekdays:
                db.session.delete(row)
        db.session.commit()


def book_all_rollators(app, day, start, end, now):
    with app.app_context():
        site = db.session.scalars(db.select(Site)).one()
        rollator = db.session.scalars(db.select(ItemType).where(ItemType.code == "rollator")).one()
        for n in range(4):
            create_reservation(db.session, site=site, item_type=rollator,
                               start=local_to_utc(day, start), end=local_to_utc(day, end),
                               name=f"Gast {n}", email=None, now=now)


def form_data(day="2026-11-24", start="10:30", end="11:30", name="Erika", email="", **extra):
    return {"date": day, "start": start, "end_date": day, "end": end, "name": name,
            "email": email, **extra}


def count(app):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Reservation.id)))


def test_the_rules_stand_in_one_sentence_before_the_form(client):
    html = client.get("/s/stadtpark/reserve/rollator").get_data(as_text=True)
    sentence = ("Rollatoren leihen Sie bis zu 8 Stunden aus. Sie reservieren bis zu 30 Tage im "
                "Voraus und holen innerhalb von 1 Stunde ab Beginn ab, bis zu 15 Minuten früher, "
                "wenn das Fach frei ist.")
    assert sentence in html and html.index(sentence) < html.index("<form")
    client.get("/lang/en")
    assert ("Rollators can be borrowed for up to 8 hours, booked up to 30 days ahead, and picked "
            "up within 1 hour of the start") in client.get("/s/stadtpark/reserve/rollator").get_data(as_text=True)


def test_free_times_of_the_coming_days_as_text(app):
    set_hours(app, closed_weekdays=(2,))  # Wednesdays closed
    with freeze_time(f"{MONDAY} 13:07"):  # 14:07 in Berlin
        now = datetime(2026, 11, 23, 13, 7)
        book_all_rollators(app, datetime(2026, 11, 24).date(), time(10), time(12), now)
        with app.test_request_context():
            site = db.session.scalars(db.select(Site)).one()
            rollator = db.session.scalars(db.select(ItemType).where(ItemType.code == "rollator")).one()
            texts = [d.text for d in free_times.free_days(db.session, site, rollator, now)]
    assert texts == ["Heute: frei von 14:07 bis 20:00 Uhr",
                     "Morgen: frei von 08:00 bis 10:00 Uhr und von 12:00 bis 20:00 Uhr",
                     "Mittwoch, 25.11.: geschlossen"]


def test_the_form_shows_the_free_times(client, app):
    set_hours(app)
    with freeze_time(f"{MONDAY} 09:00"):
        html = client.get("/s/stadtpark/reserve/rollator").get_data(as_text=True)
    assert "<li>Heute: frei von 10:00 bis 20:00 Uhr</li>" in html
    assert "<li>Morgen: frei von 08:00 bis 20:00 Uhr</li>" in html


def test_check_your_answers_books_nothing_until_confirmed(client, app):
    set_hours(app)
    with freeze_time(f"{MONDAY} 09:00"):
        before = count(app)
        check = client.post("/s/stadtpark/reserve/rollator", data=form_data(step="check"))
        html = check.get_data(as_text=True)
        assert check.status_code == 200 and "Bitte prüfen Sie Ihre Angaben" in html
        assert "<dd>24.11.2026 ab 10:30 Uhr</dd>" in html and "<dd>Erika</dd>" in html
        assert "keine: Sie bekommen keine Bestätigung per E-Mail" in html
        assert count(app) == before
        assert '<input type="hidden" name="name" value="Erika">' in html

        change = client.post("/s/stadtpark/reserve/rollator", data=form_data(change="start"))
        page = change.get_data(as_text=True)
        assert change.status_code == 200 and count(app) == before
        assert re.search(r'<input[^>]*autofocus[^>]*name="start"[^>]*value="10:30"', page) or \
            re.search(r'<input[^>]*name="start"[^>]*autofocus', page) or \
            re.search(r'autofocus[^>]*id="start"', page), page[page.index("<form"):][:2000]
        assert 'value="Erika"' in page

        done = client.post("/s/stadtpark/reserve/rollator", data=form_data(step="confirm"))
        assert done.status_code == 302 and "/r/" in done.headers["Location"]
        assert count(app) == before + 1
        page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert '<div class="confirmation" role="status">' in page and "<h2>Reserviert</h2>" in page
    assert "Sie haben keine E-Mail-Adresse angegeben" in page
    steps = re.findall(r"<li>(.*?)</li>", page[page.index('<ol class="steps">'):page.index("</ol>")], re.S)
    assert len(steps) == 3
    assert steps[0].startswith("Kommen Sie zwischen 10:30 Uhr und 11:30 Uhr zum Schrank: Stadtpark")
    assert "Rückgabe bis</dt><dd>24.11.2026, 11:30 Uhr</dd>" in page
    assert "Sie können bis zum 24.11.2026 um 10:30 Uhr stornieren." in page


def test_with_an_e_mail_address_the_panel_says_a_mail_is_on_its_way(client, app):
    with freeze_time(f"{MONDAY} 09:00"):
        done = client.post("/s/stadtpark/reserve/rollator",
                           data=form_data(email="erika@example.org", step="confirm"))
        page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Eine Bestätigung an erika@example.org ist unterwegs." in page
    # The panel is for the moment of booking only.
    with freeze_time(f"{MONDAY} 09:01"):
        later = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Reserviert</h2>" not in later


def test_sold_out_offers_the_next_free_times(client, app):
    set_hours(app)
    with freeze_time(f"{MONDAY} 09:00"):
        book_all_rollators(app, datetime(2026, 11, 24).date(), time(10), time(12),
                           datetime(2026, 11, 23, 9))
        response = client.post("/s/stadtpark/reserve/rollator", data=form_data(step="check"))
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Diese Zeiten sind noch frei" in html
    assert "<li>Morgen: frei von 08:00 bis 10:00 Uhr und von 12:00 bis 20:00 Uhr</li>" in html
    assert 'value="Erika"' in html  # nothing typed is lost
    assert html.index("Diese Zeiten sind noch frei") < html.index("<form")


def test_a_form_sent_again_for_a_window_just_sold_out_gets_a_short_page(client, app):
    """The rush for the last items through the form (bench.booking_rush --via form): each
    refusal rendered the whole form page again with its checks, its limits and nine
    statements; the last of 1,000 visitors waited 8 s (SQLite) to 11 s (PostgreSQL). Now the
    same answers within a second of a refusal get a short page, after one statement (the
    form's one-time key), and lose nothing: its button leads back to the form, filled in."""
    from tests.test_city_scale import statements
    set_hours(app)
    with freeze_time(f"{MONDAY} 09:00"):
        book_all_rollators(app, datetime(2026, 11, 24).date(), time(10), time(12),
                           datetime(2026, 11, 23, 9))
        first = client.post("/s/stadtpark/reserve/rollator", data=form_data())
        assert first.status_code == 409 and "Diese Zeiten sind noch frei" in first.get_data(as_text=True)
        with statements(app) as seen:
            again = client.post("/s/stadtpark/reserve/rollator",
                                data=form_data(name="Paul", booking_key="k" * 20))
        html = again.get_data(as_text=True)
        assert again.status_code == 409 and len(seen) == 1, seen
        assert "Leider ist zu dieser Zeit kein Rollator frei" in html, html
        for name, value in (("date", "2026-11-24"), ("start", "10:30"), ("end", "11:30"),
                            ("name", "Paul"), ("booking_key", "k" * 20)):
            assert f'<input type="hidden" name="{name}" value="{value}">' in html
        back = client.post("/s/stadtpark/reserve/rollator",
                           data=form_data(name="Paul", change="date"))
        page = back.get_data(as_text=True)
        assert back.status_code == 200 and 'value="Paul"' in page and "<form" in page
        # Another window is asked as before.
        other = client.post("/s/stadtpark/reserve/rollator",
                            data=form_data(start="14:00", end="15:00", step="confirm"))
        assert other.status_code == 302 and count(app) == 5


def _errors_by_field(page: str) -> dict[str, str]:
    """The message shown next to each field (``<p class="error" id="FIELD-error">``)."""
    return {name: re.sub(r"\s+", " ", text).strip()
            for name, text in re.findall(r'<p class="error" id="([a-z_]+)-error">(.*?)</p>',
                                         page, re.S)}


def test_one_submit_names_every_mistake_each_next_to_its_field(client, app):
    """Three mistakes took three submits: the missing name stopped the form before the
    address and the times were looked at. Now one submit names all three."""
    set_hours(app)
    with freeze_time("2026-11-23 09:00"):
        response = client.post("/s/stadtpark/reserve/rollator", data=form_data(
            name="", email="erika@", start="12:00", end="11:00", step="check"))
    assert response.status_code == 422
    errors = _errors_by_field(response.get_data(as_text=True))
    assert set(errors) == {"name", "email", "end"}, errors
    assert "Namen" in errors["name"] and "E-Mail" in errors["email"]
    assert "Rückgabe" in errors["end"], errors
    assert count(app) == 0


def test_a_bad_year_is_shown_at_the_day_with_the_other_mistakes(client, app):
    """A year the service does not know belongs to the day, not to the time; the bad
    address beside it is named in the same answer. The form keeps what was typed."""
    set_hours(app)
    with freeze_time("2026-11-23 09:00"):
        response = client.post("/s/stadtpark/reserve/rollator", data=form_data(
            day="1999-11-24", email="erika@@example", step="check"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    errors = _errors_by_field(page)
    assert set(errors) == {"date", "email"}, errors
    assert "1999" in page and "erika@@example" in page  # nothing typed is lost
    # The service's own refusal first (the address), then the rest: the same two places.
    with freeze_time("2026-11-23 09:00"):
        booked = client.post("/s/stadtpark/reserve/rollator", data=form_data(
            name="Erika", email="erika@", end="10:00", step="confirm"))
    assert set(_errors_by_field(booked.get_data(as_text=True))) == {"email", "end"}
    assert count(app) == 0


def test_the_cabinets_location_is_in_the_pages_language(client, app):
    """The cabinet's location was German on English pages; staff can now write it in
    English too, and without it the English pages show the German one."""
    set_hours(app)
    with freeze_time(f"{MONDAY} 09:00"):
        client.get("/lang/en")
        done = client.post("/s/stadtpark/reserve/rollator", data=form_data(step="confirm"))
        english = client.get(done.headers["Location"]).get_data(as_text=True)
        ticket = client.get(done.headers["Location"] + "/ticket").get_data(as_text=True)
        client.get("/lang/de")
        german = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "(left of the kiosk)" in english and "links vom Kiosk" not in english
    assert "(left of the kiosk)" in ticket
    assert "(links vom Kiosk)" in german and "kiosk)" not in german
    with app.app_context():
        from locker_app.models import Cabinet
        db.session.get(Cabinet, 1).location_en = None
        db.session.commit()
    with freeze_time(f"{MONDAY} 09:00"):
        client.get("/lang/en")
        fallback = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "(links vom Kiosk)" in fallback


def test_staff_write_the_cabinets_location_in_english(admin_client, app):
    page = admin_client.get("/staff/admin/cabinets/1/edit").get_data(as_text=True)
    assert 'name="location_en"' in page
    saved = admin_client.post("/staff/admin/cabinets/1/edit", data={
        "site": "1", "name": "Schrank am Kiosk",
        "location": "rechts vom Brunnen", "location_en": "right of the fountain",
        "board_family": "A"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    with app.app_context():
        from locker_app.models import Cabinet
        cabinet = db.session.get(Cabinet, 1)
        assert (cabinet.location, cabinet.location_en) == ("rechts vom Brunnen",
                                                           "right of the fountain")
