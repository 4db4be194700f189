"""Daily work on the staff pages: phone bookings, cancel, extend, mark returned, search,
remote open, alerts and their mails, items out of service, today's view."""
from datetime import datetime, timedelta

from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import (AuditEntry, Controller, ControllerEvent, Item, OutgoingMail,
                               RemoteCommand, Reservation, Site)
from locker_app.services import alerts, lifecycle, mail
from tests.conftest import DEMO_TOKEN, log_in, make_account
from tests.test_lifecycle import book

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def log_in_now(app, username="erika"):
    """A staff client logged in at the (frozen) time of the test: a session cookie signed
    at another time than the test's clock would be refused as expired or from the future."""
    make_account(app, username)
    client = app.test_client()
    assert log_in(client, username).status_code == 302
    return client


def audit_actions(app):
    with app.app_context():
        return db.session.scalars(db.select(AuditEntry.action).order_by(AuditEntry.id)).all()


def phone_booking(client, **changes):
    data = {"site": "1", "item_type": "1", "date": "2026-06-10", "start": "10:00",
            "end_date": "2026-06-10", "end": "12:00", "name": "Herr Krause",
            "phone": "0351 1234567", "email": ""}
    data.update(changes)
    return client.post("/staff/book", data=data)


@freeze_time("2026-06-10 06:00:00")
def test_book_for_a_caller_with_the_same_rules_as_online(app):
    staff_client = log_in_now(app)
    response = phone_booking(staff_client)
    assert response.status_code == 302
    with app.app_context():
        r = db.session.scalars(db.select(Reservation)).one()
        assert (r.visitor_name, r.phone, r.email, r.state) == ("Herr Krause", "0351 1234567", None, "booked")
        assert r.events[0].actor == "staff" and r.events[0].cause == "booked on the phone by erika"
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    grouped = f"{r.numeric_code[:4]} {r.numeric_code[4:]}"
    assert grouped in page  # staff read it out
    ticket = staff_client.get(f"/staff/reservations/{r.id}/ticket").get_data(as_text=True)
    assert "<svg" in ticket and grouped in ticket
    # The same per-person limit as online (2), counted by phone number.
    assert phone_booking(staff_client, start="13:00", end="14:00").status_code == 302
    third = phone_booking(staff_client, start="15:00", end="16:00")
    assert third.status_code == 422
    assert "schon 2 aktive Reservierungen" in third.get_data(as_text=True)
    # The rules refuse in plain words, next to the field, and nothing is stored.
    long = phone_booking(staff_client, phone="0170 555", end="23:00")
    assert long.status_code == 422 and "höchstens 8 Stunden" in long.get_data(as_text=True)
    bad_phone = phone_booking(staff_client, phone="call me")
    assert "Telefonnummer" in bad_phone.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Reservation)) == 2
    assert audit_actions(app).count("booked_for_caller") == 2


@freeze_time("2026-06-10 06:00:00")
def test_cancel_needs_a_reason_and_mails_the_visitor(app):
    staff_client = log_in_now(app)
    rid = book(app)
    assert staff_client.post(f"/staff/reservations/{rid}/cancel",
                             data={"cancel-reason": ""}).status_code == 422
    response = staff_client.post(f"/staff/reservations/{rid}/cancel",
                                 data={"cancel-reason": "Rollator defekt"})
    assert response.status_code == 302
    with app.app_context():
        r = db.session.get(Reservation, rid)
        assert r.state == "cancelled"
        assert r.events[-1].cause == "cancelled by erika: Rollator defekt"
        assert "cancelled_by_staff" in db.session.scalars(
            db.select(OutgoingMail.kind).where(OutgoingMail.reservation_id == rid)).all()
    assert "reservation_cancelled" in audit_actions(app)


