"""Issue 11: costs that stay flat as history grows. Each test failed on the code before:
a first sync paged through all history with a statement per reservation, the free-item
check walked every past reservation of an item, and a booking ran 20 statements and a slow
hash while the visitor waited."""
import re
from contextlib import contextmanager
from datetime import datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import event, insert, select, text

from locker_app.extensions import db
from locker_app.models import Item, ItemType, Reservation, ReservationEvent, Site
from locker_app.services import booking, free_items, signing
from locker_app.services.reservation_log import record_change
from tests.conftest import DEMO_TOKEN

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
NOW = datetime(2030, 5, 1, 7)


@contextmanager
def statements(app):
    """The SQL statements run inside the block."""
    seen = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _history(app, count: int) -> None:
    """``count`` past reservations, returned, each with its two events."""
    with app.app_context():
        items = [(i.id, i.compartment_id) for i in db.session.scalars(select(Item))]
        rows, events = [], []
        for n in range(count):
            item_id, compartment_id = items[n % len(items)]
            start = NOW - timedelta(days=30 + n // len(items), hours=3)
            rows.append(dict(id=n + 1, item_id=item_id, compartment_id=compartment_id,
                             start_at=start, end_at=start + timedelta(hours=1),
                             pickup_until=start + timedelta(hours=1), state="returned",
                             created_at=start - timedelta(days=1), locale="de"))
            events += [dict(reservation_id=n + 1, at=start - timedelta(days=1), to_state="booked",
                            actor="visitor", cause="history"),
                       dict(reservation_id=n + 1, at=start + timedelta(hours=1), from_state="booked",
                            to_state="returned", actor="controller", cause="history")]
        db.session.execute(insert(Reservation), rows)
        db.session.execute(insert(ReservationEvent), events)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('reservation', 'id'), "
                                    "(SELECT max(id) FROM reservation))"))
            db.session.commit()


