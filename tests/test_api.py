"""The controller API on SQLite and on PostgreSQL: tokens, sync, events exactly once."""
from datetime import datetime

import pytest
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import ControllerEvent, Reservation
from locker_app.services import booking
from tests.conftest import DEMO_TOKEN

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def _book(app, start=datetime(2030, 5, 1, 8), end=datetime(2030, 5, 1, 10)):
    from locker_app.models import ItemType, Site
    with app.app_context():
        site = db.session.scalars(db.select(Site)).one()
        kind = db.session.scalars(db.select(ItemType).where(ItemType.code == "rollator")).one()
        r = booking.create_reservation(db.session, site=site, item_type=kind, start=start,
                                            end=end, name="Erika", email=None,
                                            now=datetime(2030, 5, 1, 7))
        return r.id


def event(key, kind="pickup", **extra):
    return {"idempotency_key": key, "kind": kind, "occurred_at": "2030-05-01T08:05:00Z", **extra}


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong", "Basic " + DEMO_TOKEN])
def test_unknown_tokens_get_401(any_app, header):
    client = any_app.test_client()
    headers = {"Authorization": header} if header else {}
    for method, path in (("get", "/api/v1/controller/sync"), ("post", "/api/v1/controller/events")):
        response = getattr(client, method)(path, headers=headers, json={"events": []})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.get_json()["error"]


def test_sync_gives_cabinet_keys_and_changes_incrementally(any_app):
    client = any_app.test_client()
    first = client.get("/api/v1/controller/sync", headers=AUTH).get_json()
    assert [c["number"] for c in first["cabinet"]["compartments"]] == list(range(1, 9))
    assert first["keys"] and first["reservations"] == []
    rid = _book(any_app)
    second = client.get(f"/api/v1/controller/sync?since={first['cursor']}", headers=AUTH).get_json()
    assert [(r["id"], r["state"], r["compartment"]) for r in second["reservations"]] == [(rid, "booked", 1)]
    assert second["reservations"][0]["valid_from"] == "2030-05-01T08:00:00Z"
    third = client.get(f"/api/v1/controller/sync?since={second['cursor']}", headers=AUTH).get_json()
    assert third["reservations"] == [] and third["cursor"] == second["cursor"]


def test_sync_pages_are_bounded(any_app):
    any_app.config["SYNC_PAGE_SIZE"] = 2
    for hour in (8, 11, 14):
        _book(any_app, datetime(2030, 5, 1, hour), datetime(2030, 5, 1, hour + 1))
    client = any_app.test_client()
    page = client.get("/api/v1/controller/sync", headers=AUTH).get_json()
    assert len(page["reservations"]) == 2 and page["more"] is True
    rest = client.get(f"/api/v1/controller/sync?since={page['cursor']}", headers=AUTH).get_json()
    assert len(rest["reservations"]) == 1 and rest["more"] is False


@freeze_time("2030-05-01 08:10:00")  # the events' own time: not "from the future"
def test_events_are_stored_exactly_once_and_move_the_reservation(any_app):
    rid = _book(any_app)
    client = any_app.test_client()
    batch = {"events": [event("key-00000001", "unlock_sent", reservation_id=rid, compartment=1),
                        event("key-00000002", "pickup", reservation_id=rid, compartment=1)]}
    assert client.post("/api/v1/controller/events", headers=AUTH, json=batch).get_json() == {
        "stored": ["key-00000001", "key-00000002"], "duplicates": []}
    again = client.post("/api/v1/controller/events", headers=AUTH, json=batch).get_json()
    assert again == {"stored": [], "duplicates": ["key-00000001", "key-00000002"]}
    with any_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ControllerEvent)) == 2
        reservation = db.session.get(Reservation, rid)
        assert reservation.state == "picked_up"
        assert [(e.to_state, e.actor) for e in reservation.events] == [
            ("booked", "visitor"), ("picked_up", "controller")]


