"""The scheduled jobs, driven through time with freezegun: no-shows, overdue items,
reminders, erasure of personal data; each job twice changes nothing more."""
from datetime import datetime, timedelta

from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import (ItemType, OutgoingMail, Reservation, ReservationEvent, Site,
                               utcnow)
from locker_app.scheduler import INTERVALS, JOBS, build_scheduler, run_jobs
from locker_app.services import booking, lifecycle
from locker_app.services.reservation_log import record_change

BOOKED_AT = "2026-06-10 06:00:00"


def book(app, start=datetime(2026, 6, 10, 8), hours=2, email="erika@example.org", code="rollator"):
    with app.test_request_context():
        site = db.session.scalars(db.select(Site)).one()
        kind = db.session.scalars(db.select(ItemType).where(ItemType.code == code)).one()
        reservation = booking.create_reservation(
            db.session, site=site, item_type=kind, start=start, end=start + timedelta(hours=hours),
            name="Erika", email=email)
        return reservation.id


def state(app, rid):
    with app.app_context():
        return db.session.get(Reservation, rid).state


def mails(app, rid=None):
    with app.app_context():
        query = db.select(OutgoingMail.kind).order_by(OutgoingMail.id)
        if rid:
            query = query.where(OutgoingMail.reservation_id == rid)
        return db.session.scalars(query).all()


def events(app, rid):
    with app.app_context():
        return [(e.from_state, e.to_state, e.actor) for e in db.session.scalars(
            db.select(ReservationEvent).where(ReservationEvent.reservation_id == rid)
            .order_by(ReservationEvent.id))]


def test_a_booking_with_email_queues_one_confirmation(app):
    with freeze_time(BOOKED_AT):
        rid = book(app)
        book(app, start=datetime(2026, 6, 10, 12), email=None)
    assert mails(app) == ["confirmation"]
    assert mails(app, rid) == ["confirmation"]


def test_no_show_after_the_pickup_window_frees_the_item(app):
    with freeze_time(BOOKED_AT):
        rid = book(app)
    with freeze_time("2026-06-10 08:59:00"):
        run_jobs(app, ("expire_no_shows",))
        assert state(app, rid) == "booked"
    with freeze_time("2026-06-10 09:00:00"):  # the pickup window (1 h) is over
        assert run_jobs(app, ("expire_no_shows",)) == {"expire_no_shows": 1}
        assert run_jobs(app, ("expire_no_shows",)) == {"expire_no_shows": 0}
    assert state(app, rid) == "no_show"
    assert events(app, rid)[-1] == ("booked", "no_show", "scheduler")
    with freeze_time("2026-06-10 09:01:00"):  # the same item can be booked again at once
        other = book(app, start=datetime(2026, 6, 10, 9, 30), email=None)
    with app.app_context():
        assert db.session.get(Reservation, other).item_id == db.session.get(Reservation, rid).item_id


def test_overdue_marks_and_reminds_once(app):
    with freeze_time(BOOKED_AT):
        rid = book(app)
    with app.app_context():
        r = db.session.get(Reservation, rid)
        record_change(db.session, r, "picked_up", actor="controller", cause="test")
        db.session.commit()
    with freeze_time("2026-06-10 10:00:00"):
        for _ in range(2):
            run_jobs(app, ("mark_overdue",))
    assert state(app, rid) == "overdue"
    assert mails(app, rid) == ["confirmation", "overdue"]
    assert [e[1] for e in events(app, rid)] == ["booked", "picked_up", "overdue"]


def test_pickup_reminder_an_hour_before_only_for_early_bookings(app):
    with freeze_time(BOOKED_AT):
        early = book(app, start=datetime(2026, 6, 10, 12))
    with freeze_time("2026-06-10 11:30:00"):
        late = book(app, start=datetime(2026, 6, 10, 12), code="bollerwagen")  # booked 30 min before
    with freeze_time("2026-06-10 10:59:00"):
        run_jobs(app, ("pickup_reminders",))
    assert mails(app, early) == ["confirmation"]
    with freeze_time("2026-06-10 11:45:00"):
        run_jobs(app, ("pickup_reminders",))
        run_jobs(app, ("pickup_reminders",))
    assert mails(app, early) == ["confirmation", "reminder"]
    assert mails(app, late) == ["confirmation"]


def test_personal_data_is_erased_thirty_days_after_the_end(app):
    with freeze_time(BOOKED_AT):
        rid = book(app)
    with app.app_context():
        r = db.session.get(Reservation, rid)
        record_change(db.session, r, "picked_up", actor="controller", cause="t")
        record_change(db.session, r, "returned", actor="controller", cause="t")
        db.session.commit()
    with freeze_time("2026-07-10 09:59:00"):
        run_jobs(app, ("erase_personal_data",))
        with app.app_context():
            assert db.session.get(Reservation, rid).visitor_name == "Erika"
    with freeze_time("2026-07-10 10:00:00"):
        assert run_jobs(app, ("erase_personal_data",)) == {"erase_personal_data": 1}
    with app.app_context():
        r = db.session.get(Reservation, rid)
        assert (r.visitor_name, r.email, r.state) == (None, None, "returned")
        assert r.erased_at == datetime(2026, 7, 10, 10)
        # Kept for the statistics: item, window, history.
        assert r.item_id and r.start_at and len(r.events) == 3


def test_active_reservations_are_never_erased(app):
    with freeze_time(BOOKED_AT):
        rid = book(app)
    with app.app_context():
        r = db.session.get(Reservation, rid)
        record_change(db.session, r, "picked_up", actor="controller", cause="t")
        db.session.commit()
    with freeze_time("2027-01-01"):
        run_jobs(app, ("erase_personal_data",))
    with app.app_context():
        assert db.session.get(Reservation, rid).visitor_name == "Erika"


def test_a_failing_job_is_logged_and_the_others_run(app, monkeypatch, caplog):
    def broken(session, now):
        raise RuntimeError("database went away")
    monkeypatch.setattr(lifecycle, "expire_no_shows", broken)
    results = run_jobs(app)
    assert results["expire_no_shows"] == -1
    assert results["erase_personal_data"] == 0
    assert "job expire_no_shows failed" in caplog.text


def test_the_scheduler_holds_every_job_once(app):
    scheduler = build_scheduler(app)
    assert sorted(job.id for job in scheduler.get_jobs()) == sorted(JOBS) == sorted(INTERVALS)
    assert all(job.max_instances == 1 for job in scheduler.get_jobs())


def test_now_helper_is_naive_utc():
    with freeze_time("2026-03-29 01:30:00"):
        assert utcnow() == datetime(2026, 3, 29, 1, 30)


def test_two_schedulers_at_once_change_each_reservation_once(any_app):
    """Even two scheduler processes started by mistake record each no-show once."""
    import threading
    with freeze_time(BOOKED_AT):
        rids = [book(any_app, start=datetime(2026, 6, 10, 8 + n % 4), email=None,
                     code=("rollator", "bollerwagen")[n // 4]) for n in range(8)]
    barrier = threading.Barrier(2)
    results = []

    def scheduler():
        barrier.wait()
        results.append(run_jobs(any_app, ("expire_no_shows",))["expire_no_shows"])
    with freeze_time("2026-06-11 00:00:00"):
        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sum(results) == len(rids) and -1 not in results
    with any_app.app_context():
        changes = db.session.scalars(db.select(ReservationEvent).where(
            ReservationEvent.to_state == "no_show")).all()
        assert sorted(e.reservation_id for e in changes) == sorted(rids)
