"""One client cannot book out the park (issue 12: 475 bookings in 13 s on main), yet many
people behind one address can book; 429 with a plain sentence and Retry-After; the
counts are shared by all web processes through the real Redis."""
import os
from datetime import timedelta

import pytest

from locker_app import create_app
from locker_app.config import TestConfig
from locker_app.extensions import db
from locker_app.models import Reservation, utcnow
from tests.conftest import IN_CI

# A database of its own on the machine's Redis, emptied by the test that uses it.
REDIS_URL = os.environ.get("LOCKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def window(day: int, hour: int = 8):
    start = (utcnow() + timedelta(days=day)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (start.isoformat(timespec="minutes") + "+00:00",
            (start + timedelta(hours=1)).isoformat(timespec="minutes") + "+00:00")


def api_booking(client, day, email=None, hour=8, kind="rollator"):
    start, end = window(day, hour)
    return client.post("/api/v1/reservations", json={
        "site": "stadtpark", "item_type": kind, "start": start, "end": end,
        "name": "Flood", "email": email})


def booked(app):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Reservation))


def test_a_flood_through_the_api_books_no_more_than_the_rules_allow(app):
    client = app.test_client()
    statuses = [api_booking(client, 1 + n % 29, hour=6 + n // 29 % 12).status_code
                for n in range(1000)]
    assert booked(app) == app.config["ADDRESS_MAX_ACTIVE"] == 10
    assert statuses.count(201) == 10
    assert statuses.count(429) == 1000 - 60  # 60 attempts an hour per address
    assert set(statuses) == {201, 422, 429}


def test_a_flood_through_the_form_with_a_new_cookie_each_time(any_app):
    app = any_app
    for n in range(80):
        client = app.test_client()  # a new browser session every time
        start, _ = window(1 + n % 29)
        client.post("/s/stadtpark/reserve/rollator", data={
            "date": start[:10], "start": "10:00", "end_date": start[:10], "end": "11:00",
            "name": "Flood", "email": ""})
    assert booked(app) == 10


def test_plus_tags_and_case_are_one_person(any_app):
    app = any_app
    client = app.test_client()
    answers = [api_booking(client, day, email=email).status_code for day, email in (
        (1, "erika@example.org"), (3, "Erika+1@Example.org"), (5, "erika+zwei@example.org"))]
    assert answers == [201, 201, 422]  # two active reservations per person


def test_many_people_behind_one_address_can_book(app):
    """A care home: ten residents, one internet connection, each their own address."""
    client = app.test_client()
    answers = [api_booking(client, 1 + n, email=f"bewohner{n}@heim.example").status_code
               for n in range(10)]
    assert answers == [201] * 10


def test_each_request_is_counted_for_its_own_person_under_one_app_context(app):
    """The body and the person are remembered for one request only: an app context pushed
    before several requests (as a script or a test does) once let the second request be
    counted for the first one's person, and refused."""
    app.config["LIMIT_BOOKING_PER_PERSON"] = "1 per hour"
    client = app.test_client()
    with app.app_context():
        answers = [api_booking(client, day, email=email).status_code
                   for day, email in ((1, "anna@example.org"), (2, "bernd@example.org"))]
    assert answers == [201, 201]


def test_429_says_why_in_words_with_retry_after(app):
    app.config["LIMIT_BOOKING_PER_ADDRESS"] = "2 per hour"
    client = app.test_client()
    for _ in range(2):
        client.post("/s/stadtpark/reserve/rollator", data={"name": ""})
    page = client.post("/s/stadtpark/reserve/rollator", data={"name": ""})
    assert page.status_code == 429
    assert int(page.headers["Retry-After"]) > 0
    assert "Zu viele Versuche" in page.get_data(as_text=True)
    api = client.post("/api/v1/reservations", json={})
    assert api.status_code == 429 and api.get_json()["code"] == "rate_limited"
    assert "Retry-After" in api.headers
    # Reading is never limited.
    assert client.get("/s/stadtpark/reserve/rollator").status_code == 200


def test_login_attempts_per_address(app):
    app.config["LIMIT_LOGIN_PER_ADDRESS"] = "3 per 15 minutes"
    client = app.test_client()
    answers = [client.post("/staff/login", data={"username": f"u{n}", "password": "x"})
               for n in range(4)]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
    # Retry-After on the refusal only, with the time until the window has room again.
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 15 * 60 + 1
    assert "Retry-After" not in answers[0].headers


def redis_problem() -> str | None:
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:  # any failure means: no Redis for this test
        return f"Redis at {REDIS_URL} not reachable ({error.__class__.__name__}: {error})"
    return None


def test_the_count_lives_in_redis_and_outlives_a_web_process(tmp_path):
    """A web process that starts anew (a new storage connection, as another gunicorn
    worker or host has) continues the count it finds in Redis; memory would start at 0."""
    problem = redis_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI must run the Redis tests, but {problem}")
        pytest.skip(problem)
    import redis
    from tests.conftest import close_app, make_app
    redis.Redis.from_url(REDIS_URL).flushdb()
    seeded = make_app(tmp_path)
    settings = {"SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"],
                "SIGNING_KEY_DIR": seeded.config["SIGNING_KEY_DIR"],
                "RATELIMIT_STORAGE_URI": REDIS_URL,
                "LIMIT_BOOKING_PER_ADDRESS": "5 per hour"}
    close_app(seeded)
    first = create_app(TestConfig, settings)
    answers = [first.test_client().post("/api/v1/reservations", json={}).status_code
               for _ in range(3)]
    close_app(first)
    second = create_app(TestConfig, settings)  # init_app: a new connection to Redis
    answers += [second.test_client().post("/api/v1/reservations", json={}).status_code
                for _ in range(3)]
    close_app(second)
    assert answers == [422, 422, 422, 422, 422, 429]  # unknown site, then the limit
    assert [key for key in redis.Redis.from_url(REDIS_URL).keys() if b"booking-address" in key]
    memory = create_app(TestConfig, {**settings, "RATELIMIT_STORAGE_URI": "memory://"})
    assert memory.test_client().post("/api/v1/reservations", json={}).status_code == 422
    close_app(memory)


