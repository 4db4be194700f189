"""Who may see what: every staff route refuses strangers, every administrator route refuses
staff, every form needs its CSRF token; login limits, idle expiry, disabled accounts,
logout everywhere, the secret key, cookies, headers and safe redirects."""
import re
import secrets

import pytest
from freezegun import freeze_time

from locker_app import create_app
from locker_app.config import Config, TestConfig
from locker_app.extensions import db
from locker_app.models import AuditEntry, LoginAttempt, StaffUser
from locker_app.security import ConfigurationError
from tests.conftest import STAFF_PASSWORD, log_in, make_account

# The login's two steps (the code step sends anyone without a pending login back to the
# first), logging out, and the static files.
PUBLIC = {"auth.login", "auth.second_factor", "auth.logout", "static"}


def staff_rules(app):
    """(endpoint, url, method) for every route under /staff, arguments filled with 1."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or rule.endpoint in PUBLIC:
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: "2026-12-24" if m.group(1) == "day" else "1",
                     rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, url, method


def test_the_walk_covers_every_staff_page(app):
    endpoints = {endpoint for endpoint, _, _ in staff_rules(app)}
    assert len(endpoints) >= 40
    assert {"staff.today", "admin.accounts", "admin.audit_log", "staff.open_compartment"} <= endpoints


def test_every_staff_route_refuses_strangers(app):
    client = app.test_client()
    for endpoint, url, method in staff_rules(app):
        response = client.open(url, method=method)
        assert response.status_code in (302, 401, 403, 404), (endpoint, method, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/staff/login"), endpoint


def test_every_admin_route_refuses_staff(app, staff_client):
    checked = 0
    for endpoint, url, method in staff_rules(app):
        if endpoint.startswith("admin."):
            assert staff_client.open(url, method=method).status_code == 403, (endpoint, method)
            checked += 1
    assert checked >= 20
    # ... while the daily pages are open to staff.
    assert staff_client.get("/staff/").status_code == 200
    assert staff_client.get("/staff/reservations").status_code == 200


def test_a_post_without_csrf_token_is_refused(tmp_path):
    from tests.conftest import make_app
    app = make_app(tmp_path)
    app.config["WTF_CSRF_ENABLED"] = True
    make_account(app, "admin", "admin")
    client = app.test_client()
    # The login form itself needs its token ...
    refused_login = log_in(client, "admin")
    assert refused_login.status_code == 400
    assert "Formular" in refused_login.get_data(as_text=True)
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post("/staff/login", data={"username": "admin", "password": STAFF_PASSWORD,
                                             "csrf_token": token}).status_code == 302
    refused = 0
    for endpoint, url, method in staff_rules(app):
        if method == "POST":
            response = client.post(url, data={"reason": "x", "compartment": "1", "note": "x"})
            assert response.status_code == 400, (endpoint, response.status_code)
            refused += 1
    assert refused >= 20
    with app.app_context():
        # Nothing a refused form asked for happened.
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEntry).where(
            AuditEntry.action != "login")) == 0


def test_login_limit_per_account_and_address_also_stops_the_right_password(app):
    make_account(app, "erika")
    client = app.test_client()
    with freeze_time("2026-06-10 10:00:00") as clock:
        for _ in range(5):
            assert log_in(client, "erika", "wrong password!").status_code == 401
            clock.tick(60)  # past each growing pause
        refused = log_in(client, "erika")
        assert refused.status_code == 401
        assert "Zu viele Fehlversuche" in refused.get_data(as_text=True)
        # Another account from the same address still gets in.
        make_account(app, "hans")
        assert log_in(app.test_client(), "hans").status_code == 302
    # After the window the right password works again.
    with freeze_time("2026-06-10 10:21:00"):
        assert log_in(app.test_client(), "erika").status_code == 302


def test_a_stranger_cannot_lock_staff_out(app):
    """On main five wrong passwords for a user name, from anywhere, locked that account for
    15 minutes, even against the right password from another address."""
    make_account(app, "erika")
    stranger, erika = app.test_client(), app.test_client()
    stranger_address, office = {"REMOTE_ADDR": "203.0.113.7"}, {"REMOTE_ADDR": "10.0.0.9"}
    with freeze_time("2026-06-10 10:00:00") as clock:
        for _ in range(8):
            stranger.post("/staff/login", data={"username": "erika", "password": "guess!guess!"},
                          environ_base=stranger_address)
            clock.tick(30)  # past each pause, within the window
        assert stranger.post("/staff/login", data={"username": "erika", "password": STAFF_PASSWORD},
                             environ_base=stranger_address).status_code == 401
        assert erika.post("/staff/login", data={"username": "erika", "password": STAFF_PASSWORD},
                          environ_base=office).status_code == 302


def test_guessing_waits_a_growing_pause_between_tries(app):
    make_account(app, "erika")
    client = app.test_client()
    with freeze_time("2026-06-10 10:00:00") as clock:
        assert log_in(client, "erika", "wrong password!").status_code == 401
        assert log_in(client, "erika", "wrong password!").status_code == 401  # no pause yet
        paused = log_in(client, "erika")  # the right one, but within the pause: not tried
        assert paused.status_code == 401 and "Sekunden" in paused.get_data(as_text=True)
        clock.tick(1)
        assert log_in(client, "erika", "wrong password!").status_code == 401
        assert "Sekunden" in log_in(client, "erika").get_data(as_text=True)  # 2 s now
        clock.tick(2)
        assert log_in(client, "erika").status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(LoginAttempt)) == 0


def test_a_password_reset_by_an_administrator_clears_the_failed_logins(app):
    """On main the new password was refused while the old failures still counted."""
    user_id = make_account(app, "erika")
    make_account(app, "admin", "admin")
    client, admin_client = app.test_client(), app.test_client()
    with freeze_time("2026-06-10 10:00:00") as clock:
        assert log_in(admin_client, "admin").status_code == 302
        for _ in range(5):
            log_in(client, "erika", "wrong password!")
            clock.tick(60)
        assert log_in(client, "erika").status_code == 401
        assert admin_client.post(f"/staff/admin/accounts/{user_id}/password",
                                 data={"password": "a new long password"}).status_code == 302
        assert log_in(client, "erika", "a new long password").status_code == 302


def test_logging_out_ends_the_session_on_the_server(app):
    """On main a copied cookie still worked after logout."""
    make_account(app, "erika")
    client, thief = app.test_client(), app.test_client()
    assert log_in(client, "erika").status_code == 302
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/staff/").status_code == 200  # the copy works while the session lives
    client.post("/staff/logout")
    assert thief.get("/staff/").status_code == 302


def test_an_idle_session_ends_on_the_server_whatever_its_cookie_says(app):
    """The idle limit is kept by the server: a copy of the cookie made before the pause
    cannot bring the session back."""
    make_account(app, "erika")
    client, thief = app.test_client(), app.test_client()
    with freeze_time("2026-06-10 10:00:00"):
        assert log_in(client, "erika").status_code == 302
        thief.set_cookie("session", client.get_cookie("session").value)
    with freeze_time("2026-06-10 10:31:00"):
        assert thief.get("/staff/").status_code == 302
    with freeze_time("2026-06-10 10:31:30"):
        assert client.get("/staff/").status_code == 302


def test_the_sessions_page_lists_ones_own_sessions_and_ends_another(app):
    make_account(app, "erika")
    make_account(app, "hans")
    phone, desk, other = app.test_client(), app.test_client(), app.test_client()
    log_in(phone, "erika")
    log_in(desk, "erika")
    log_in(other, "hans")
    page = desk.get("/staff/sessions", headers={"User-Agent": "Desk browser"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("Diese Sitzung beenden") == 1  # phone's; not this one, not hans's
    session_id = re.search(r'/staff/sessions/(\d+)/end', html).group(1)
    assert desk.post(f"/staff/sessions/{session_id}/end").status_code == 302
    assert phone.get("/staff/").status_code == 302
    assert desk.get("/staff/").status_code == 200 and other.get("/staff/").status_code == 200


def test_login_limit_per_address(app):
    make_account(app, "erika")
    client = app.test_client()
    for number in range(20):
        log_in(client, f"guess{number}", "wrong password!")
    assert log_in(client, "erika").status_code == 401
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(LoginAttempt)) == 20
    other = app.test_client()
    assert other.post("/staff/login", data={"username": "erika", "password": STAFF_PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 302


def test_login_does_not_tell_whether_an_account_exists(app):
    make_account(app, "erika")
    unknown = log_in(app.test_client(), "nobody", "wrong password!").get_data(as_text=True)
    wrong = log_in(app.test_client(), "erika", "wrong password!").get_data(as_text=True)
    assert "Benutzername oder Passwort stimmt nicht." in unknown
    assert "Benutzername oder Passwort stimmt nicht." in wrong


def test_session_expires_after_inactivity(app):
    make_account(app, "erika")
    client = app.test_client()
    with freeze_time("2026-06-10 10:00:00"):
        assert log_in(client, "erika").status_code == 302
    with freeze_time("2026-06-10 10:29:00"):
        assert client.get("/staff/").status_code == 200
    with freeze_time("2026-06-10 10:58:00"):  # 29 minutes after the last request
        assert client.get("/staff/").status_code == 200
    with freeze_time("2026-06-10 11:29:00"):  # 31 minutes
        response = client.get("/staff/reservations")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/staff/login")
        assert client.get("/staff/").status_code == 302


def test_disabled_account_is_logged_out_and_cannot_log_in(app, staff_client, admin_client):
    with app.app_context():
        erika = db.session.scalars(db.select(StaffUser).where(StaffUser.username == "erika")).one()
    assert admin_client.post(f"/staff/admin/accounts/{erika.id}/active", data={"confirmed": "yes"}).status_code == 302
    assert staff_client.get("/staff/").status_code == 302  # her open session has ended
    response = log_in(app.test_client(), "erika")
    assert response.status_code == 401
    assert "deaktiviert" in response.get_data(as_text=True)


def test_logout_everywhere_ends_other_sessions(app):
    make_account(app, "erika")
    phone, desk = app.test_client(), app.test_client()
    log_in(phone, "erika")
    log_in(desk, "erika")
    assert desk.post("/staff/logout-everywhere").status_code == 302
    assert phone.get("/staff/").status_code == 302


def test_administrator_resets_a_password(app, admin_client):
    user_id = make_account(app, "erika")
    assert admin_client.post(f"/staff/admin/accounts/{user_id}/password",
                             data={"password": "short"}).status_code == 302
    assert log_in(app.test_client(), "erika").status_code == 302  # unchanged: too short
    admin_client.post(f"/staff/admin/accounts/{user_id}/password",
                      data={"password": "a new long password"})
    assert log_in(app.test_client(), "erika", "a new long password").status_code == 302
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
    assert "account_password_reset" in actions


def test_the_last_administrator_cannot_be_disabled(app, admin_client):
    with app.app_context():
        admin = db.session.scalars(db.select(StaffUser).where(StaffUser.username == "admin")).one()
    admin_client.post(f"/staff/admin/accounts/{admin.id}/active", data={"confirmed": "yes"})
    admin_client.post(f"/staff/admin/accounts/{admin.id}/role", data={"role": "staff"})
    with app.app_context():
        admin = db.session.get(StaffUser, admin.id)
        assert admin.active and admin.role == "admin"


@pytest.mark.parametrize("secret", [
    None, "", "dev-only-change-me", "change-me-to-a-long-random-string", "short",
    # Started the site on main (issue 30):
    " " * 16, "a" * 16, " dev-only-change-me", "a" * 40, "ab" * 20,
    secrets.token_hex(32) + " ", secrets.token_hex(8)])
def test_the_app_refuses_to_start_without_a_real_secret(tmp_path, secret):
    with pytest.raises(ConfigurationError, match="LOCKER_SECRET_KEY"):
        create_app(Config, {"SECRET_KEY": secret,
                            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})


def secrets_written_in_the_repository() -> set[str]:
    """Every value written next to SECRET_KEY in a file git keeps."""
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()
    # A quoted value in code, or a shell or env file's LOCKER_SECRET_KEY=value.
    pattern = re.compile(r"""SECRET_KEY["']?\s*[:=]\s*["']([^"'\n]*)["']"""
                         r"""|^\s*(?:export\s+)?LOCKER_SECRET_KEY=([^\s"'#]+)""", re.MULTILINE)
    found = set()
    for name in files:
        path = root / name
        if path.suffix not in (".py", ".md", ".example", ".toml", ".env", ".sh", ".cfg", "") \
                or not path.is_file():
            continue
        for match in pattern.finditer(path.read_text(errors="replace")):
            found.add(match.group(1) if match.group(1) is not None else match.group(2))
    return found


