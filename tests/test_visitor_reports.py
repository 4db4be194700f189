"""The pages a German town must have (footer on every page, operator details from the
settings), the accessibility feedback form without JavaScript, and defect reports that put
the item to "check needed" and reach staff."""
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import Item, Reservation, VisitorReport
from locker_app.services import reports
from locker_app.services.reservation_log import record_change
from tests.conftest import close_app, make_app

FOOTER = ('href="/impressum"', 'href="/datenschutz"', 'href="/barrierefreiheit"',
          'href="/leichte-sprache"')


def book(client, minutes=-1, type_code="rollator"):
    from datetime import timezone

    from locker_app.services.timeutil import to_local
    start = to_local(datetime.now(timezone.utc) + timedelta(minutes=minutes))
    end = start + timedelta(hours=1)
    response = client.post(f"/s/stadtpark/reserve/{type_code}", data={
        "date": start.strftime("%Y-%m-%d"), "start": start.strftime("%H:%M"),
        "end_date": end.strftime("%Y-%m-%d"), "end": end.strftime("%H:%M"), "name": "Erika"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def reservation_of(app, path):
    with app.app_context():
        return db.session.scalars(db.select(Reservation).where(
            Reservation.code == path.rsplit("/r/", 1)[1])).one().id


def picked_up(app, rid):
    with app.app_context():
        record_change(db.session, db.session.get(Reservation, rid), "picked_up", actor="controller",
                      cause="test")
        db.session.commit()


def test_every_visitor_and_staff_page_has_the_footer(client, app):
    path = book(client, minutes=120)
    pages = ["/", "/s/stadtpark/", "/s/stadtpark/reserve/rollator", path, path + "/ticket",
             path + "/cancel", "/impressum", "/datenschutz", "/barrierefreiheit",
             "/leichte-sprache", "/staff/login", "/no-such-page"]
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        for link in FOOTER:
            assert link in html, (page, link)


def test_missing_operator_details_are_said_plainly_and_configured_ones_shown(tmp_path):
    app = make_app(tmp_path)
    try:
        html = app.test_client().get("/impressum").get_data(as_text=True)
        assert "noch nicht eingetragen (Einstellung <code>LOCKER_OPERATOR_NAME</code>)" in html
        app.config.update(OPERATOR_NAME="Stadt Musterstadt", OPERATOR_ADDRESS="Rathausplatz 1; 12345 Musterstadt",
                          OPERATOR_REPRESENTATIVE="Bürgermeisterin Muster", OPERATOR_EMAIL="park@example.org",
                          OPERATOR_PHONE="0123 45678", PRIVACY_OFFICER="datenschutz@example.org")
        html = app.test_client().get("/impressum").get_data(as_text=True)
        assert "Stadt Musterstadt" in html and "Rathausplatz 1<br>" in html
        assert 'href="tel:012345678"' in html and "noch nicht eingetragen" not in html
        privacy = app.test_client().get("/datenschutz").get_data(as_text=True)
        assert "30 Tage nach dem Ende der Ausleihe" in privacy
        assert "Unabhängiges Landeszentrum für Datenschutz Schleswig-Holstein" in privacy
        assert "Art. 6 Abs. 1 lit. e DSGVO" in privacy and "datenschutz@example.org" in privacy
    finally:
        close_app(app)


def test_the_privacy_page_in_english_and_easy_read_in_german(client):
    client.get("/lang/en")
    html = client.get("/datenschutz").get_data(as_text=True)
    assert '<html lang="en">' in html and "deleted 30 days after the loan ends" in html
    easy = client.get("/leichte-sprache").get_data(as_text=True)
    assert '<div class="easy-read" lang="de">' in easy and "Die Nummer hat 8 Ziffern." in easy
    assert 'href="tel:01234567890"' in easy  # the demo site's hotline


def test_feedback_without_javascript_reaches_staff(client, app, staff_client):
    response = client.post("/barrierefreiheit?page=/s/stadtpark/",
                           data={"message": "Die Zeitauswahl ist mit der Lupe schwer zu lesen.",
                                 "contact": "erika@example.org"})
    assert response.status_code == 302 and response.headers["Location"].endswith("?sent=1#feedback")
    assert "Ihre Nachricht ist beim Personal" in client.get(response.headers["Location"]).get_data(as_text=True)
    page = staff_client.get("/staff/reports").get_data(as_text=True)
    assert "Die Zeitauswahl ist mit der Lupe schwer zu lesen." in page and "erika@example.org" in page
    assert "1 offene Rückmeldung" in staff_client.get("/staff/").get_data(as_text=True)


def test_empty_feedback_gets_a_clear_error_and_loses_nothing(client, app):
    response = client.post("/barrierefreiheit", data={"message": "  ", "contact": "0171 555"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<title>Fehler:" in html and 'href="#message"' in html
    assert 'value="0171 555"' in html  # what was typed stays
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(VisitorReport.id))) == 0


def test_feedback_is_limited_per_address(client, app):
    statuses = [client.post("/barrierefreiheit", data={"message": f"Nachricht {n}"}).status_code
                for n in range(12)]
    assert statuses == [302] * 10 + [429] * 2
    assert "Zu viele Versuche" in client.post("/barrierefreiheit", data={"message": "x"}).get_data(as_text=True)


def test_a_defect_puts_the_item_to_check_needed_and_staff_see_it(client, app, staff_client):
    path = book(client)
    rid = reservation_of(app, path)
    # Booked, not yet picked up: nothing to report yet.
    assert "Defekt melden" not in client.get(path).get_data(as_text=True)
    assert client.get(path + "/defect").status_code == 302
    picked_up(app, rid)
    assert "Defekt melden" in client.get(path).get_data(as_text=True)
    assert client.get(path + "/defect").status_code == 200
    empty = client.post(path + "/defect", data={"message": ""})
    assert empty.status_code == 400 and "<title>Fehler:" in empty.get_data(as_text=True)
    response = client.post(path + "/defect", data={"message": "Die Bremsen ziehen nach links."})
    assert response.status_code == 302
    assert "Das Personal prüft den Gegenstand" in client.get(path).get_data(as_text=True)
    with app.app_context():
        item = db.session.get(Reservation, rid).item
        assert item.check_needed and not item.in_service
        assert item.service_reason == "Defekt gemeldet: Die Bremsen ziehen nach links."
    items = staff_client.get("/staff/items").get_data(as_text=True)
    assert "Prüfung nötig" in items
    page = staff_client.get("/staff/reports").get_data(as_text=True)
    assert "Die Bremsen ziehen nach links." in page and f"/staff/reservations/{rid}" in page


def test_a_defect_moves_later_bookings_of_the_item(client, app):
    path = book(client, type_code="bollerwagen")
    rid = reservation_of(app, path)
    later = reservation_of(app, book(client, minutes=24 * 60, type_code="bollerwagen"))
    with app.app_context():
        same = db.session.get(Reservation, later).item_id == db.session.get(Reservation, rid).item_id
    picked_up(app, rid)
    client.post(path + "/defect", data={"message": "Ein Rad eiert."})
    with app.app_context():
        first, second = db.session.get(Reservation, rid), db.session.get(Reservation, later)
        assert not same or second.item_id != first.item_id  # moved to a twin
        assert second.state == "booked"


def test_a_reservation_reports_a_defect_at_most_three_times(client, app):
    path = book(client)
    picked_up(app, reservation_of(app, path))
    for n in range(3):
        assert client.post(path + "/defect", data={"message": f"Defekt {n}"}).status_code == 302
    refused = client.post(path + "/defect", data={"message": "noch einmal"})
    assert refused.status_code == 400
    assert "Dieser Defekt ist schon bei uns angekommen" in refused.get_data(as_text=True)


def test_the_feedback_contact_is_erased_after_30_days(app):
    with app.app_context():
        with freeze_time("2026-11-01 10:00"):
            reports.leave_feedback(db.session, "Bitte größere Schrift", "0171 555", None)
        with freeze_time("2026-11-30 10:00"):
            assert reports.erase_contacts(db.session, datetime(2026, 11, 30, 10), 30) == 0
        assert reports.erase_contacts(db.session, datetime(2026, 12, 1, 10, 1), 30) == 1
        report = db.session.scalars(db.select(VisitorReport)).one()
        assert report.contact is None and report.message == "Bitte größere Schrift"


@pytest.mark.parametrize("path", ["/impressum", "/datenschutz", "/barrierefreiheit", "/leichte-sprache"])
def test_the_pages_a_town_must_have_answer_in_both_languages(client, path):
    for language in ("de", "en"):
        client.get(f"/lang/{language}")
        response = client.get(path)
        assert response.status_code == 200
        assert f'<html lang="{language}">' in response.get_data(as_text=True)


def test_staff_mark_a_report_as_done(app, staff_client):
    with app.app_context():
        report = reports.leave_feedback(db.session, "Danke!", None, None)
        report_id = report.id
    response = staff_client.post(f"/staff/reports/{report_id}/handled")
    assert response.status_code == 302
    assert "Keine Rückmeldungen." in staff_client.get("/staff/reports").get_data(as_text=True)
    done = staff_client.get("/staff/reports?show=handled").get_data(as_text=True)
    assert "Erledigt von erika" in done
    with app.app_context():
        assert db.session.get(VisitorReport, report_id).handled_by
        assert db.session.get(Item, 1) is not None