def test_booking_limits_count_in_memory_while_redis_is_unreachable(tmp_path):
    """Redis gone (nothing listens on its port): bookings go on and are counted in the
    process's memory, said once in the log, not refused for everyone nor let through
    uncounted; after RETRY_SECONDS the storage is asked again."""
    import logging
    import socket

    from tests.conftest import close_app, make_app
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seeded = make_app(tmp_path)
    settings = {"SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"],
                "SIGNING_KEY_DIR": seeded.config["SIGNING_KEY_DIR"],
                "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}/0",
                "LIMIT_BOOKING_PER_ADDRESS": "3 per hour"}
    close_app(seeded)
    app = create_app(TestConfig, settings)
    counter = app.extensions["booking_counter"]
    now = [1000.0]
    counter.clock = lambda: now[0]
    client = app.test_client()
    said = []
    # Its own handler: the migrations' logging setup replaces the root's, caplog's too.
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("locker_app.limits").addHandler(handler)
    try:
        answers = [client.post("/api/v1/reservations", json={}).status_code for _ in range(4)]
        assert answers == [422, 422, 422, 429]  # unknown site three times, then the limit
        assert int(client.post("/api/v1/reservations", json={}).headers["Retry-After"]) > 0
        assert len([line for line in said if "unreachable" in line]) == 1
        # Later the storage is asked again (still unreachable: said again, counted on).
        now[0] += counter.RETRY_SECONDS
        assert client.post("/api/v1/reservations", json={}).status_code == 429
        assert len([line for line in said if "unreachable" in line]) == 2
    finally:
        logging.getLogger("locker_app.limits").removeHandler(handler)
        close_app(app)


def test_an_address_is_counted_up_to_its_limit_only(any_app):
    """Counting every active reservation of an address made each booking slower by all of
    them (bench.city_scale, all from one address: 5.7 ms a booking at first, 11.3 ms after
    2,500). An address holds no more than the limit unless staff lowered it: the count
    stops there, and the booking is refused as before."""
    from locker_app.limits import client_key
    from locker_app.models import ItemType, Site
    from locker_app.services import booking
    app = any_app
    app.config.update(ADDRESS_MAX_ACTIVE=12, LIMIT_BOOKING_PER_ADDRESS="100 per hour")
    client = app.test_client()
    answers = [api_booking(client, 1 + n // 4, hour=8 + n % 4).status_code for n in range(12)]
    assert answers == [201] * 12
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        key = client_key()
        site = db.session.scalar(db.select(Site))
        kind = db.session.scalar(db.select(ItemType).where(ItemType.code == "rollator"))
        start, end = utcnow() + timedelta(days=20), utcnow() + timedelta(days=20, hours=1)

        def counted(limit):
            return booking.held_by_address(db.session, key, utcnow(), limit)
        assert (counted(5), counted(12), counted(50)) == (5, 12, 12)
    app.config["ADDRESS_MAX_ACTIVE"] = 5
    refused = api_booking(client, 20)
    assert refused.status_code == 422 and "Internetverbindung" in refused.get_json()["error"]


def test_a_forwarded_address_is_believed_from_the_trusted_proxy_only(app):
    """On main, with LOCKER_PROXY_COUNT=1 and gunicorn reachable past the proxy, a made-up
    X-Forwarded-For was believed: 100 of 100 bookings from one host, no limit applied."""
    from locker_app.security import TrustedProxyFix
    app.config["LIMIT_BOOKING_PER_ADDRESS"] = "3 per hour"
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, 1, "10.0.0.2, 192.168.7.0/24")
    client = app.test_client()

    def attempt(number: int, sent_from: str) -> int:
        return client.post("/api/v1/reservations", json={}, environ_base={
            "REMOTE_ADDR": sent_from}, headers={"X-Forwarded-For": f"198.51.100.{number}"}
        ).status_code
    # Past the proxy: each made-up address is the same host, counted as one.
    assert [attempt(n, "203.0.113.9") for n in range(4)] == [422, 422, 422, 429]
    # Through the proxy (or its network): the visitor's address counts, each its own.
    assert [attempt(n, "10.0.0.2") for n in range(4)] == [422] * 4
    assert attempt(50, "192.168.7.20") == 422
