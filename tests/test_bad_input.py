"""No input gives a 5xx: each of the inputs that answered 500 on main (issue 12), on SQLite
and on PostgreSQL, is refused with a 4xx and a reason, and nothing is stored."""
import pytest

from locker_app.extensions import db
from locker_app.models import ControllerEvent, Reservation
from tests.conftest import DEMO_TOKEN

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def booking(**changes):
    payload = {"site": "stadtpark", "item_type": "rollator", "start": "2030-06-10T10:30",
               "end": "2030-06-10T12:00", "name": "Erika", "email": None}
    payload.update(changes)
    return payload


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


@pytest.mark.parametrize("changes", [
    {"start": "0001-01-01T00:00"}, {"end": "0001-01-01T00:00"},
    {"start": "9999-12-31T23:59-01:00"}, {"end": "9999-12-31T23:59-01:00"},
    {"start": "0001-01-01T00:30+01:00"},
    {"name": "a\ud800"}, {"email": "x\udfff@example.org"},
    {"site": "stadt\u0000park"}, {"item_type": "roll\u0000ator"}, {"name": "Eri\u0000ka"},
    {"email": "er\u0000ika@example.org"},
    {"site": ["stadtpark"]}, {"start": 12}, {"name": {"a": 1}},
])
def test_booking_api_refuses_bad_values(any_app, changes):
    response = any_app.test_client().post("/api/v1/reservations", json=booking(**changes))
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.get_json()["error"]
    assert count(any_app, Reservation) == 0


def test_deeply_nested_json_is_refused(any_app):
    body = "[" * 100_000 + "]" * 100_000
    for path, headers in (("/api/v1/reservations", {}), ("/api/v1/controller/events", AUTH)):
        response = any_app.test_client().post(path, data=body, headers={
            **headers, "Content-Type": "application/json"})
        assert response.status_code == 400, path


def test_raw_lone_surrogate_in_json_is_refused(any_app):
    body = '{"site": "stadtpark", "item_type": "rollator", "start": "2030-06-10T10:30", ' \
           '"end": "2030-06-10T12:00", "name": "a\\ud800"}'
    response = any_app.test_client().post("/api/v1/reservations", data=body,
                                          content_type="application/json")
    assert response.status_code in (400, 422)


@pytest.mark.parametrize("url", ["/s/%00/", "/s/%00/reserve/rollator", "/s/stadtpark/reserve/%00",
                                 "/r/%00", "/r/%00/qr.svg", "/lang/%00"])
def test_nul_in_url_parts_is_a_404(any_app, url):
    assert any_app.test_client().get(url).status_code in (302, 404)


@pytest.mark.parametrize("since", ["99999999999999999999999", "-99999999999999999999999",
                                   "1e9", "0x10", "\u0000"])
def test_sync_cursor_out_of_range(any_app, since):
    response = any_app.test_client().get("/api/v1/controller/sync", query_string={"since": since},
                                         headers=AUTH)
    assert response.status_code == 400
    assert "since" in response.get_json()["error"]


def test_command_poll_parameters_out_of_range(any_app):
    client = any_app.test_client()
    for query in ({"after": "9" * 30}, {"wait": "nan"}, {"wait": "inf"}, {"wait": "1e400"}):
        assert client.get("/api/v1/controller/commands", query_string=query,
                          headers=AUTH).status_code in (200, 400), query


@pytest.mark.parametrize("event", [
    {"occurred_at": "0001-01-01T00:00:00Z"}, {"occurred_at": "9999-12-31T23:59:59-01:00"},
    {"occurred_at": "0001-01-01T00:30:00+01:00"},
    {"idempotency_key": "key-\u0000-0001"}, {"kind": "pickup\u0000"},
    {"detail": {"reason": "x\u0000y"}}, {"detail": {"k\u0000": 1}},
    {"detail": {"reason": "a\ud800"}}, {"reservation_id": 2**40},
])
def test_controller_events_refuse_bad_values(any_app, event):
    payload = {"idempotency_key": "bad-input-0001", "kind": "door_opened",
               "occurred_at": "2030-06-10T10:00:00Z", "compartment": 1}
    payload.update(event)
    response = any_app.test_client().post("/api/v1/controller/events", headers=AUTH,
                                          json={"events": [payload]})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert count(any_app, ControllerEvent) == 0


@pytest.mark.parametrize("field,value,status", [
    ("date", "0001-01-01", 422), ("end_date", "9999-12-31", 422), ("start", "99:99", 422),
    # A name is cleaned of control characters; an address with one is refused.
    ("name", "\u0000", 422), ("email", "a\u0000@b.de", 422)])
def test_booking_form_refuses_bad_values(any_app, field, value, status):
    data = {"date": "2030-06-10", "start": "10:30", "end_date": "2030-06-10", "end": "12:00",
            "name": "Erika", "email": ""}
    data[field] = value
    response = any_app.test_client().post("/s/stadtpark/reserve/rollator", data=data)
    assert response.status_code == status
    assert count(any_app, Reservation) == 0