def test_no_secret_written_in_the_repository_starts_the_site(tmp_path):
    written = secrets_written_in_the_repository()
    assert {"change-me-to-a-long-random-string", "test"} <= written  # the search finds them
    for secret in written:
        with pytest.raises(ConfigurationError, match="LOCKER_SECRET_KEY"):
            create_app(Config, {"SECRET_KEY": secret,
                                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})


def test_a_long_random_secret_starts_the_site(tmp_path):
    app = create_app(Config, {"SECRET_KEY": secrets.token_urlsafe(32),
                              "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_gunicorn_entry_point_says_why_it_stops(tmp_path):
    import subprocess
    import sys
    env = {"PATH": "/usr/bin:/bin", "LOCKER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], env=env, capture_output=True,
                            text=True, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert result.returncode != 0
    assert "The web site cannot start: LOCKER_SECRET_KEY is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_session_forged_with_the_old_development_secret_is_refused(app):
    """Today's main accepted a session signed with ``dev-only-change-me``."""
    from flask.sessions import SecureCookieSessionInterface
    user_id = make_account(app, "admin", "admin")
    forger = create_app(TestConfig, {"SECRET_KEY": "dev-only-change-me",
                                     "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    forged = serializer.dumps({"_user_id": f"{user_id}:1", "_fresh": True,
                               "staff_seen": 4102444800})
    client = app.test_client()
    client.set_cookie("session", forged)
    assert client.get("/staff/").status_code == 302


def test_production_cookie_and_headers(tmp_path):
    app = create_app(Config, {"SECRET_KEY": secrets.token_hex(32),
                              "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_security_headers_on_every_response(client):
    for url in ("/", "/staff/login", "/does-not-exist", "/api/v1/controller/sync"):
        headers = client.get(url).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags(app):
    make_account(app, "erika")
    response = log_in(app.test_client(), "erika")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example", "/\\evil.example",
                                    "https://evil.example/", "/%0a/evil.example", " //evil.example",
                                    "/%5Cevil.example", "javascript:alert(1)"])
def test_language_switch_stays_on_the_site(client, target):
    response = client.get(f"/lang/en?next={target}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_language_switch_keeps_a_path_on_the_site(client):
    assert client.get("/lang/en?next=/s/stadtpark/").headers["Location"] == "/s/stadtpark/"


def test_login_next_stays_on_the_site(app):
    make_account(app, "erika")
    client = app.test_client()
    response = client.post("/staff/login?next=/%09/evil.example",
                           data={"username": "erika", "password": STAFF_PASSWORD})
    assert response.headers["Location"] == "/staff/"


def test_create_admin_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "create-admin", "chef", "--password", "a long password here"])
    assert result.exit_code == 0, result.output
    assert log_in(app.test_client(), "chef", "a long password here").status_code == 302
    short = runner.invoke(args=["staff", "create-admin", "kurz", "--password", "short"])
    assert short.exit_code != 0 and "12" in short.output
    again = runner.invoke(args=["staff", "create-admin", "chef", "--password", "a long password here"])
    assert again.exit_code != 0


def test_every_staff_page_renders_for_an_administrator(app, admin_client):
    """Each GET page with real objects behind its ids: 200, a title, a single h1."""
    from locker_app.services.commands import request_open
    from locker_app.models import Cabinet
    from tests.test_lifecycle import book
    from datetime import timedelta
    from locker_app.models import utcnow
    rid = book(app, start=(utcnow() + timedelta(days=2)).replace(hour=8, minute=0, second=0,
                                                                 microsecond=0))
    with app.app_context():
        request_open(db.session, db.session.get(Cabinet, 1), 1, requested_by="admin")
        from locker_app.models import SpecialDay
        from datetime import date
        db.session.add(SpecialDay(site_id=1, day=date(2030, 12, 24)))
        db.session.commit()
    ids = {"reservation_id": rid, "day": "2030-12-24", "name": "summary"}
    pages = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or "GET" not in rule.methods or \
                rule.endpoint in ("auth.login", "auth.second_factor"):
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: str(ids.get(m.group(1), 1)), rule.rule)
        response = admin_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            assert page.count("<h1") == 1, url
            assert "<title>" in page and 'lang="de"' in page
            pages += 1
    assert pages >= 25
