"""Find a reservation again without its link: by number and name, or by e-mail address (a
mail with every active reservation's link; the page answers the same for any address).
Limited per client address and per e-mail address."""
from datetime import datetime, timedelta, timezone

from locker_app.extensions import db
from locker_app.models import OutgoingMail, Reservation
from locker_app.services import lookup
from locker_app.services.mail import compose
from locker_app.services.timeutil import to_local


def book(client, name="Erika Mustermann", email="", minutes=60, type_code="rollator"):
    start = to_local(datetime.now(timezone.utc) + timedelta(minutes=minutes))
    end = start + timedelta(hours=1)
    response = client.post(f"/s/stadtpark/reserve/{type_code}", data={
        "date": start.strftime("%Y-%m-%d"), "start": start.strftime("%H:%M"),
        "end_date": end.strftime("%Y-%m-%d"), "end": end.strftime("%H:%M"), "name": name,
        "email": email})
    assert response.status_code == 302, response.get_data(as_text=True)
    token = response.headers["Location"].rsplit("/r/", 1)[1]
    return token


def number_of(app, token):
    with app.app_context():
        return db.session.scalars(db.select(Reservation.numeric_code)
                                  .where(Reservation.code == token)).one()


def test_number_and_name_lead_to_the_reservation(client, app):
    token = book(client)
    number = number_of(app, token)
    response = client.post("/wiederfinden/nummer",
                           data={"number": f"{number[:4]} {number[4:]}", "name": "  erika   MUSTERMANN "})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/r/{token}")


def test_a_wrong_name_and_an_unknown_number_get_the_same_answer(client, app):
    token = book(client)
    number = number_of(app, token)
    wrong_name = client.post("/wiederfinden/nummer", data={"number": number, "name": "Eva"})
    other = "0" * 8 if number != "0" * 8 else "1" * 8
    unknown = client.post("/wiederfinden/nummer", data={"number": other, "name": "Erika Mustermann"})
    for response in (wrong_name, unknown):
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "Keine aktive Reservierung hat diese Nummer mit diesem Namen." in html
        assert "<title>Fehler:" in html and 'value="' in html  # what was typed stays
    assert token not in wrong_name.get_data(as_text=True)


def test_a_cancelled_reservation_is_not_found(client, app):
    token = book(client, minutes=120)
    number = number_of(app, token)
    client.post(f"/r/{token}/cancel")
    response = client.post("/wiederfinden/nummer", data={"number": number, "name": "Erika Mustermann"})
    assert response.status_code == 400


def test_the_mail_answer_is_the_same_for_known_and_unknown_addresses(client, app):
    book(client, email="erika@example.org")
    book(client, email="Erika+park@Example.org", type_code="bollerwagen")
    known = client.post("/wiederfinden/mail", data={"email": "erika@example.org"})
    unknown = client.post("/wiederfinden/mail", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200

    def main(response):
        html = response.get_data(as_text=True)
        return html[html.index("<main"):html.index("</main>")].replace('value="erika@example.org"', "").replace(
            'value="nobody@example.org"', "")
    assert main(known) == main(unknown)
    assert "Bitte sehen Sie in Ihr Postfach" in main(known)
    with app.app_context():
        mails = db.session.scalars(db.select(OutgoingMail).where(OutgoingMail.kind == "links")).all()
        assert len(mails) == 1  # one mail listing both
        message = compose(db.session.get(Reservation, mails[0].reservation_id), "links")
        body = message.get_content()
        assert message["Subject"] == "Die Links zu Ihren Reservierungen"
        assert body.count("/r/") == 2 and "Rollator" in body and "Bollerwagen" in body
        assert "Nummer für das Tastenfeld:" in body


def test_a_links_mail_is_sent_again_only_after_ten_minutes(app, client):
    book(client, email="erika@example.org")
    with app.app_context():
        now = datetime(2030, 1, 1, 10, 0)
        assert lookup.send_links(db.session, "erika@example.org", now) == 1
        mail = db.session.scalars(db.select(OutgoingMail).where(OutgoingMail.kind == "links")).one()
        mail.sent_at = now
        db.session.commit()
        lookup.send_links(db.session, "erika@example.org", now + timedelta(minutes=5))
        assert mail.sent_at == now  # not again yet
        lookup.send_links(db.session, "erika@example.org", now + timedelta(minutes=11))
        assert mail.sent_at is None and mail.next_attempt_at == now + timedelta(minutes=11)


def test_number_guessing_is_limited_per_client_address(client, app):
    statuses = [client.post("/wiederfinden/nummer", data={"number": f"{n:08d}", "name": "Erika"}).status_code
                for n in range(12)]
    assert statuses == [400] * 10 + [429] * 2
    assert "Zu viele Versuche" in client.post("/wiederfinden/nummer", data={"number": "1", "name": "x"}) \
        .get_data(as_text=True)


def test_links_mails_are_limited_per_address_even_from_many_clients(app):
    statuses = []
    for n in range(5):
        client = app.test_client()
        statuses.append(client.post("/wiederfinden/mail", data={"email": "erika@example.org"},
                                    environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"}).status_code)
    assert statuses == [200, 200, 200, 429, 429]


def test_the_find_page_is_linked_from_the_start_and_every_footer(client):
    for page in ("/", "/s/stadtpark/", "/impressum"):
        assert 'href="/wiederfinden"' in client.get(page).get_data(as_text=True)
    page = client.get("/wiederfinden").get_data(as_text=True)
    assert 'inputmode="numeric"' in page and 'autocomplete="email"' in page


def test_the_find_page_gives_the_number_to_call(app):
    """It said "Rufen Sie uns bitte an" without a number (issue 32)."""
    from locker_app.extensions import db
    from locker_app.models import Site
    page = app.test_client().get("/wiederfinden").get_data(as_text=True)
    assert "Rufen Sie uns bitte an, wir finden sie für Sie:" in page
    assert '<a href="tel:01234567890">0123 4567890</a>' in page
    with app.app_context():
        db.session.scalars(db.select(Site)).one().hotline = None
        db.session.commit()
    page = app.test_client().get("/wiederfinden").get_data(as_text=True)
    assert "Rufen Sie uns" not in page and "Fragen Sie bitte die Mitarbeitenden im Park" in page
