"""Issue 30, part 3: an optional second factor (TOTP) per staff account, which the town can
require of administrators (LOCKER_REQUIRE_2FA)."""
from __future__ import annotations

import re

import pyotp
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import AuditEntry, StaffUser
from tests.conftest import STAFF_PASSWORD, log_in, make_account


def turn_on(client) -> str:
    """Set the second factor up through the page, as a person would; its secret."""
    page = client.get("/staff/two-factor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html  # the QR code to scan
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", html).group(1).replace(" ", "")
    done = client.post("/staff/two-factor/on", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302, done.get_data(as_text=True)
    return secret


def test_with_a_second_factor_the_password_alone_does_not_get_in(app):
    make_account(app, "erika")
    with freeze_time("2026-06-10 10:00:00") as clock:
        client = app.test_client()
        assert log_in(client, "erika").status_code == 302
        secret = turn_on(client)
        clock.tick(31)
        other = app.test_client()
        step = log_in(other, "erika")
        assert step.status_code == 302 and step.headers["Location"] == "/staff/login/code"
        assert other.get("/staff/").status_code == 302  # not logged in yet
        wrong = other.post("/staff/login/code", data={"code": "000000"})
        assert wrong.status_code == 401 and "nicht richtig" in wrong.get_data(as_text=True)
        clock.tick(2)  # past the pause after a failure
        code = pyotp.TOTP(secret).now()
        assert other.post("/staff/login/code", data={"code": code}).status_code == 302
        assert other.get("/staff/").status_code == 200
        # The same code again, on a third device: used once, refused.
        third = app.test_client()
        log_in(third, "erika")
        assert third.post("/staff/login/code", data={"code": code}).status_code == 401
        clock.tick(30)
        assert third.post("/staff/login/code",
                          data={"code": pyotp.TOTP(secret).now()}).status_code == 302


def test_the_code_step_expires_and_cannot_be_skipped(app):
    make_account(app, "erika")
    with freeze_time("2026-06-10 10:00:00") as clock:
        client = app.test_client()
        log_in(client, "erika")
        secret = turn_on(client)
        clock.tick(31)
        late = app.test_client()
        log_in(late, "erika")
        clock.tick(301)
        answer = late.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
        assert answer.status_code == 302 and answer.headers["Location"] == "/staff/login"
        assert late.get("/staff/").status_code == 302
        # Nobody reaches the code step without the password.
        assert app.test_client().get("/staff/login/code").status_code == 302


def test_administrators_must_set_up_a_second_factor_when_the_town_requires_it(app):
    app.config["REQUIRE_2FA"] = True
    make_account(app, "boss", "admin")
    make_account(app, "erika")
    with freeze_time("2026-06-10 10:00:00"):
        admin, staff = app.test_client(), app.test_client()
        log_in(admin, "boss")
        log_in(staff, "erika")
        for url in ("/staff/", "/staff/admin/accounts", "/staff/sessions"):
            refused = admin.get(url)
            assert refused.status_code == 302 and refused.headers["Location"] == "/staff/two-factor"
        assert staff.get("/staff/").status_code == 200  # staff may, administrators must
        turn_on(admin)
        assert admin.get("/staff/admin/accounts").status_code == 200
        # And may not turn it off again.
        off = admin.post("/staff/two-factor/off", data={"code": "123456"})
        assert off.status_code == 302
        with app.app_context():
            assert db.session.scalars(db.select(StaffUser).where(
                StaffUser.username == "boss")).one().totp_secret


def test_an_administrator_turns_off_a_lost_phones_second_factor(app):
    user_id = make_account(app, "erika")
    make_account(app, "boss", "admin")
    with freeze_time("2026-06-10 10:00:00") as clock:
        erika, admin = app.test_client(), app.test_client()
        log_in(erika, "erika")
        turn_on(erika)
        log_in(admin, "boss")
        clock.tick(31)
        assert admin.post(f"/staff/admin/accounts/{user_id}/two-factor-off").status_code == 302
        assert erika.get("/staff/").status_code == 302  # logged out everywhere
        assert log_in(app.test_client(), "erika", STAFF_PASSWORD).headers["Location"] == "/staff/"
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
    assert "two_factor_on" in actions and "account_two_factor_off" in actions
