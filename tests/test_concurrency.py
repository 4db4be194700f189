"""50 visitors book the last free item at the same moment, through several gunicorn worker
processes: exactly one gets it, the others a clear "sold out", nobody an error page. And the
database itself refuses an overlap that bypasses the Python code."""
import os
import socket
import secrets
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy.exc import IntegrityError

from locker_app.extensions import db
from locker_app.models import Item, Reservation, ReservationState
from tests.conftest import close_app, make_app, wait_until

ROOT = Path(__file__).resolve().parent.parent
VISITORS = 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def leave_one_rollator(app) -> None:
    with app.app_context():
        for item in db.session.scalars(db.select(Item).where(Item.id.in_([2, 3, 4]))):
            item.in_service = False
        db.session.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def gunicorn(request, tmp_path):
    app = make_app(tmp_path, request.param)
    leave_one_rollator(app)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    close_app(app)
    port = free_port()
    env = {**os.environ, "LOCKER_DATABASE_URL": url, "LOCKER_SIGNING_KEY_DIR": str(tmp_path / "keys"),
           "LOCKER_WORKERS": "3", "LOCKER_BIND": f"127.0.0.1:{port}",
           "LOCKER_SECRET_KEY": secrets.token_hex(32)}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                               "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        assert server.poll() is None, server.stdout.read()
        try:
            return requests.get(base + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_until(up, timeout=30, interval=0.1, message="gunicorn")
    yield app, base
    server.terminate()
    output, _ = server.communicate(timeout=20)
    assert "Traceback" not in output, output


def test_fifty_visitors_one_rollator(gunicorn):
    app, base = gunicorn
    barrier = threading.Barrier(VISITORS)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def visitor(number: int) -> None:
        http = requests.Session()
        barrier.wait()
        response = http.post(f"{base}/api/v1/reservations", timeout=60, json={
            "site": "stadtpark", "item_type": "rollator", "name": f"Besucher {number}",
            "start": "2030-06-10T10:00:00+02:00", "end": "2030-06-10T12:00:00+02:00"})
        with lock:
            results.append((response.status_code, response.json()))

    # The rules' "how far ahead" would refuse 2030: allow it for this test.
    with app.app_context():
        from locker_app.models import BookingRule
        for rule in db.session.scalars(db.select(BookingRule)):
            rule.max_days_ahead = 3650
        db.session.commit()
    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(VISITORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    statuses = sorted(status for status, _ in results)
    assert len(results) == VISITORS
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == VISITORS - 1, statuses
    assert all(body["code"] == "sold_out" and "kein Rollator frei" in body["error"]
               for status, body in results if status == 409)
    with app.app_context():
        active = db.session.scalars(db.select(Reservation).where(
            Reservation.state.in_(ReservationState.ACTIVE))).all()
        assert [r.item_id for r in active] == [1]
    close_app(app)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_database_refuses_an_overlap_written_past_the_code(tmp_path, backend):
    app = make_app(tmp_path, backend)
    with app.app_context():
        item = db.session.get(Item, 1)

        def hold(start_hour, end_hour, state="booked"):
            db.session.add(Reservation(
                item=item, compartment=item.compartment, state=state, visitor_name="x",
                start_at=datetime(2030, 1, 1, start_hour), end_at=datetime(2030, 1, 1, end_hour),
                pickup_until=datetime(2030, 1, 1, start_hour + 1)))
            db.session.commit()
        hold(10, 12)
        with pytest.raises(IntegrityError):
            hold(11, 13)
        db.session.rollback()
        hold(12, 14)  # touching windows do not overlap
        hold(9, 13, state="cancelled")  # inactive ones do not count
        first = db.session.scalars(db.select(Reservation).order_by(Reservation.id)).first()
        with pytest.raises(IntegrityError):  # an update into an overlap is refused too
            first.end_at = datetime(2030, 1, 1, 13)
            db.session.commit()
        db.session.rollback()
    close_app(app)
