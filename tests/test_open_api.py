"""The public API for apps (issue 11): its OpenAPI 3.1 description is made from the code,
and every answer keeps to it (schemathesis), including the stable error objects."""
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import BookingRule, Reservation

NOW = datetime(2030, 5, 1, 6)  # 08:00 in Berlin
PATHS = {"/api/v1/sites", "/api/v1/sites/{slug}/item-types", "/api/v1/sites/{slug}/availability",
         "/api/v1/reservations", "/api/v1/reservations/{code}",
         "/api/v1/reservations/{code}/cancel"}


def _book(client, **changes):
    body = {"site": "stadtpark", "item_type": "rollator", "name": "Erika",
            "email": "erika@example.org", "start": "2030-05-02T10:00", "end": "2030-05-02T12:00"}
    body.update(changes)
    return client.post("/api/v1/reservations", json=body)


def test_the_description_is_openapi_3_1_made_from_the_routes(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert PATHS <= set(document["paths"]), sorted(document["paths"])
    # The controllers' own endpoints are not part of the public API.
    assert not any("controller" in path for path in document["paths"])
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "code"}
    created = document["paths"]["/api/v1/reservations"]["post"]["responses"]
    assert {"201", "409", "422", "429"} <= set(created)


@freeze_time(NOW)
def test_sites_item_types_and_their_rules(app):
    client = app.test_client()
    sites = client.get("/api/v1/sites").get_json()["sites"]
    assert [(s["slug"], s["item_types"]) for s in sites] == [("stadtpark", ["rollator", "bollerwagen"])]
    types = client.get("/api/v1/sites/stadtpark/item-types",
                       headers={"Accept-Language": "en"}).get_json()["item_types"]
    cart = types[1]
    assert (cart["code"], cart["name"], cart["items"], cart["free_now"]) == ("bollerwagen", "Handcart", 4, 4)
    assert cart["rules"]["max_loan_minutes"] == 24 * 60
    assert cart["rules"]["summary"].startswith("Handcarts can be borrowed for up to 1 day")
    # The sentence is made once per language and rule (free_times._rules_sentence): in
    # German after the English one, and anew when staff change the rule.
    german = client.get("/api/v1/sites/stadtpark/item-types").get_json()["item_types"][1]
    assert german["rules"]["summary"].startswith("Bollerwagen leihen Sie bis zu 1 Tag aus.")
    with app.app_context():
        rule = db.session.scalars(db.select(BookingRule).join(BookingRule.item_type).where(
            BookingRule.item_type.has(code="bollerwagen"))).one()
        rule.max_loan_minutes = 2 * 24 * 60
        db.session.commit()
    changed = client.get("/api/v1/sites/stadtpark/item-types").get_json()["item_types"][1]
    assert changed["rules"]["summary"].startswith("Bollerwagen leihen Sie bis zu 2 Tage aus.")


@freeze_time(NOW)
def test_availability_gives_free_stretches_per_type_and_day(app):
    client = app.test_client()
    for n in range(4):  # every rollator from 10:00 to 12:00 tomorrow
        assert _book(client, email=f"p{n}@example.org").status_code == 201
    answer = client.get("/api/v1/sites/stadtpark/availability?from=2030-05-02&to=2030-05-03"
                        "&item_type=rollator").get_json()
    assert answer["timezone"] == "Europe/Berlin"
    [rollators] = answer["item_types"]
    tomorrow, after = rollators["days"]
    assert tomorrow["date"] == "2030-05-02" and tomorrow["open"] is True
    assert [(r["start"], r["end"]) for r in tomorrow["free"]] == [
        ("2030-05-02T00:00:00+02:00", "2030-05-02T10:00:00+02:00"),
        ("2030-05-02T12:00:00+02:00", "2030-05-02T23:59:00+02:00")]
    assert len(after["free"]) == 1


def test_availability_on_the_night_the_clocks_go_back(app):
    client = app.test_client()
    with freeze_time(datetime(2099, 10, 24, 6)):
        for n in range(4):  # every rollator until 02:30 winter time, after the repeated hour
            assert _book(client, email=f"p{n}@example.org", start="2099-10-25T00:00:00+02:00",
                         end="2099-10-25T02:30:00+01:00").status_code == 201
    # Asked without freezegun, whose datetimes lose the fold that tells the two 02:30 apart
    # (this holds until 2099).
    answer = client.get("/api/v1/sites/stadtpark/availability?from=2099-10-25&to=2099-10-25"
                        "&item_type=rollator").get_json()
    [sunday] = answer["item_types"][0]["days"]
    # The second 02:30 of the night: taken for the first, the answer would be an hour early.
    assert sunday["free"][0]["start"] == "2099-10-25T02:30:00+01:00"


@pytest.mark.parametrize("query, field", [
    ("from=2030-05-03&to=2030-05-02", "to"),
    ("from=2030-05-01&to=2030-07-01", "to"),
    ("from=gestern", "from"),
    ("item_type=segway", "item_type"),
])
@freeze_time(NOW)
def test_availability_refuses_what_it_cannot_answer_with_the_field(app, query, field):
    response = app.test_client().get(f"/api/v1/sites/stadtpark/availability?{query}")
    assert response.status_code in (404, 422)
    body = response.get_json()
    assert body["field"] == field and body["code"] in ("invalid", "unknown_item_type") and body["error"]


