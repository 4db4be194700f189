"""An item out of service: its bookings move to a free twin in the same cabinet (the
controller learns the new compartment with its next sync), or are cancelled with a mail."""
from datetime import datetime

from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import Item, OutgoingMail, Reservation
from locker_app.services.inventory import back_in_service, take_out_of_service
from tests.conftest import DEMO_TOKEN
from tests.test_lifecycle import book

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


@freeze_time("2026-06-10 06:00:00")
def test_bookings_move_to_a_free_twin_and_the_controller_learns_it(app):
    client = app.test_client()
    cursor = client.get("/api/v1/controller/sync", headers=AUTH).get_json()["cursor"]
    rid = book(app)
    with app.app_context():
        assert db.session.get(Reservation, rid).compartment.number == 1
        code_before = db.session.get(Reservation, rid).code
        result = take_out_of_service(db.session, db.session.get(Item, 1), reason="wheel broken")
        assert result == {"moved": [rid], "cancelled": []}
        moved = db.session.get(Reservation, rid)
        assert (moved.state, moved.compartment.number, moved.code) == ("booked", 2, code_before)
        assert moved.events[-1].cause == "moved to compartment 2: Rollator 1 wheel broken"
    sync = client.get(f"/api/v1/controller/sync?since={cursor}", headers=AUTH).get_json()
    assert [(r["id"], r["compartment"]) for r in sync["reservations"]] == [(rid, 2)]


@freeze_time("2026-06-10 06:00:00")
def test_without_a_free_twin_the_booking_is_cancelled_with_a_mail(app):
    rids = [book(app, start=datetime(2026, 6, 10, 8), email=f"v{n}@example.org") for n in range(4)]
    with app.app_context():
        result = take_out_of_service(db.session, db.session.get(Item, 1))
        assert result == {"moved": [], "cancelled": [rids[0]]}
        assert db.session.get(Reservation, rids[0]).state == "cancelled"
        assert db.session.scalars(db.select(OutgoingMail.kind).where(
            OutgoingMail.reservation_id == rids[0]).order_by(OutgoingMail.id)).all() == [
            "confirmation", "cancelled_by_staff"]
        # The others keep their items; the broken one is not offered any more.
        assert [db.session.get(Reservation, r).state for r in rids[1:]] == ["booked"] * 3
        back_in_service(db.session, db.session.get(Item, 1))
        assert db.session.get(Item, 1).in_service


@freeze_time("2026-06-10 06:00:00")
def test_picked_up_items_stay_with_their_visitor(app):
    rid = book(app)
    with app.app_context():
        from locker_app.services.reservation_log import record_change
        r = db.session.get(Reservation, rid)
        record_change(db.session, r, "picked_up", actor="controller", cause="t")
        db.session.commit()
        assert take_out_of_service(db.session, db.session.get(Item, 1)) == {"moved": [], "cancelled": []}
        assert db.session.get(Reservation, rid).compartment.number == 1