@freeze_time("2026-06-10 06:00:00")
def test_extend_when_the_item_is_free_and_not_over_another_booking(app):
    staff_client = log_in_now(app)
    first = book(app, start=datetime(2026, 6, 10, 8))  # UTC 08-10, item 1
    ok = staff_client.post(f"/staff/reservations/{first}/extend",
                           data={"extend-end_date": "2026-06-10", "extend-end": "13:30"})
    assert ok.status_code == 302
    with app.app_context():
        r = db.session.get(Reservation, first)
        assert r.end_at == datetime(2026, 6, 10, 11, 30)  # 13:30 in Berlin (summer time)
        assert r.events[-1].cause.startswith("extended by erika")
    # Block item 1 later in the day, then try to extend over it.
    with app.app_context():
        item_id = db.session.get(Reservation, first).item_id
        blocker = Reservation(item_id=item_id, compartment_id=db.session.get(Item, item_id).compartment_id,
                              start_at=datetime(2026, 6, 10, 14), end_at=datetime(2026, 6, 10, 15),
                              pickup_until=datetime(2026, 6, 10, 15), state="booked")
        db.session.add(blocker)
        db.session.commit()
    clash = staff_client.post(f"/staff/reservations/{first}/extend",
                              data={"extend-end_date": "2026-06-10", "extend-end": "18:00"})
    assert clash.status_code == 422
    assert "schon von jemand anderem gebucht" in clash.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Reservation, first).end_at == datetime(2026, 6, 10, 11, 30)


@freeze_time("2026-06-10 07:00:00")
def test_mark_returned_by_hand(app):
    staff_client = log_in_now(app)
    rid = book(app, start=datetime(2026, 6, 10, 8))
    refused = staff_client.post(f"/staff/reservations/{rid}/returned", data={"return-reason": "found it"})
    assert refused.status_code == 422  # not picked up yet
    with app.app_context():
        r = db.session.get(Reservation, rid)
        r.state = "picked_up"
        db.session.commit()
    assert staff_client.post(f"/staff/reservations/{rid}/returned",
                             data={"return-reason": "stand neben dem Schrank"}).status_code == 302
    with app.app_context():
        r = db.session.get(Reservation, rid)
        assert r.state == "returned" and r.events[-1].actor == "staff"


@freeze_time("2026-06-10 06:00:00")
def test_search_by_numeric_code_name_email_and_filters(app):
    staff_client = log_in_now(app)
    rid = book(app, email="Erika.Muster@example.org")
    other = book(app, start=datetime(2026, 6, 11, 8), email="hans@example.org", code="bollerwagen")
    with app.app_context():
        code = db.session.get(Reservation, rid).numeric_code

    def found(query):
        page = staff_client.get("/staff/reservations", query_string=query).get_data(as_text=True)
        return {n for n in (rid, other) if f'/staff/reservations/{n}"' in page}
    assert found({"q": f"{code[:4]} {code[4:]}"}) == {rid}
    assert found({"q": "muster@"}) == {rid}
    assert found({"q": "erika"}) == {rid, other}  # both booked as "Erika"
    assert found({"type": "2"}) == {other}
    assert found({"state": "cancelled"}) == set()
    assert found({"from": "2026-06-11"}) == {other}
    assert found({"to": "2026-06-10"}) == {rid}
    assert found({"page": "99999999999"}) == {rid, other}  # ignored
    # A day that cannot be read is said so (it was quietly ignored before issue 30).
    refused = staff_client.get("/staff/reservations", query_string={"from": "not a date"})
    assert refused.status_code == 400 and "Jahr-Monat-Tag" in refused.get_data(as_text=True)
    assert found({"page": "9999"}) == set()


@freeze_time("2026-06-10 06:00:00")
def test_reservation_detail_shows_the_whole_history(app):
    staff_client = log_in_now(app)
    rid = book(app)
    client = app.test_client()
    client.post("/api/v1/controller/events", headers=AUTH, json={"events": [
        {"idempotency_key": "refused-0001", "kind": "scan_refused", "reservation_id": rid,
         "occurred_at": "2026-06-10T05:30:00Z", "detail": {"reason": "too_early"}}]})
    page = staff_client.get(f"/staff/reservations/{rid}").get_data(as_text=True)
    assert "online reserviert" in page
    assert "Code abgelehnt" in page and "zu früh" in page
    assert "Bestätigung" in page  # the mail