def _book(app, n: int, email: str | None = None):
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        kind = db.session.scalars(select(ItemType).where(ItemType.code == "rollator")).one()
        start = datetime(2030, 5, 2 + n // 4, 8)
        return booking.create_reservation(
            db.session, site=site, item_type=kind, start=start, end=start + timedelta(hours=1),
            name="Erika", email=email, now=NOW).id


@freeze_time(NOW)
def test_a_write_that_loses_a_race_is_rolled_back_and_tried_again(any_app, monkeypatch):
    """The write fails in the database (here: the numeric code is another active
    reservation's); the booking tries again with a new code, in a new turn, and what the
    failed attempt wrote is gone."""
    first = _book(any_app, 0, email="erika@example.org")
    with any_app.app_context():
        taken = db.session.get(Reservation, first).numeric_code
    codes = iter([taken, "12345678"])
    monkeypatch.setattr(booking.numeric_codes, "new_code", lambda: next(codes))
    second = _book(any_app, 1, email="max@example.org")
    with any_app.app_context():
        rows = db.session.execute(select(Reservation.id, Reservation.numeric_code)
                                  .order_by(Reservation.id)).all()
        events = db.session.scalar(select(db.func.count()).select_from(ReservationEvent))
        mails = db.session.scalar(text("SELECT count(*) FROM outgoing_mail"))
    assert [code for _, code in rows] == [taken, "12345678"]
    assert rows[1].id == second and (events, mails) == (2, 2)
    assert next(codes, None) is None  # both codes were drawn: the first write failed


@freeze_time(NOW)
def test_a_new_controllers_first_sync_gets_what_can_be_scanned_not_the_history(any_app):
    _history(any_app, 400)
    booked = [_book(any_app, n) for n in range(3)]
    client = any_app.test_client()
    with statements(any_app) as seen:
        page = client.get("/api/v1/controller/sync?since=0", headers=AUTH).get_json()
    # Before: 800 events of past reservations first, 100 a page.
    assert sorted(r["id"] for r in page["reservations"]) == booked
    assert page["more"] is False
    assert len(seen) <= 9, seen
    # And nothing more comes after it.
    again = client.get(f"/api/v1/controller/sync?since={page['cursor']}", headers=AUTH).get_json()
    assert again["reservations"] == []


@freeze_time(NOW)
def test_a_sync_page_takes_the_same_statements_however_many_reservations_it_holds(any_app):
    client = any_app.test_client()
    client.get("/api/v1/controller/sync?since=0", headers=AUTH)  # the cabinet gets its salt
    _book(any_app, 0)
    with statements(any_app) as one:
        client.get("/api/v1/controller/sync?since=0", headers=AUTH)
    for n in range(1, 12):
        _book(any_app, n)
    with statements(any_app) as twelve:
        page = client.get("/api/v1/controller/sync?since=0", headers=AUTH).get_json()
    assert len(page["reservations"]) == 12
    # Before: one statement per reservation for its compartment and item (178 for a page).
    assert len(twelve) == len(one), "\n".join(s[:70] for s in one + ["-----"] + twelve)


@freeze_time(NOW)
def test_an_ended_reservation_changed_lately_still_reaches_the_controller(any_app):
    """A loan returned long after its end (staff enter it by hand) is sent once more, so the
    cabinet does not go on treating the item as out."""
    _history(any_app, 1)
    client = any_app.test_client()
    cursor = client.get("/api/v1/controller/sync?since=0", headers=AUTH).get_json()["cursor"]
    with any_app.app_context():
        old = db.session.get(Reservation, 1)
        old.state = "overdue"
        record_change(db.session, old, "returned", actor="staff", cause="by hand",
                                   at=NOW)
        db.session.commit()
    page = client.get(f"/api/v1/controller/sync?since={cursor}", headers=AUTH).get_json()
    assert [(r["id"], r["state"]) for r in page["reservations"]] == [(1, "returned")]


@freeze_time(NOW)
def test_a_later_sync_reads_the_events_from_its_cursor_on(app):
    """SQLite's plan of a sync after the first: the events after the cursor by their ids,
    each checked for a later one of its reservation. Grouped by reservation, it walked the
    index of every event's reservation: 219 ms at 1M past reservations, 68x the bare
    endpoint (bench.city_scale)."""
    _history(app, 50)
    _book(app, 0)
    client = app.test_client()
    cursor = client.get("/api/v1/controller/sync?since=0", headers=AUTH).get_json()["cursor"]
    assert cursor > 0
    _book(app, 1)
    ran = []

    def record(conn, cursor, sql, values, *rest):
        if "FROM reservation_event" in sql:
            ran.append((sql, values))
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = client.get(f"/api/v1/controller/sync?since={cursor}", headers=AUTH).get_json()
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", record)
    assert len(page["reservations"]) == 1
    (sql, values), = ran
    with app.app_context():
        plan = " | ".join(row[-1] for row in db.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql, values))
    assert "SEARCH reservation_event USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan
    assert "SCAN reservation_event" not in plan, plan


def test_the_free_item_check_skips_past_reservations_by_index(app):
    """SQLite's plan: the search starts at the window's start in the item's active
    reservations, so its past ones are never read (before: every one of them was)."""
    ran = []

    def record(conn, cursor, sql, values, *rest):
        ran.append((sql, values))
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        item_type = db.session.scalars(select(ItemType)).first()
        event.listen(db.engine, "before_cursor_execute", record)
        try:  # the statement a booking runs, with its values
            free_items.first_free_item(db.session, site, item_type, NOW,
                                       NOW + timedelta(hours=1))
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        (sql, values), = ran
        plan = " | ".join(row[-1] for row in db.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql, values))
    assert "ix_reservation_active_item (item_id=? AND end_at>?)" in plan, plan


@freeze_time(NOW)
def test_a_booking_takes_few_statements_and_leaves_the_slow_hash_to_the_sync(any_app):
    _book(any_app, 0)  # the first booking of a process loads the signing key
    with statements(any_app) as seen:
        rid = _book(any_app, 1, email="erika@example.org")
    # Before: 20 statements and a PBKDF2 of 20,000 rounds (4.8 ms) inside the booking. Now:
    # the rule, the opening hours, a look whether anything is free; in the turn its lock,
    # the person's reservations, the first free item; the reservation, its code, its
    # first event and its mail (the two lookups of the site and the type are the test's).
    assert len(seen) <= 13, "\n".join(seen)
    with any_app.app_context():
        assert db.session.get(Reservation, rid).numeric_code_hash is None
    page = any_app.test_client().get("/api/v1/controller/sync?since=0", headers=AUTH).get_json()
    synced = {r["id"]: r["code_hash"] for r in page["reservations"]}
    with any_app.app_context():
        reservation = db.session.get(Reservation, rid)
        from signed_code import hash_numeric_code
        expected = hash_numeric_code(reservation.numeric_code, reservation.compartment.cabinet.code_salt)
    assert synced[rid] == expected