@pytest.mark.parametrize("target", ["/\n/evil.example", "/\r\nSet-Cookie:x=1", "/ok\r\n"])
def test_newline_in_language_next(client, target):
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_huge_body_is_refused_before_it_is_read(app):
    from io import BytesIO
    client = app.test_client()
    for path in ("/api/v1/reservations", "/s/stadtpark/reserve/rollator", "/api/v1/controller/events"):
        response = client.post(path, data=BytesIO(b"x" * (100 * 1024 * 1024)),
                               headers={**AUTH, "Content-Type": "application/json",
                                        "Content-Length": str(100 * 1024 * 1024)})
        assert response.status_code == 413, path


def test_nul_in_a_staff_form_is_a_clear_400_on_postgresql(tmp_path):
    from tests.conftest import close_app, log_in, make_account, make_app
    app = make_app(tmp_path, "postgresql")
    try:
        make_account(app, "admin", "admin")
        client = app.test_client()
        log_in(client, "admin")
        response = client.post("/staff/admin/sites/new", data={"name": "Rosen\u0000garten",
                                                               "slug": "rosengarten"})
        assert response.status_code == 400
        assert "Mit der Anfrage stimmte etwas nicht" in response.get_data(as_text=True)
        assert client.get("/staff/admin/sites").status_code == 200  # the session goes on
    finally:
        close_app(app)


# Controller events that do not fit: stored as an anomaly, an alert, the reservation untouched

def _book_for_events(app):
    from datetime import timedelta
    from locker_app.models import ItemType, Site, utcnow
    from locker_app.services import booking
    with app.test_request_context():
        start = (utcnow() + timedelta(hours=1)).replace(second=0, microsecond=0)
        r = booking.create_reservation(
            db.session, site=db.session.scalars(db.select(Site)).one(),
            item_type=db.session.scalars(db.select(ItemType).where(ItemType.code == "rollator")).one(),
            start=start, end=start + timedelta(hours=1), name="Erika", email=None)
        return r.id, r.compartment.number


def _post(app, *events):
    from locker_app.models import utcnow
    now = utcnow().isoformat() + "Z"
    return app.test_client().post("/api/v1/controller/events", headers=AUTH, json={"events": [
        {"occurred_at": now, **e} for e in events]})


def _state_and_kinds(app, rid):
    with app.app_context():
        state = db.session.get(Reservation, rid).state
        kinds = db.session.scalars(db.select(ControllerEvent.kind).order_by(ControllerEvent.id)).all()
        return state, kinds


@pytest.mark.parametrize("case", ["return_of_booked", "compartment_99", "year_9999_is_future",
                                  "other_compartment"])
def test_events_that_do_not_fit_are_anomalies(any_app, case):
    rid, number = _book_for_events(any_app)
    event = {"idempotency_key": f"odd-{case}"[:64], "reservation_id": rid, "kind": "return",
             "compartment": number}
    if case == "compartment_99":
        event.update(kind="door_opened", compartment=99)
    elif case == "year_9999_is_future":
        event.update(kind="pickup", occurred_at="2199-12-31T23:00:00Z")
    elif case == "other_compartment":
        event.update(kind="pickup", compartment=number % 8 + 1)
    response = _post(any_app, event)
    assert response.status_code == 200
    assert response.get_json()["stored"][0] == event["idempotency_key"]
    state, kinds = _state_and_kinds(any_app, rid)
    assert state == "booked"
    assert kinds[-2:] == [event["kind"], "anomaly"]
    from locker_app.services.alerts import inbox
    with any_app.app_context():
        assert [a.event.kind for a in inbox(db.session)] == ["anomaly"]


def test_events_that_fit_still_move_the_reservation(any_app):
    rid, number = _book_for_events(any_app)
    _post(any_app, {"idempotency_key": "fit-pickup-1", "reservation_id": rid, "kind": "pickup",
                    "compartment": number},
          {"idempotency_key": "fit-return-1", "reservation_id": rid, "kind": "return",
           "compartment": number})
    state, kinds = _state_and_kinds(any_app, rid)
    assert state == "returned" and "anomaly" not in kinds


def test_a_controller_cannot_take_the_key_of_an_event_the_server_derives(any_app):
    """On main an event keyed ``anomaly-<key>`` sent first made the anomaly of ``<key>``
    fail on its unique key: the whole batch answered 500 on every retry. The server's own
    keys hold a ":", which a controller's key may not."""
    rid, number = _book_for_events(any_app)
    odd = {"idempotency_key": "late-return-1", "reservation_id": rid, "kind": "return",
           "compartment": number}
    assert _post(any_app, {**odd, "idempotency_key": "anomaly-late-return-1",
                           "kind": "door_closed"}).status_code == 200
    first = _post(any_app, odd)
    assert first.status_code == 200 and first.get_json()["stored"] == ["late-return-1"]
    assert _post(any_app, odd).get_json()["duplicates"] == ["late-return-1"]  # a retry
    state, kinds = _state_and_kinds(any_app, rid)
    assert state == "booked" and kinds[-2:] == ["return", "anomaly"]
    refused = _post(any_app, {**odd, "idempotency_key": "anomaly:0123456789"})
    assert refused.status_code == 400 and "idempotency_key" in refused.get_json()["error"]