def test_remote_open_needs_a_reason_and_says_only_what_was_reported(app, staff_client):
    assert staff_client.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "3", "reason": ""}).status_code == 422
    unknown = staff_client.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "42", "reason": "test"})
    assert unknown.status_code == 422 and "kein solches Fach" in unknown.get_data(as_text=True)
    response = staff_client.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "3", "reason": "Wartung"})
    assert response.status_code == 302
    command_url = response.headers["Location"]
    assert staff_client.get(command_url + ".json").get_json()["state"] == "pending"
    assert "Warte auf die Antwort" in staff_client.get(command_url).get_data(as_text=True)
    with app.app_context():
        command = db.session.scalars(db.select(RemoteCommand)).one()
        assert (command.requested_by, command.reason) == ("erika", "Wartung")
        uuid, created = command.uuid, command.created_at
    entry = audit_actions(app)
    assert "remote_open" in entry
    # The controller reports the unlock: the page says so.
    app.test_client().post("/api/v1/controller/events", headers=AUTH, json={"events": [
        {"idempotency_key": "unlock-00001", "kind": "unlock_sent", "compartment": 3,
         "occurred_at": "2026-06-10T06:00:01Z", "detail": {"command_id": uuid}}]})
    assert staff_client.get(command_url + ".json").get_json() == {
        "state": "unlock_sent", "final": True, "detail": "",
        "text": "Das Schließfach hat entriegelt. Die Tür sollte jetzt offen sein."}
    # A second command nobody takes expires after its minute.
    second = staff_client.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "4", "reason": "x"})
    with freeze_time(created + timedelta(minutes=5)):
        assert staff_client.get(second.headers["Location"] + ".json").get_json()["state"] == "expired"


def test_alerts_inbox_mail_and_acknowledge(app, staff_client):
    with app.app_context():
        db.session.get(Site, 1).on_duty_email = "bereitschaft@stadt.example"
        db.session.commit()
    app.test_client().post("/api/v1/controller/events", headers=AUTH, json={"events": [
        {"idempotency_key": "left-open-01", "kind": "door_left_open", "compartment": 2,
         "occurred_at": "2026-06-10T06:00:00Z", "detail": {"seconds": 180}},
        {"idempotency_key": "opened-00001", "kind": "door_opened", "compartment": 2,
         "occurred_at": "2026-06-10T05:57:00Z"}]})
    page = staff_client.get("/staff/alerts").get_data(as_text=True)
    assert "Tür steht offen" in page and "Fach 2" in page

    sent = []

    class Capture:
        def send(self, message):
            sent.append(message)
    with app.app_context():
        mails = db.session.scalars(db.select(OutgoingMail)).all()
        assert [(m.kind, m.to_address) for m in mails if m.kind == "alert"] == [
            ("alert", "bereitschaft@stadt.example")]
        mail.send_due_mails(db.session, Capture(), datetime(2099, 1, 1))
    assert len(sent) == 1 and sent[0]["To"] == "bereitschaft@stadt.example"
    assert sent[0]["Subject"].startswith("Tür steht offen: Stadtpark")
    assert "/staff/alerts" in sent[0].get_body().get_content()

    with app.app_context():
        alert_id = db.session.scalars(db.select(ControllerEvent.id).where(
            ControllerEvent.kind == "door_left_open")).one()
    staff_client.post(f"/staff/alerts/{alert_id}/acknowledge", data={"note": "Tür geschlossen"})
    assert "Keine Meldungen." in staff_client.get("/staff/alerts").get_data(as_text=True)
    done = staff_client.get("/staff/alerts?show=acknowledged").get_data(as_text=True)
    assert "Bestätigt von erika" in done and "Tür geschlossen" in done
    # A second acknowledgement changes nothing.
    staff_client.post(f"/staff/alerts/{alert_id}/acknowledge", data={"note": "später"})
    with app.app_context():
        assert db.session.get(ControllerEvent, alert_id).acknowledge_note == "Tür geschlossen"