def _turn_statements(seen: list[str]) -> list[str]:
    """The statements from the allocation turn's lock on, each by its first words."""
    at = next(n for n, sql in enumerate(seen) if "pg_advisory_xact_lock" in sql
              or sql.startswith("BEGIN IMMEDIATE"))
    return [" ".join(sql.split()[:3]) for sql in seen[at:]]


@freeze_time(NOW)
def test_a_booking_through_the_api_is_one_transaction_with_a_short_turn(any_app):
    """The whole request is one transaction. Before its turn it reads the one-time key,
    the site with the type and the rule (one statement), the opening hours, the first free
    item and the address's count; in its turn (PostgreSQL: an advisory lock on the site
    and the type; SQLite: the write lock) only what must be read and written there."""
    client = any_app.test_client()
    _book(any_app, 0)  # the signing key is loaded once per process
    begun = []
    with any_app.app_context():
        engine = db.engine

    def count(conn):
        begun.append(conn)
    event.listen(engine, "begin", count)
    try:
        with statements(any_app) as seen:
            booked = client.post("/api/v1/reservations", json={
                "site": "stadtpark", "item_type": "rollator", "start": "2030-05-03T10:00",
                "end": "2030-05-03T11:00", "name": "Erika", "email": "erika@example.org"})
    finally:
        event.remove(engine, "begin", count)
    assert booked.status_code == 201, booked.get_json()
    # One transaction: the answer, made from memory after the commit, begins none.
    assert len(begun) == 1, "\n".join(" ".join(sql.split()[:8]) for sql in seen)
    body = booked.get_json()
    assert body["numeric_code"] and body["cabinet"]["name"] and body["rules"]["summary"]
    assert len(seen) <= 12, "\n".join(seen)
    turn = _turn_statements(seen)
    # The lock, the first free item (with its compartment and cabinet, which its code
    # names), the person's reservations, then the writes: the reservation, its first event
    # and its mail. On PostgreSQL the reservation's id is drawn before the turn, so it is
    # written with its signed code at once; SQLite learns the id from the insert and
    # writes the code after (in its own process, no round trip to a server).
    postgres = turn[0] != "BEGIN IMMEDIATE"
    assert turn == [turn[0], "SELECT cabinet.id, cabinet.site_id,",
                    "SELECT reservation.start_at, reservation.end_at", "INSERT INTO reservation",
                    *([] if postgres else ["UPDATE reservation SET"]),
                    "INSERT INTO reservation_event", "INSERT INTO outgoing_mail"], turn
    assert any("nextval" in sql for sql in seen) == postgres
    # Only when one statement finds nothing is it asked which of the two is unknown; an
    # unknown site or type is named before a time that cannot be read.
    for payload, code in (({"site": "nowhere", "item_type": "rollator"}, "unknown_site"),
                          ({"site": "stadtpark", "item_type": "boat"}, "unknown_item_type"),
                          ({"site": "nowhere", "item_type": "rollator", "end": "soon"},
                           "unknown_site"),
                          ({"site": "stadtpark", "item_type": "rollator", "end": "soon"},
                           "refused")):
        refused = client.post("/api/v1/reservations", json={
            "start": "2030-05-03T10:00", "end": "2030-05-03T11:00", "name": "Erika", **payload})
        assert refused.status_code == 422 and refused.get_json()["code"] == code, refused.get_json()