@freeze_time(NOW)
def test_a_reservation_carries_its_numeric_code_page_and_rules_and_is_looked_up_and_cancelled(app):
    client = app.test_client()
    created = _book(client)
    assert created.status_code == 201
    body = created.get_json()
    # Before: neither the numeric code nor the rules were in the answer.
    assert len(body["numeric_code"]) == 8 and body["numeric_code"].isdigit()
    assert body["url"].endswith("/r/" + body["code"]) and body["qr_svg_url"].endswith("/qr.svg")
    assert body["rules"]["pickup_window_minutes"] == 60 and body["can_cancel"] is True
    assert body["cabinet"]["name"] and body["compartment"] == 1
    looked_up = client.get(f"/api/v1/reservations/{body['code']}").get_json()
    assert looked_up["id"] == body["id"] and looked_up["state"] == "booked"
    cancelled = client.post(f"/api/v1/reservations/{body['code']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["numeric_code"] is None
    # Asked twice: the same answer, nothing changes.
    assert client.post(f"/api/v1/reservations/{body['code']}/cancel").get_json()["state"] == "cancelled"
    with app.app_context():
        assert db.session.get(Reservation, body["id"]).state == "cancelled"


@freeze_time(NOW)
def test_errors_are_stable_objects_in_the_language_asked_for(app):
    client = app.test_client()
    unknown = client.get("/api/v1/reservations/not-a-code", headers={"Accept-Language": "en"})
    assert unknown.status_code == 404
    assert unknown.get_json() == {"error": "We could not find this reservation.",
                                  "code": "not_found", "field": "code"}
    for n in range(4):
        _book(client, email=f"p{n}@example.org")
    sold_out = _book(client, email="late@example.org")
    assert sold_out.status_code == 409 and sold_out.get_json()["code"] == "sold_out"
    missing = client.post("/api/v1/reservations", json={"site": "stadtpark"})
    assert missing.status_code == 422 and missing.get_json()["code"] == "invalid"
    assert client.get("/api/v1/sites/nowhere/item-types").get_json()["code"] == "unknown_site"
    started = _book(client, start="2030-05-01T08:30", end="2030-05-01T09:00", email="now@example.org")
    with freeze_time(NOW + timedelta(hours=1)):
        late = client.post(f"/api/v1/reservations/{started.get_json()['code']}/cancel")
    assert late.status_code == 409 and late.get_json()["code"] == "not_cancellable"


def test_every_answer_keeps_to_the_description(app):
    """schemathesis makes requests from the description (also odd ones) and checks each
    answer: no server error, a documented status, and a body that fits its schema."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance
    with app.app_context():
        for rule in db.session.scalars(db.select(BookingRule)):
            rule.max_days_ahead = 3650
        db.session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checked = 0
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            # Not "schema-valid data is accepted": a well-formed booking the rules refuse
            # (closed, too far ahead, an unknown site) is a documented 422 with its reason.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
        run()
        checked += 1
    assert checked == len(PATHS)


@freeze_time(NOW)
def test_a_window_just_found_sold_out_is_refused_without_asking_the_database(app, monkeypatch):
    """The rush for the last items (bench.booking_rush): before, each of 990 refusals ran
    six statements behind the others (p95 4.8 s for 1,000 at once); now a refusal repeated
    within a second is answered from memory."""
    from tests.test_city_scale import statements
    from locker_app.services.sold_out_memo import SoldOutMemo
    client = app.test_client()
    booked = [_book(client, email=f"p{n}@example.org").get_json() for n in range(4)]
    assert _book(client, email="first@example.org").get_json()["code"] == "sold_out"
    with statements(app) as seen:
        again = _book(client, email="second@example.org")
    assert again.status_code == 409 and again.get_json()["code"] == "sold_out"
    assert "Rollator" in again.get_json()["error"] and seen == []
    # A cancellation shows once the second has passed.
    client.post(f"/api/v1/reservations/{booked[0]['code']}/cancel")
    monkeypatch.setattr(SoldOutMemo, "SECONDS", 0.0)
    assert _book(client, email="third@example.org").status_code == 201


@freeze_time(NOW)
def test_a_refusal_from_memory_is_not_counted_against_the_client_address(app):
    """In the rush the limits cost a refusal from memory as much as the rest of it: they
    are now asked after the memo. Before, every sold-out answer counted as an attempt, and
    the 7th attempt from the address was 429 instead of "sold out"."""
    app.config["LIMIT_BOOKING_PER_ADDRESS"] = "6 per hour"
    client = app.test_client()
    for n in range(4):
        assert _book(client, email=f"p{n}@example.org").status_code == 201
    answers = [_book(client, email=f"late{n}@example.org") for n in range(5)]
    assert [(a.status_code, a.get_json()["code"]) for a in answers] == [(409, "sold_out")] * 5
    # The address still has its sixth attempt for a window with something free.
    assert _book(client, email="other@example.org", start="2030-05-03T10:00",
                 end="2030-05-03T12:00").status_code == 201
    assert _book(client, email="again@example.org", start="2030-05-03T14:00",
                 end="2030-05-03T16:00").status_code == 429