def test_a_silent_cabinet_raises_one_alert_and_clears_when_heard_again(app):
    with app.app_context():
        controller = db.session.get(Controller, 1)
        controller.last_seen_at = datetime(2026, 6, 10, 6, 0)
        db.session.commit()
        later = datetime(2026, 6, 10, 6, 11)
        assert alerts.raise_silent_cabinets(db.session, later, timedelta(minutes=10)) == 1
        assert alerts.raise_silent_cabinets(db.session, later, timedelta(minutes=10)) == 0
        assert [a.event.kind for a in alerts.inbox(db.session)] == ["cabinet_silent"]
        db.session.get(Controller, 1).last_seen_at = datetime(2026, 6, 10, 6, 12)
        db.session.commit()
        alerts.raise_silent_cabinets(db.session, datetime(2026, 6, 10, 6, 13), timedelta(minutes=10))
        assert [a.ended for a in alerts.inbox(db.session)] == [True]
        kinds = db.session.scalars(db.select(ControllerEvent.kind).order_by(ControllerEvent.id)).all()
        assert kinds == ["cabinet_silent", "cabinet_back"]


def test_controller_status_shows_on_the_cabinet_pages(app, staff_client):
    api = app.test_client()
    status = {"outbox": 7, "doors_open": [3], "boards_offline": [], "board_family": "B"}
    assert api.post("/api/v1/controller/status", headers=AUTH, json={"status": status}).status_code == 200
    assert api.post("/api/v1/controller/status", headers=AUTH, json={"status": "x"}).status_code == 400
    assert api.post("/api/v1/controller/status", headers=AUTH,
                    json={"status": {"x": "y" * 5000}}).status_code == 400
    overview = staff_client.get("/staff/cabinets").get_data(as_text=True)
    assert "online" in overview and ">7<" in overview
    page = staff_client.get("/staff/cabinets/1").get_data(as_text=True)
    assert "Bauart B" in page  # the controller's own setting disagrees with the cabinet (A)
    assert '<strong class="bad">offen</strong>' in page


@freeze_time("2026-06-10 06:00:00")
def test_item_out_of_service_moves_bookings_and_check_needed_waits_for_release(app):
    staff_client = log_in_now(app)
    rid = book(app)
    with app.app_context():
        item_id = db.session.get(Reservation, rid).item_id
    assert staff_client.post(f"/staff/items/{item_id}/out-of-service", data={"reason": ""}).status_code == 302
    with app.app_context():
        assert db.session.get(Item, item_id).in_service  # no reason: nothing happened
    staff_client.post(f"/staff/items/{item_id}/out-of-service", data={"reason": "Bremse zieht links"})
    with app.app_context():
        item = db.session.get(Item, item_id)
        assert not item.in_service and item.service_reason == "Bremse zieht links"
        assert db.session.get(Reservation, rid).item_id != item_id  # moved to a twin
        item.check_needed = True  # as a visitor's defect report leaves it
        db.session.commit()
    assert "Prüfung nötig" in staff_client.get("/staff/items").get_data(as_text=True)
    staff_client.post(f"/staff/items/{item_id}/back-in-service", data={"reason": "Bremse eingestellt"})
    with app.app_context():
        item = db.session.get(Item, item_id)
        assert item.in_service and not item.check_needed
    assert {"item_out_of_service", "item_released"} <= set(audit_actions(app))


@freeze_time("2026-06-10 06:00:00")
def test_today_per_cabinet(app):
    staff_client = log_in_now(app)
    due = book(app, start=datetime(2026, 6, 10, 8))
    out = book(app, start=datetime(2026, 6, 10, 6), email="o@example.org")
    with app.app_context():
        db.session.get(Reservation, out).state = "picked_up"
        db.session.commit()
    page = staff_client.get("/staff/").get_data(as_text=True)
    pickups = page.index("Heute abzuholen")
    items_out = page.index("Ausgeliehen")
    assert pickups < page.index(f"/staff/reservations/{due}\"") < items_out
    assert items_out < page.index(f"/staff/reservations/{out}\"")


@freeze_time("2026-06-10 06:00:00")
def test_the_phone_number_is_erased_with_the_name(app):
    staff_client = log_in_now(app)
    phone_booking(staff_client)
    with app.app_context():
        r = db.session.scalars(db.select(Reservation)).one()
        r.state = "returned"
        db.session.commit()
        assert lifecycle.erase_personal_data(db.session, datetime(2026, 8, 1), 30) == 1
        r = db.session.scalars(db.select(Reservation)).one()
        assert (r.visitor_name, r.phone) == (None, None)