@freeze_time(NOW)
def test_the_person_rules_are_decided_in_the_turn(any_app, monkeypatch):
    """A second reservation the rules allow is booked, a third is refused with the rule's
    words, a numeric code taken is drawn anew, and nothing is left of the attempts (each
    reservation one event, one mail)."""
    client = any_app.test_client()

    def book(day, email):
        return client.post("/api/v1/reservations", json={
            "site": "stadtpark", "item_type": "rollator", "start": f"2030-05-{day:02d}T10:00",
            "end": f"2030-05-{day:02d}T11:00", "name": "Erika", "email": email})
    first = book(3, "erika@example.org")
    assert first.status_code == 201, first.get_json()
    assert book(5, "Erika+zwei@example.org").status_code == 201  # two active allowed
    third = book(7, "erika@example.org")
    assert third.status_code == 422 and "2 aktive" in third.get_json()["error"], third.get_json()
    codes = iter([first.get_json()["numeric_code"], "12345678"])
    monkeypatch.setattr(booking.numeric_codes, "new_code", lambda: next(codes))
    fourth = book(9, "max@example.org")
    assert fourth.status_code == 201 and fourth.get_json()["numeric_code"] == "12345678"
    with any_app.app_context():
        counts = [db.session.scalar(text(f"SELECT count(*) FROM {table}"))
                  for table in ("reservation", "reservation_event", "outgoing_mail")]
    assert counts == [3, 3, 3]


@freeze_time(NOW)
def test_an_item_taken_while_the_booking_waited_for_its_turn_is_not_given_twice(any_app, monkeypatch):
    """The booking looks whether anything is free before its turn; another booking takes
    that item in between: this one gets the next item, read in its turn, its code names
    that item's compartment, and the answer is made without reading the site and the type
    again."""
    own_turn = booking._take_allocation_turn
    turns = []

    def taken_meanwhile(session, site, item_type):
        turns.append(session)
        if len(turns) == 1:
            with db.engine.begin() as other:  # another visitor, a moment faster
                item = other.execute(select(Item.id, Item.compartment_id).order_by(Item.id)).first()
                other.execute(insert(Reservation).values(
                    item_id=item.id, compartment_id=item.compartment_id, state="booked",
                    start_at=datetime(2030, 5, 3, 8), end_at=datetime(2030, 5, 3, 9),
                    pickup_until=datetime(2030, 5, 3, 8, 30), created_at=NOW, locale="de"))
        own_turn(session, site, item_type)
    monkeypatch.setattr(booking, "_take_allocation_turn", taken_meanwhile)
    with any_app.app_context():
        first, second = db.session.execute(select(Item.id, Item.compartment_id)
                                           .order_by(Item.id).limit(2)).all()
    with statements(any_app) as seen:
        booked = any_app.test_client().post("/api/v1/reservations", json={
            "site": "stadtpark", "item_type": "rollator", "start": "2030-05-03T10:00",
            "end": "2030-05-03T11:00", "name": "Erika"})
    assert booked.status_code == 201, booked.get_json()
    assert not [sql for sql in seen if re.search(r"FROM (site|item_type)\s+WHERE", sql)], seen
    assert len(turns) == 1  # no write refused: the turn read what was free then
    with any_app.app_context():
        mine = db.session.get(Reservation, booked.get_json()["id"])
        assert (mine.item_id, mine.compartment_id) == tuple(second) != tuple(first)
        assert booked.get_json()["compartment"] == mine.compartment.number
        import signed_code
        claims = signed_code.verify(mine.code, signing.public_key_objects())
        assert claims.compartment == mine.compartment.number


@freeze_time(NOW)
def test_the_availability_api_asks_three_times_for_any_number_of_days(any_app):
    client = any_app.test_client()
    for days in (1, 14):
        with statements(any_app) as seen:
            answer = client.get(f"/api/v1/sites/stadtpark/availability?from=2030-05-01"
                                f"&to={datetime(2030, 5, days).date()}")
        assert answer.status_code == 200 and len(answer.get_json()["item_types"][0]["days"]) == days
        # Before: the site, the offered types with their free counts, their items, the
        # reservations and the opening hours in two (six).
        assert len(seen) <= 3, seen


@freeze_time(NOW)
def test_the_reservation_page_asks_the_database_once(any_app):
    """The reservation, with its item, type, compartment, cabinet, site and its rule's
    early pickup, in one statement; before, each of them was a statement of its own (seven),
    and the page was 4.1-4.3x the bare endpoint at 1M on PostgreSQL (bench.city_scale);
    with the rule on its own, 3.3x."""
    rid = _book(any_app, 0)
    with any_app.app_context():
        code = db.session.get(Reservation, rid).code
    client = any_app.test_client()
    with statements(any_app) as seen:
        page = client.get(f"/r/{code}")
    assert page.status_code == 200 and "Rollator" in page.get_data(as_text=True)
    assert len(seen) == 1, "\n".join(seen)


