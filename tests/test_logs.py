"""Issue 33, logs: LOCKER_LOG_FORMAT=json writes one JSON line per request with its request
id, route, status, duration and staff user, never a visitor's name, e-mail or code."""
from __future__ import annotations

import json
import secrets
import logging

from freezegun import freeze_time

from locker_app.logs import JsonFormatter
from tests.conftest import log_in, make_account

NOW = "2030-05-01 07:00"


def lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records
            if record.name == "locker_app.requests"]


@freeze_time(NOW)
def test_json_logs_say_one_line_per_request_without_personal_data(app, caplog):
    app.config["LOG_FORMAT"] = "json"
    from locker_app.logs import REQUEST_LOG
    REQUEST_LOG.disabled = False  # (as configure_logging does for a json app)
    caplog.set_level(logging.INFO, logger="locker_app.requests")
    ids = iter(f"logtest-{n:04d}-{'x' * 8}" for n in range(100))

    def ours():  # this test's requests (a server of an earlier test may still answer)
        return {"X-Request-ID": next(ids)}
    client = app.test_client()
    booked = client.post("/s/stadtpark/reserve/rollator", headers=ours(), data={
        "date": "2030-05-02", "start": "10:00", "end_date": "2030-05-02", "end": "12:00",
        "name": "Erika Mustermann", "email": "erika.mustermann@example.org"})
    assert booked.status_code == 302
    location = booked.headers["Location"]
    code = location.rsplit("/", 1)[1]
    assert client.get(location, headers=ours()).status_code == 200
    make_account(app, "anna")
    staff = app.test_client()
    log_in(staff, "anna")
    assert staff.get("/staff/", headers=ours()).status_code == 200
    everything = lines(caplog)
    found = [line for line in everything if line["request_id"].startswith("logtest-")]
    assert [(line["method"], line["route"], line["status"]) for line in found] == [
        ("POST", "/s/<slug>/reserve/<type_code>", 302), ("GET", "/r/<token>", 200),
        ("GET", "/staff/", 200)]
    for line in everything:
        assert set(line) >= {"time", "level", "request_id", "route", "status", "duration_ms"}
        assert line["duration_ms"] >= 0
    assert found[-1]["staff_user"] == "anna" and "staff_user" not in found[0]
    text = "\n".join(json.dumps(line) for line in everything)
    for secret in ("Erika", "Mustermann", "erika.mustermann", code[:16]):
        assert secret not in text, secret


def test_the_request_id_comes_from_nginx_or_is_made(app, caplog):
    client = app.test_client()
    given = client.get("/healthz", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"})
    assert given.headers["X-Request-ID"] == "0123456789abcdef0123456789abcdef"
    made = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert made.headers["X-Request-ID"] != "<script>" and len(made.headers["X-Request-ID"]) == 32
    # Every log line written while the request is answered carries it.
    from locker_app.logs import _WithRequestId
    with app.test_request_context(headers={"X-Request-ID": "abcdefgh12345678"}):
        app.preprocess_request()
        record = logging.makeLogRecord({"name": "locker_app.booking", "msg": "a line"})
        assert _WithRequestId().filter(record)
    assert record.request_id == "abcdefgh12345678"
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abcdefgh12345678" and line["message"] == "a line"


def test_a_process_writes_each_line_once_however_many_apps_it_makes(tmp_path, monkeypatch):
    """The scheduler configures the root logger and then makes the app: its lines were
    written twice, once by each handler."""
    import locker_app.logs as logs
    from locker_app import create_app
    from locker_app.config import Config
    monkeypatch.setattr(logs, "_handler", None)
    ours = logging.getLogger("locker_app")
    monkeypatch.setattr(ours, "handlers", [])
    monkeypatch.setattr(ours, "propagate", True)
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}",
                "SECRET_KEY": secrets.token_hex(32), "LOG_FORMAT": "json"}
    for _ in range(2):
        create_app(Config, settings)
    assert len(ours.handlers) == 1 and ours.propagate is False
    assert isinstance(ours.handlers[0].formatter, JsonFormatter)