def test_controller_tokens_shown_once_rotated_and_retired(app, admin_client):
    page = admin_client.post("/staff/admin/cabinets/1/controllers/new",
                             data={"name": "Ersatz-Pi"}).get_data(as_text=True)
    token = page.split('data-token>')[1].split("<")[0]
    api = app.test_client()

    def sync(tok):
        return api.get("/api/v1/controller/sync", headers={"Authorization": f"Bearer {tok}"}).status_code
    assert sync(token) == 200
    with app.app_context():
        new_id = db.session.scalars(db.select(Controller.id).where(Controller.name == "Ersatz-Pi")).one()
    rotated = admin_client.post(f"/staff/admin/controllers/{new_id}/rotate").get_data(as_text=True)
    new_token = rotated.split('data-token>')[1].split("<")[0]
    assert sync(token) == 401 and sync(new_token) == 200
    assert token not in admin_client.get("/staff/cabinets/1").get_data(as_text=True)
    admin_client.post(f"/staff/admin/controllers/{new_id}/retire", data={"confirmed": "yes"})
    assert sync(new_token) == 401
    assert {"controller_added", "controller_token_rotated", "controller_retired"} <= set(audit_actions(app))


def test_an_administrator_builds_a_site_from_nothing(app, admin_client):
    assert admin_client.post("/staff/admin/sites/new", data={
        "name": "Rosengarten", "slug": "Rosen Garten"}).status_code == 422  # bad short name
    response = admin_client.post("/staff/admin/sites/new", data={
        "name": "Rosengarten", "slug": "rosengarten", "address": "Am Rosengarten 1",
        "hotline": "0351 0000", "on_duty_email": "dienst@stadt.example"})
    assert response.status_code == 302
    with app.app_context():
        site = db.session.scalars(db.select(Site).where(Site.slug == "rosengarten")).one()
        site_id = site.id
    hours = {f"opens-{d}": "09:00" for d in range(6)} | {f"closes-{d}": "18:00" for d in range(6)}
    admin_client.post(f"/staff/admin/sites/{site_id}/hours", data=hours)  # Sunday closed
    admin_client.post(f"/staff/admin/sites/{site_id}/hours", data={"opens-0": "18:00", "closes-0": "09:00"})
    admin_client.post(f"/staff/admin/sites/{site_id}/special-days",
                      data={"day": "2026-12-24", "opens": "09:00", "closes": "12:00", "note": "Heiligabend"})
    admin_client.post("/staff/admin/cabinets/new", data={
        "site": str(site_id), "name": "Schrank am Teich", "location": "neben dem Kiosk",
        "board_family": "B"})
    with app.app_context():
        from locker_app.models import Cabinet, OpeningHours, SpecialDay
        cabinet = db.session.scalars(db.select(Cabinet).where(Cabinet.name == "Schrank am Teich")).one()
        assert (cabinet.board_family, cabinet.baudrate) == ("B", 19200)
        assert sorted(h.weekday for h in db.session.scalars(db.select(OpeningHours).where(
            OpeningHours.site_id == site_id))) == [0, 1, 2, 3, 4, 5]
        assert db.session.scalars(db.select(OpeningHours.opens).where(
            OpeningHours.site_id == site_id, OpeningHours.weekday == 0)).one().hour == 9  # bad row refused
        assert db.session.scalars(db.select(SpecialDay.note)).one() == "Heiligabend"
        cabinet_id = cabinet.id
    for number in (1, 2):
        assert admin_client.post(f"/staff/admin/cabinets/{cabinet_id}/compartments/new", data={
            "number": str(number), "board_address": "0", "lock_number": str(number),
            "item_sensor": "y"}).status_code == 302
    duplicate = admin_client.post(f"/staff/admin/cabinets/{cabinet_id}/compartments/new", data={
        "number": "3", "board_address": "0", "lock_number": "2"})
    assert duplicate.status_code == 422 and "Platinenadresse" in duplicate.get_data(as_text=True)
    admin_client.post("/staff/admin/item-types/new", data={
        "code": "sackkarre", "name_de": "Sackkarre", "plural_de": "Sackkarren",
        "name_en": "Hand truck", "plural_en": "Hand trucks"})
    with app.app_context():
        from locker_app.models import Compartment, ItemType
        kind = db.session.scalars(db.select(ItemType).where(ItemType.code == "sackkarre")).one()
        compartment = db.session.scalars(db.select(Compartment).where(
            Compartment.cabinet_id == cabinet_id, Compartment.number == 1)).one()
        kind_id, compartment_id = kind.id, compartment.id
    bad_rule = admin_client.post(f"/staff/admin/rules/{site_id}/{kind_id}", data={
        "min_loan_minutes": "120", "max_loan_minutes": "60", "max_days_ahead": "14", "lead_minutes": "0",
        "max_active_per_person": "1", "chain_gap_minutes": "60", "pickup_window_minutes": "30",
        "early_pickup_minutes": "15"})
    assert bad_rule.status_code == 422
    admin_client.post(f"/staff/admin/rules/{site_id}/{kind_id}", data={
        "min_loan_minutes": "30", "max_loan_minutes": "180", "max_days_ahead": "14", "lead_minutes": "0",
        "max_active_per_person": "1", "chain_gap_minutes": "60", "pickup_window_minutes": "30",
        "early_pickup_minutes": "15"})
    admin_client.post("/staff/items/new", data={"label": "Sackkarre 1", "item_type": str(kind_id),
                                                "compartment": str(compartment_id), "notes": "neu"})
    with app.app_context():
        from locker_app.models import BookingRule
        assert db.session.scalars(db.select(BookingRule.max_loan_minutes).where(
            BookingRule.item_type_id == kind_id)).one() == 180
        item = db.session.scalars(db.select(Item).where(Item.label == "Sackkarre 1")).one()
        assert item.compartment_id == compartment_id
    # Visitors can book it now.
    assert "Sackkarre" in app.test_client().get("/s/rosengarten/").get_data(as_text=True)
    actions = set(audit_actions(app))
    assert {"site_saved", "opening_hours_saved", "special_day_saved", "cabinet_saved",
            "compartment_saved", "item_type_saved", "rules_saved", "item_saved"} <= actions