@freeze_time(NOW)
def test_the_site_page_asks_the_database_twice_whatever_the_item_types(any_app):
    client = any_app.test_client()
    with statements(any_app) as seen:
        assert client.get("/s/stadtpark/").status_code == 200
    # Before: two counts per item type after the site and the types (6 with two types).
    assert len(seen) <= 3, seen


def test_small_tables_are_analysed_on_postgresql(tmp_path):
    """autovacuum analyses a table after 50 changes; the few rows of sites, cabinets and
    items never got there, and the planner guessed them large (a sequential scan of all
    reservations at 100k)."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")
    try:
        with app.app_context():
            rows = db.session.execute(text(
                "SELECT relname, reloptions, reltuples FROM pg_class "
                "WHERE relname IN ('item', 'cabinet')")).all()
    finally:
        close_app(app)
    for table, options, tuples in rows:
        assert "autovacuum_analyze_threshold=1" in (options or []), (table, options)
        # reltuples is -1 for a table never analysed.
        assert tuples >= 0, (table, tuples)



def test_a_request_on_postgresql_compiles_nothing_and_starts_no_parallel_workers(tmp_path):
    """With a million past reservations PostgreSQL guessed a controller's first sync
    costly: it compiled the statement on every run (jit, about 35 ms) and started two
    parallel workers (about 40 ms on a busy two-core host), 136 ms a page against 47 ms at
    10k (bench.city_scale). A request's connection has both off; the scheduler and the
    commands keep the server's settings."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")
    try:
        with app.test_request_context():
            db.session.remove()
            db.engine.dispose()
            settings = [db.session.execute(text(f"SHOW {name}")).scalar()
                        for name in ("jit", "max_parallel_workers_per_gather")]
            db.session.remove()
        assert settings == ["off", "0"], settings
        with app.app_context():
            db.engine.dispose()
            assert db.session.execute(text("SHOW jit")).scalar() == "on"
            db.session.remove()
    finally:
        close_app(app)

def test_the_free_times_search_answers_as_walking_every_slot_would():
    """The free times used to step through every quarter hour and compare it with every
    reservation of every item (12.6 ms for a week, 6.7x the bare endpoint); cutting each
    item's gaps to whole slots must give the same answers."""
    import random
    from locker_app.services.free_times import _Busy, free_ranges

    def walked(items, start, end):  # the former algorithm
        ranges, slot = [], start
        while slot < end:
            slot_end = min(slot + timedelta(minutes=15 - slot.minute % 15), end)
            if any(all(not (s < slot_end and e > slot) for s, e in windows) for windows in items):
                if ranges and ranges[-1][1] == slot:
                    ranges[-1] = (ranges[-1][0], slot_end)
                else:
                    ranges.append((slot, slot_end))
            slot = slot_end
        return ranges
    rng = random.Random(11)
    base = datetime(2030, 5, 1, 6)
    for _ in range(400):
        items = []
        for _ in range(rng.randrange(0, 5)):
            windows = []
            for _ in range(rng.randrange(0, 6)):
                start = base + timedelta(minutes=rng.choice((5, 15)) * rng.randrange(0, 60))
                windows.append((start, start + timedelta(minutes=15 * rng.randrange(1, 10))))
            items.append(windows)
        start = base + timedelta(minutes=rng.randrange(0, 120))
        end = start + timedelta(minutes=rng.randrange(0, 16 * 60))
        assert free_ranges([_Busy(w) for w in items], start, end) == walked(items, start, end), \
            (items, start, end)


