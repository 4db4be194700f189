"""Issue 30, part 1: when a helper stalls (it takes the connection and then says nothing, as a
stopped host or a full network queue does), every visitor gets an answer within seconds.

The stalled helpers here are real sockets: a listener that accepts and never answers, and a
TCP relay in front of PostgreSQL that can be told to stop passing bytes on
(bench/fault_proxy.py)."""
from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest

from locker_app import create_app
from locker_app.config import TestConfig
from locker_app.models import utcnow
from tests.conftest import close_app, make_app

# What "within seconds" means in these tests: the issue asks for an answer within 5 s; the
# bounds below are well under that, and without them each request waited 40 s or more.
ANSWER_WITHIN = 5.0


class SilentServer:
    """Accepts every connection and never sends a byte (a stalled Redis, mail server...)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.held.append(connection)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for connection in self.held:
            connection.close()
        self.listener.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def api_window(days: int = 1):
    start = (utcnow() + timedelta(days=days)).replace(hour=8, minute=0, second=0, microsecond=0)
    return (start.isoformat(timespec="minutes") + "+00:00",
            (start + timedelta(hours=1)).isoformat(timespec="minutes") + "+00:00")


def test_a_stalled_redis_answers_nobody_late_and_the_limits_still_count(tmp_path, silent_server):
    """On main a booking and a cancel through a Redis that accepts and says nothing waited
    40 s or more; the memory fallback worked only when Redis refused the connection."""
    seeded = make_app(tmp_path)
    settings = {"SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"],
                "SIGNING_KEY_DIR": seeded.config["SIGNING_KEY_DIR"],
                "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{silent_server.port}/0",
                "LIMIT_BOOKING_PER_ADDRESS": "3 per hour",
                "LIMIT_LOGIN_PER_ADDRESS": "2 per 15 minutes"}
    close_app(seeded)
    app = create_app(TestConfig, settings)
    client = app.test_client()
    try:
        start, end = api_window()
        answers = []
        for _ in range(4):
            response, took = timed(lambda: client.post("/api/v1/reservations", json={
                "site": "stadtpark", "item_type": "rollator", "start": start, "end": end,
                "name": "Erika"}))
            assert took < ANSWER_WITHIN, f"a booking waited {took:.1f} s for a stalled Redis"
            answers.append(response.status_code)
        # Counted in memory meanwhile: the first books, the next two are refused by the
        # rules (one active reservation of the type per browser), the fourth by the limit.
        assert answers[0] == 201 and answers[-1] == 429, answers
        code = client.post("/api/v1/reservations", json={}).status_code
        assert code == 429
        logins = []
        for _ in range(3):
            response, took = timed(lambda: client.post(
                "/staff/login", data={"username": "nobody", "password": "wrong"}))
            assert took < ANSWER_WITHIN, f"a login waited {took:.1f} s for a stalled Redis"
            logins.append(response.status_code)
        assert logins == [401, 401, 429]
        assert silent_server.held, "the app never tried the stalled Redis"
    finally:
        close_app(app)


def booking_body(days: int = 1) -> dict:
    start, end = api_window(days)
    return {"site": "stadtpark", "item_type": "rollator", "start": start, "end": end,
            "name": "Erika"}


def reservations_stored(app) -> int:
    from locker_app.extensions import db
    from locker_app.models import Reservation
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Reservation))


def assert_try_again_later(response, took: float, json: bool = False) -> None:
    assert took < ANSWER_WITHIN, f"answered after {took:.1f} s"
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert response.headers["Retry-After"] == "60"
    if json:
        assert response.get_json()["code"] == "unavailable"
    else:
        assert "in einer Minute noch einmal" in response.get_data(as_text=True)


def test_a_locked_sqlite_database_is_answered_try_again_within_seconds(app):
    """On main a booking waited 30 s for SQLite's write lock, five times over, and was then
    answered "sold out"."""
    import sqlite3
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    stored = reservations_stored(app)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        client = app.test_client()
        page, took = timed(lambda: client.get("/s/stadtpark/"))
        assert page.status_code == 200 and took < ANSWER_WITHIN  # readers do not wait
        response, took = timed(lambda: client.post("/api/v1/reservations",
                                                   json=booking_body()))
        assert_try_again_later(response, took, json=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert reservations_stored(app) == stored  # answered "try again": nothing was booked
    assert app.test_client().post("/api/v1/reservations",
                                  json=booking_body()).status_code == 201


def postgres_app(tmp_path, url: str | None = None):
    """The seeded PostgreSQL app, its pool emptied: connections are made anew in requests."""
    from locker_app.extensions import db
    app = make_app(tmp_path, "postgresql")
    if url:
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        close_app(app)
        app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                      "SIGNING_KEY_DIR": app.config["SIGNING_KEY_DIR"]})
    with app.app_context():
        db.engine.dispose()
    return app


def test_a_locked_postgresql_table_is_answered_try_again_within_seconds(tmp_path):
    """A statement that waits on a lock (a long migration, a stuck transaction) waited
    without end on main."""
    import psycopg

    from tests.conftest import PG_URL
    app = postgres_app(tmp_path)
    stored = reservations_stored(app)
    with app.app_context():
        from locker_app.extensions import db
        db.engine.dispose()
    holder = psycopg.connect(PG_URL.replace("+psycopg", ""))
    holder.execute("LOCK TABLE reservation IN ACCESS EXCLUSIVE MODE")
    try:
        client = app.test_client()
        page, took = timed(lambda: client.get("/s/stadtpark/"))
        assert_try_again_later(page, took)
        response, took = timed(lambda: client.post("/api/v1/reservations",
                                                   json=booking_body()))
        assert_try_again_later(response, took, json=True)
    finally:
        holder.rollback()
        holder.close()
    assert reservations_stored(app) == stored
    assert app.test_client().post("/api/v1/reservations",
                                  json=booking_body()).status_code == 201
    close_app(app)


def test_a_postgresql_server_that_stops_answering_is_answered_try_again(tmp_path):
    """A database host that takes connections and says nothing: on main every request,
    the staff login included, waited 40 s or more."""
    from sqlalchemy import make_url

    from tests.conftest import PG_URL
    from bench.fault_proxy import FaultProxy
    url = make_url(PG_URL)
    relay = FaultProxy((url.host, url.port or 5432))
    try:
        app = postgres_app(tmp_path, url.set(host="127.0.0.1", port=relay.port)
                           .render_as_string(hide_password=False))
        client = app.test_client()
        assert client.get("/s/stadtpark/").status_code == 200  # through the relay
        relay.stall()
        with app.app_context():
            from locker_app.extensions import db
            db.engine.dispose()  # the host is gone; new connections are tried
        for call in (lambda: client.get("/s/stadtpark/"),
                     lambda: client.post("/staff/login", data={"username": "admin",
                                                               "password": "whatever"})):
            response, took = timed(call)
            assert_try_again_later(response, took)
        response, took = timed(lambda: client.post("/api/v1/reservations", json=booking_body()))
        assert_try_again_later(response, took, json=True)
        close_app(app)
    finally:
        relay.close()


def test_a_stalled_mail_server_costs_one_wait_per_run_and_loses_nothing(app, silent_server):
    """Each mail waited SMTP_TIMEOUT (20 s) on its own: fifty queued mails held the mail job
    for over a quarter of an hour while the server took connections and said nothing."""
    from locker_app.extensions import db
    from locker_app.models import OutgoingMail
    from locker_app.scheduler import run_jobs
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=silent_server.port,
                      SMTP_TIMEOUT=1)
    client = app.test_client()
    for day in (1, 2, 3):
        body = {**booking_body(day), "email": f"visitor{day}@example.org",
                "item_type": "rollator" if day != 2 else "bollerwagen"}
        assert client.post("/api/v1/reservations", json=body).status_code == 201
    result, took = timed(lambda: run_jobs(app, ("send_mails",)))
    assert result == {"send_mails": 0}
    assert took < 3 * app.config["SMTP_TIMEOUT"]
    with app.app_context():
        mails = db.session.scalars(db.select(OutgoingMail).order_by(OutgoingMail.id)).all()
        assert [mail.attempts for mail in mails] == [1, 0, 0]
        assert "timed out" in mails[0].last_error
        assert all(mail.sent_at is None for mail in mails)


def test_a_connection_lost_as_a_request_that_only_read_ends_keeps_its_answer(tmp_path):
    """The bench of faults found it: a request's last COMMIT (sent when it only read, to
    keep PostgreSQL's prepared statements) failed on a cut connection after the answer was
    made, and gunicorn answered 500 instead; a booking written through the pipeline was
    such a request, so a stored booking was answered as failed."""
    from sqlalchemy import event, make_url

    from bench.fault_proxy import FaultProxy
    from tests.conftest import PG_URL
    url = make_url(PG_URL)
    relay = FaultProxy((url.host, url.port or 5432))
    try:
        app = postgres_app(tmp_path, url.set(host="127.0.0.1", port=relay.port)
                           .render_as_string(hide_password=False))
        with app.app_context():
            from locker_app.extensions import db
            engine = db.engine
        cut = []
        event.listen(engine, "commit", lambda conn: cut and relay.cut())
        client = app.test_client()
        assert client.get("/s/stadtpark/").status_code == 200
        cut.append(True)
        page = client.get("/s/stadtpark/")
        assert page.status_code == 200 and "<h1" in page.get_data(as_text=True)
        cut.clear()
        relay.heal()
        booked = client.post("/api/v1/reservations", json=booking_body())
        assert booked.status_code == 201
        close_app(app)
    finally:
        relay.close()