def test_audit_log_is_filterable(app, admin_client):
    admin_client.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "2", "reason": "Wartung"})
    page = admin_client.get("/staff/admin/audit?action=remote_open").get_data(as_text=True)
    assert "remote_open" in page and "Wartung" in page
    assert "Wartung" not in admin_client.get("/staff/admin/audit?actor=nobody").get_data(as_text=True)


@freeze_time("2026-06-10 06:00:00")
def test_retired_things_are_not_offered_and_keep_their_history(app):
    staff_client = log_in_now(app)
    rid = book(app)
    with app.app_context():
        item_id = db.session.get(Reservation, rid).item_id
    staff_client.post(f"/staff/items/{item_id}/retire", data={"confirmed": "yes", "reason": "gestohlen"})
    with app.app_context():
        assert db.session.get(Item, item_id).retired_at is None  # it has a booking
    staff_client.post(f"/staff/items/{item_id}/out-of-service", data={"reason": "gestohlen"})
    staff_client.post(f"/staff/items/{item_id}/retire", data={"confirmed": "yes", "reason": "gestohlen"})
    with app.app_context():
        item = db.session.get(Item, item_id)
        assert item.retired_at is not None and item.compartment_id is None
        assert db.session.get(Reservation, rid).item_id != item_id  # moved, history kept
    site_page = app.test_client().get("/s/stadtpark/").get_data(as_text=True)
    assert "von 3 jetzt frei" in site_page  # rollators: three left
    # A retired item type is no longer offered, nor bookable by its address.
    make_account(app, "chefin", "admin")
    admin = app.test_client()
    log_in(admin, "chefin")
    admin.post("/staff/admin/item-types/2/retire", data={"confirmed": "yes"})
    site_page = app.test_client().get("/s/stadtpark/").get_data(as_text=True)
    assert "Bollerwagen reservieren" not in site_page and "Rollator reservieren" in site_page
    assert app.test_client().get("/s/stadtpark/reserve/bollerwagen").status_code == 404
    admin.post("/staff/admin/item-types/2/retire", data={"confirmed": "yes"})  # offered again
    assert app.test_client().get("/s/stadtpark/reserve/bollerwagen").status_code == 200