def test_postgresql_keeps_its_plans_across_requests_that_only_read(tmp_path):
    """psycopg drops its prepared statements at every ROLLBACK; a request that only read
    used to end with one, so every statement was parsed again on every request. Now it
    ends with COMMIT and the prepared statements stay; a request that wrote without
    committing, or left changes pending, is still rolled back."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")

    @app.get("/_test/write-and-forget")
    def write_and_forget():
        db.session.execute(text("UPDATE site SET name = 'Vergessen'"))
        return "ok"

    @app.get("/_test/change-and-forget")
    def change_and_forget():
        db.session.scalars(select(Site)).first().name = "Auch vergessen"
        return "ok"

    used = []
    with app.app_context():
        event.listen(db.engine, "checkout", lambda dbapi, record, proxy: used.append(dbapi))
    client = app.test_client()
    try:
        for _ in range(12):
            assert client.get("/s/stadtpark/").status_code == 200
        connection = used[-1]
        assert all(dbapi is connection for dbapi in used[-5:])  # one thread, one connection
        prepared = connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        connection.rollback()
        assert prepared >= 1  # before: 0, every time
        assert client.get("/_test/write-and-forget").status_code == 200
        assert client.get("/_test/change-and-forget").status_code == 200
        with app.app_context():
            assert "vergessen" not in db.session.scalars(select(Site.name)).first().lower()
    finally:
        close_app(app)


def test_postgresqls_generic_plans_read_only_the_active_reservations(tmp_path):
    """PostgreSQL plans a statement prepared five times once without its values (a
    generic plan) and keeps that plan when it looks no dearer. With the active states bound
    as parameters it could not use an index of the active reservations; the site page's
    count went through all reservations by end time (22 to 25 ms over gunicorn at 10k,
    against 10 ms planned for its values). Now the states are written into the statement:
    every generic plan of the site page, the free times and a booking reads reservations
    by an index of the active ones only, by id or by one person's key."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")  # (psycopg cannot connect under freezegun)
    app.config.update(ADDRESS_MAX_ACTIVE=100, LIMIT_BOOKING_PER_ADDRESS="100 per hour")
    _history(app, 5_000)
    with app.app_context():
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    used = []
    with app.app_context():
        event.listen(db.engine, "checkout", lambda dbapi, record, proxy: used.append(dbapi))
    client = app.test_client()
    try:
        with freeze_time(NOW):
            for n in range(7):
                assert client.get("/s/stadtpark/").status_code == 200
                assert client.get("/api/v1/sites/stadtpark/availability?from=2030-05-01"
                                  "&to=2030-05-07").status_code == 200
                booked = client.post("/api/v1/reservations", json={
                    "site": "stadtpark", "item_type": "rollator",
                    "start": f"2030-05-{2 + n:02d}T10:00", "end": f"2030-05-{2 + n:02d}T11:00",
                    "name": "Erika", "email": f"erika{n}@example.org"})
                assert booked.status_code == 201, booked.get_json()
        connection = used[-1]
        assert all(dbapi is connection for dbapi in used[-5:])  # one thread, one connection
        connection.execute("SET plan_cache_mode = force_generic_plan")
        plans = {}
        for name, statement, types in connection.execute(
                "SELECT name, statement, parameter_types::text[] FROM pg_prepared_statements "
                "WHERE statement LIKE '%FROM reservation%'").fetchall():
            nulls = ", ".join(["NULL"] * len(types))
            plans[statement] = "\n".join(row[0] for row in connection.execute(
                f"EXPLAIN EXECUTE {name}({nulls})" if types else f"EXPLAIN EXECUTE {name}"))
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reservation'").fetchall()
        connection.rollback()
    finally:
        close_app(app)
    # The site page's count, the free times' reservations, the free-item check, the
    # person's reservations: each prepared (else this test would look at nothing).
    assert len(plans) >= 4, list(plans)
    narrow = {name for name, definition in indexes if " WHERE " in definition} | {
        "pk_reservation", "uq_reservation_code", "ix_reservation_person_key",
        "ix_reservation_client_key", "uq_reservation_booking_key"}
    for statement, plan in plans.items():
        assert "Seq Scan on reservation" not in plan, (statement, plan)
        # Nor a walk through all of an index: the statistics, taken when nothing was
        # active, put the active reservations at one, and a person's reservations, an
        # address's count and the free-item check walked them all (a booking's check took
        # 0.37 ms at first and 2.9 ms after 2,500 bookings, bench.city_scale).
        assert not _unbounded_index_scans(plan), (statement, plan)
        used_indexes = set(re.findall(r"using (\w+) on reservation", plan)) | {
            name for name in re.findall(r"Bitmap Index Scan on (\w+)", plan)
            if name.startswith(("ix_reservation", "ex_reservation", "uq_reservation"))}
        assert used_indexes <= narrow, (statement, plan)