@pytest.mark.parametrize("payload, message", [
    (None, "events"),
    ({"events": "no"}, "events"),
    ({"events": [event("short")]}, "idempotency_key"),
    ({"events": [event("key-00000001", "explode")]}, "unknown kind"),
    ({"events": [{**event("key-00000001"), "occurred_at": "yesterday"}]}, "occurred_at"),
    ({"events": [{**event("key-00000001"), "occurred_at": "2030-05-01T08:00:00"}]}, "time zone"),
    ({"events": [event("key-00000001", reservation_id="7")]}, "reservation_id"),
    ({"events": [event("key-00000001", compartment=-1)]}, "compartment"),
    ({"events": [event("key-00000001", detail=[1])]}, "detail"),
    ({"events": [event(f"key-{i:08d}") for i in range(201)]}, "at most"),
])
def test_bad_batches_are_refused_whole(any_app, payload, message):
    client = any_app.test_client()
    good = event("key-99999999", "door_forced", compartment=1)
    if isinstance(payload, dict) and isinstance(payload.get("events"), list):
        payload = {"events": [good] + payload["events"]}
    response = client.post("/api/v1/controller/events", headers=AUTH, json=payload)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    with any_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ControllerEvent)) == 0


@freeze_time("2030-05-01 08:10:00")
def test_events_for_another_cabinets_reservation_do_not_touch_it(any_app):
    rid = _book(any_app)
    with any_app.app_context():
        from locker_app.models import Cabinet, Site
        from locker_app.services.controllers import register_controller
        other = Cabinet(site=db.session.scalars(db.select(Site)).one(), name="Anderer Schrank")
        db.session.add(other)
        _, token = register_controller(db.session, other, "fremd")
    response = any_app.test_client().post(
        "/api/v1/controller/events", headers={"Authorization": f"Bearer {token}"},
        json={"events": [event("key-00000003", "pickup", reservation_id=rid)]})
    assert response.status_code == 200
    with any_app.app_context():
        assert db.session.get(Reservation, rid).state == "booked"
        stored = db.session.scalars(db.select(ControllerEvent)).one()
        assert stored.reservation_id is None


def _post(app, **fields):
    body = {"site": "stadtpark", "item_type": "rollator", "name": "Erika",
            "start": "2030-05-01T10:00:00+02:00", "end": "2030-05-01T12:00:00+02:00"}
    body.update(fields)
    return app.test_client().post("/api/v1/reservations", json=body)


def _far_ahead(app):
    from locker_app.models import BookingRule
    with app.app_context():
        for rule in db.session.scalars(db.select(BookingRule)):
            rule.max_days_ahead = 3650
        db.session.commit()


def test_booking_api_creates_and_converts_time_zones(any_app):
    _far_ahead(any_app)
    response = _post(any_app, start="2030-05-01T08:00:00Z", end="2030-05-01T12:00")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    # "Z" is UTC; a time without an offset is Berlin wall-clock time (UTC+2 in May).
    assert body["start"] == "2030-05-01T08:00:00Z" and body["end"] == "2030-05-01T10:00:00Z"
    assert body["state"] == "booked" and body["compartment"] == 1 and "/r/" in body["url"]


@pytest.mark.parametrize("fields, status, field", [
    ({"site": "nirgendwo"}, 422, "site"),
    ({"item_type": "segway"}, 422, "item_type"),
    ({"start": "morgen"}, 422, "start"),
    ({"start": 5}, 422, "start"),
    ({"end": "2030-05-01T09:00:00+02:00"}, 422, "end"),
    ({"name": ""}, 422, "name"),
    ({"name": ["x"]}, 422, "name"),
    ({"name": "x" * 81}, 422, "name"),
    ({"email": "nope"}, 422, "email"),
    ({"start": "2030-03-31T02:30:00"}, 422, "start"),  # the hour the clocks skip
])
def test_booking_api_refuses_bad_input_clearly(any_app, fields, status, field):
    _far_ahead(any_app)
    response = _post(any_app, **fields)
    assert response.status_code == status
    body = response.get_json()
    assert body["field"] == field and body["error"]
    with any_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Reservation)) == 0


def test_booking_api_wants_json(app):
    response = app.test_client().post("/api/v1/reservations", data="site=stadtpark")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]