def test_retiring_disabling_and_opening_from_afar_ask_once_more(app, admin_client):
    """A wrong click on "retire", "disable" or "open" did it at once. Each now asks on a
    page of its own, with what the form sent carried over; only "yes" does it."""
    from locker_app.models import Cabinet, ItemType, RemoteCommand, Site, StaffUser
    make_account(app, "weber")
    with app.app_context():
        weber = db.session.scalars(db.select(StaffUser).where(StaffUser.username == "weber")).one()
        item = db.session.scalars(db.select(Item).order_by(Item.id)).first()
        controller = db.session.scalars(db.select(Controller)).first()
        ids = dict(weber=weber.id, item=item.id, controller=controller.id)
    asked = [
        ("/staff/admin/sites/1/retire", {}, "Den Standort"),
        ("/staff/admin/cabinets/1/retire", {}, "Den Schrank"),
        ("/staff/admin/item-types/2/retire", {}, "nicht mehr anbieten?"),
        (f"/staff/admin/controllers/{ids['controller']}/retire", {}, "Die Steuerung"),
        (f"/staff/admin/accounts/{ids['weber']}/active", {}, "Das Konto weber deaktivieren?"),
        (f"/staff/items/{ids['item']}/retire", {"reason": "gestohlen"}, "endgültig stilllegen?"),
        ("/staff/cabinets/1/open", {"compartment": "3", "reason": "Wartung"},
         "Fach 3 von"),
    ]
    for path, data, question in asked:
        page = admin_client.post(path, data=data, headers={"Referer": "http://localhost/staff/"})
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and question in html, (path, html[:3000])
        assert 'name="confirmed" value="yes"' in html and "Nein, zurück" in html
        assert f'action="{path}"' in html and 'href="/staff/"' in html
        for name, value in data.items():
            assert f'name="{name}" value="{value}"' in html
    with app.app_context():
        assert db.session.get(Site, 1).retired_at is None
        assert db.session.get(Cabinet, 1).retired_at is None
        assert db.session.get(ItemType, 2).retired_at is None
        assert db.session.get(Controller, ids["controller"]).retired_at is None
        assert db.session.get(StaffUser, ids["weber"]).active
        assert db.session.get(Item, ids["item"]).retired_at is None
        assert db.session.scalar(db.select(db.func.count(RemoteCommand.id))) == 0
    # "Yes" does it; putting it back into use asks nothing.
    assert admin_client.post("/staff/admin/cabinets/1/retire",
                             data={"confirmed": "yes"}).status_code == 302
    assert admin_client.post("/staff/admin/cabinets/1/retire").status_code == 302
    with app.app_context():
        assert db.session.get(Cabinet, 1).retired_at is None  # retired, then back again
    assert "cabinet_retired" in audit_actions(app) and "cabinet_reactivated" in audit_actions(app)


def test_a_retired_item_has_no_edit_link_and_cannot_be_changed(app, staff_client):
    with app.app_context():
        item_id = db.session.scalars(db.select(Item.id).order_by(Item.id)).first()
    staff_client.post(f"/staff/items/{item_id}/out-of-service", data={"reason": "gestohlen"})
    staff_client.post(f"/staff/items/{item_id}/retire",
                      data={"reason": "gestohlen", "confirmed": "yes"})
    page = staff_client.get("/staff/items").get_data(as_text=True)
    assert f'href="/staff/items/{item_id}/edit"' not in page
    assert f'href="/staff/items/{item_id + 1}/edit"' in page  # the others still have one
    refused = staff_client.get(f"/staff/items/{item_id}/edit")
    assert refused.status_code == 302
    assert "kann nicht mehr geändert werden" in staff_client.get(
        refused.headers["Location"]).get_data(as_text=True)
