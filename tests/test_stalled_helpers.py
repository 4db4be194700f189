"""Issue 30, part 1: when a helper stalls (it takes the connection and then says nothing, as a
stopped host or a full network queue does), every visitor gets an answer within seconds.

The stalled helpers here are real sockets: a listener that accepts and never answers, and a
TCP relay in front of PostgreSQL that can be told to stop passing bytes on."""
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