def _unbounded_index_scans(plan: str) -> list[str]:
    """The plan's index scans of reservations without an index condition."""
    lines, found = plan.splitlines(), []
    for at, line in enumerate(lines):
        if re.search(r"Index (Only )?Scan using \w+ on reservation", line):
            details = []
            for detail in lines[at + 1:]:
                if "->" in detail:
                    break
                details.append(detail)
            if not any("Index Cond:" in detail for detail in details):
                found.append(line.strip())
    return found


def _drop_connection(pid: int) -> None:
    """What a database restart does to one connection: the server ends it."""
    import time

    import psycopg

    from tests.conftest import PG_URL
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (pid,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the connection did not end"
            time.sleep(0.02)


def test_a_connection_in_steady_use_is_not_pinged_and_a_dropped_one_fails_once(tmp_path,
                                                                               monkeypatch):
    """pool_pre_ping asked PostgreSQL before every request whether the connection lived: a
    round trip of every page. Now a connection used a moment ago is not asked; when the
    database dropped it all the same, that request gets a plain "try again" (503) and the
    next one a new connection."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")
    used, pings = [], []
    with app.app_context():
        engine = db.engine
        event.listen(engine, "checkout", lambda dbapi, record, proxy: used.append(dbapi))
    ping = type(engine.dialect).do_ping
    monkeypatch.setattr(type(engine.dialect), "do_ping",
                        lambda self, dbapi: pings.append(dbapi) or ping(self, dbapi))
    client = app.test_client()
    try:
        for _ in range(5):
            assert client.get("/s/stadtpark/").status_code == 200
        assert pings == []
        _drop_connection(used[-1].info.backend_pid)
        failed = client.get("/s/stadtpark/")
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "60"
        assert "Traceback" not in failed.get_data(as_text=True)
        assert "in einer Minute noch einmal" in failed.get_data(as_text=True)
        assert client.get("/s/stadtpark/").status_code == 200
    finally:
        close_app(app)


def test_a_connection_idle_a_while_is_asked_first_and_replaced_when_dropped(tmp_path,
                                                                           monkeypatch):
    """A connection that lay unused (here: any pause counts) is asked before use; the
    database had dropped it (a restart at night), so the request gets a new one and is
    answered as usual."""
    import locker_app
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")
    used = []
    with app.app_context():
        event.listen(db.engine, "checkout", lambda dbapi, record, proxy: used.append(dbapi))
    client = app.test_client()
    try:
        assert client.get("/s/stadtpark/").status_code == 200
        dropped = used[-1]
        _drop_connection(dropped.info.backend_pid)
        monkeypatch.setattr(locker_app, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert client.get("/s/stadtpark/").status_code == 200
        assert used[-1] is not dropped
    finally:
        close_app(app)


def test_a_sync_page_joins_only_its_own_reservations_on_postgresql(tmp_path):
    """The page is cut from the changed reservations before their columns are joined.
    Joined first, PostgreSQL, expecting thousands of changed reservations at 1M, read the
    whole reservation table for a first sync of 220 (154 ms, bench.city_scale)."""
    from tests.conftest import close_app, make_app
    app = make_app(tmp_path, "postgresql")  # (psycopg cannot connect under freezegun)
    app.config["SYNC_PAGE_SIZE"] = 2
    _history(app, 2_000)
    for n in range(12):
        _book(app, n)
    seen = []
    with app.app_context():
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        engine = db.engine

    def record(conn, cursor, statement, parameters, *args):
        if "max(reservation_event.id)" in statement:
            seen.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", record)
    try:
        with freeze_time(NOW):
            page = app.test_client().get("/api/v1/controller/sync?since=0", headers=AUTH)
        assert len(page.get_json()["reservations"]) == 2
        [(statement, parameters)] = seen
        with engine.connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                                              parameters).scalar()
    finally:
        event.remove(engine, "before_cursor_execute", record)
        close_app(app)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)
    # How many reservations the join read: a page's worth, not the twelve changed ones.
    read = sum(node["Actual Rows"] * node["Actual Loops"] for node in nodes(plan[0]["Plan"])
               if node.get("Relation Name") == "reservation" and node.get("Alias") == "reservation")
    assert read <= 3, plan
