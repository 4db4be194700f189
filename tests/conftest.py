"""Shared fixtures: app (SQLite, and PostgreSQL when it is there), a live server on
127.0.0.1, the board and scanner emulators on real ptys, and a running controller."""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from locker_app import create_app
from locker_app.config import TestConfig
from locker_app.demo_data import seed
from locker_app.extensions import db

PG_URL = os.environ.get("LOCKER_TEST_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEMO_TOKEN = "test-controller-token-0123456789"


def postgres_problem() -> str | None:
    """None when the test PostgreSQL server answers, else why not."""
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # any failure means: no PostgreSQL for these tests
        return f"PostgreSQL at {PG_URL} not reachable ({error.__class__.__name__}: {error})"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI must run the PostgreSQL tests, but {problem}")
        pytest.skip(problem)


def _reset_postgres() -> None:
    import psycopg
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@functools.cache
def _migrated_sqlite() -> Path:
    """A SQLite file with every migration run, made once per test run.

    The migrations, not create_all, because they hold the overlap guard; run for every test,
    they took a fifth of a second each, about a minute of the whole suite."""
    folder = Path(tempfile.mkdtemp(prefix="locker-migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "migrated.sqlite"
    migrated = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                                       "SIGNING_KEY_DIR": str(folder / "keys")})
    with migrated.app_context():
        upgrade()
    close_app(migrated)
    return path


def _copy_of_migrated_sqlite(target: Path) -> None:
    source, copy = sqlite3.connect(_migrated_sqlite()), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()


def make_app(tmp_path: Path, backend: str = "sqlite"):
    if backend == "postgresql":
        require_postgres()
        _reset_postgres()
        url = PG_URL
    else:
        _copy_of_migrated_sqlite(tmp_path / "locker.sqlite")
        url = f"sqlite:///{tmp_path / 'locker.sqlite'}"
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SIGNING_KEY_DIR": str(tmp_path / "keys")})
    with app.app_context():
        if backend == "postgresql":
            upgrade()  # the migrations, not create_all: they hold the overlap guard
        seed(db.session, DEMO_TOKEN)
    return app


def close_app(app) -> None:
    """Give every database connection back and close them (PostgreSQL counts them)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    close_app(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, tmp_path):
    """The same test on SQLite and on PostgreSQL."""
    app = make_app(tmp_path, request.param)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


def serve(app, port: int = 0):
    """``app`` on 127.0.0.1 (port 0: any free one) in a thread of its own; returns the server
    and the thread. It looks for its stop every 0.05 s: the default half second was spent
    again in the teardown of every test with a server."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="test-server",
                              daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def live_server(app):
    server, thread = serve(app)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def emulator():
    from hardware.emulator import BoardEmulator, EmulatedBoard
    with BoardEmulator([EmulatedBoard(1, channels=8)], pulse_seconds=0.02) as board:
        yield board


@pytest.fixture
def scanner():
    from hardware.emulator import ScannerEmulator
    port = ScannerEmulator()
    yield port
    port.close()


def controller_settings(tmp_path, server_url, emulator, scanner, token=DEMO_TOKEN, **overrides):
    from controller.settings import Settings
    return Settings(**{**dict(server_url=server_url, token=token, database=str(tmp_path / "controller.sqlite"),
                    board_port=emulator.port, scanner_port=scanner.port, poll_interval=0.03,
                    sync_interval=0.2, max_backoff=0.5, http_timeout=5, response_timeout=0.3,
                    recovery_quiet=0.05, command_wait=2.0,
                    scanner_debounce=0.0), **overrides})  # debouncing has its own unit test


@pytest.fixture
def make_controller(tmp_path, live_server, emulator, scanner):
    """Start a controller against the live server and the emulators; stopped afterwards."""
    from controller.service import LockerController
    started = []

    def make(clock=None, **overrides):
        settings = controller_settings(tmp_path, live_server, emulator, scanner, **overrides)
        ctl = LockerController(settings, **({"clock": clock} if clock else {})).start()
        started.append(ctl)
        assert ctl.synced.wait(10), "controller did not sync with the live server"
        assert ctl.scanner_ready.wait(10), "controller did not open the scanner port"
        return ctl
    yield make
    for ctl in started:
        ctl.stop()


@pytest.fixture
def controller(make_controller):
    return make_controller()


def cabinet_on_family_b(app) -> None:
    """The demo cabinet on one KR-CU16 (board 0, compartment n on lock n)."""
    from locker_app.models import Cabinet
    with app.app_context():
        cabinet = db.session.get(Cabinet, 1)
        for compartment in cabinet.compartments:
            compartment.board_address, compartment.lock_number = 0, compartment.number
        cabinet.board_family = "B"
        db.session.commit()


def wait_door_seen_shut(controller, compartment: int) -> None:
    """Until the controller's debounced reading of the door is "shut"."""
    doors = controller.board.doors
    wait_until(lambda: compartment in doors and doors[compartment].closed is True,
               message=f"the controller has seen door {compartment} shut")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = ""):
    """Poll ``predicate`` until it is true or the deadline passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message or predicate}")
        time.sleep(interval)


STAFF_PASSWORD = "correct horse battery"


def make_account(app, username: str, role: str = "staff", password: str = STAFF_PASSWORD):
    from locker_app.services.staff_accounts import create_account
    with app.app_context():
        user = create_account(db.session, username, username.title(), password, role)
        db.session.commit()
        return user.id


def log_in(client, username: str, password: str = STAFF_PASSWORD):
    return client.post("/staff/login", data={"username": username, "password": password})


@pytest.fixture
def staff_client(app):
    """A test client logged in as a staff member (not an administrator)."""
    make_account(app, "erika")
    client = app.test_client()
    assert log_in(client, "erika").status_code == 302
    return client


@pytest.fixture
def admin_client(app):
    make_account(app, "admin", "admin")
    client = app.test_client()
    assert log_in(client, "admin").status_code == 302
    return client


CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no browser at {CHROMIUM} (install Debian's chromium; ./run-tests does as root)"
        if IN_CI:
            pytest.fail(f"CI must run the browser tests, but there is {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


ARTEFACTS = Path(os.environ.get("LOCKER_ARTEFACTS", Path(__file__).resolve().parent.parent / "test-results"))


def screenshot(page, name: str) -> Path:
    """A full-page screenshot kept as a test artefact (``test-results/`` or
    ``$LOCKER_ARTEFACTS``), so a person can look at what the browser tests saw."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
