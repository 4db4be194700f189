"""Issue 33, metrics: /metrics for Prometheus with a bearer token, read back with
prometheus_client's own parser; several gunicorn workers answer for each other; the alert
rules and the dashboard pass promtool and name only metrics the site exports."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from locker_app.scheduler import run_jobs
from tests.conftest import DEMO_TOKEN, IN_CI

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-" + "m" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = "2030-05-01 07:00"


def samples(text: str) -> dict[tuple, float]:
    """Every sample: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def family_names(text: str) -> set[str]:
    """The families the exposition declares, with samples or not yet."""
    return {family.name for family in text_string_to_metric_families(text)}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(response.get_data(as_text=True))


def test_the_metrics_are_not_public(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 404  # no token set: no such page
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answers = [client.get("/metrics", headers=AUTH) for _ in range(80)]  # never rate-limited
    assert {a.status_code for a in answers} == {200}
    assert "Set-Cookie" not in answers[0].headers


@freeze_time(NOW)
def test_the_exposition_counts_what_happens_and_reads_the_fleet(app):
    app.config["METRICS_TOKEN"] = TOKEN
    client = app.test_client()
    before = scrape(client)
    booked = client.post("/api/v1/reservations", json={
        "site": "stadtpark", "item_type": "rollator", "name": "Erika",
        "email": "erika@example.org", "start": "2030-05-02T10:00", "end": "2030-05-02T12:00"})
    assert booked.status_code == 201
    for n in range(3):
        client.post("/api/v1/reservations", json={
            "site": "stadtpark", "item_type": "rollator", "name": f"Gast {n}",
            "start": "2030-05-02T10:00", "end": "2030-05-02T12:00"})
    refused = client.post("/api/v1/reservations", json={
        "site": "stadtpark", "item_type": "rollator", "name": "Spät",
        "start": "2030-05-02T10:00", "end": "2030-05-02T12:00"})
    assert refused.status_code == 409
    too_long = client.post("/api/v1/reservations", json={
        "site": "stadtpark", "item_type": "rollator", "name": "Lang",
        "start": "2030-05-03T08:00", "end": "2030-05-03T19:00"})
    assert too_long.status_code == 422
    api = app.test_client()
    status = {"outbox": 3, "doors_open": [2], "boards_offline": [], "board_errors": 7,
              "version": "2026.12", "scan_to_unlock": {"count": 4, "sum": 1.2}}
    assert api.post("/api/v1/controller/status", json={"status": status},
                    headers={"Authorization": f"Bearer {DEMO_TOKEN}"}).status_code == 200
    with app.app_context():
        run_jobs(app, ("send_mails",))
        from datetime import date
        from locker_app.extensions import db
        from locker_app.models import Cabinet, DailyEvents
        cabinet = db.session.scalars(db.select(Cabinet)).one()
        db.session.add(DailyEvents(day=date(2030, 5, 1), cabinet_id=cabinet.id,
                                   site_id=cabinet.site_id, kind="scan_refused",
                                   reason="too_early", count=2))
        db.session.commit()
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("locker_http_requests_total", endpoint="api.create_reservation",
                method="POST", status="201") == 4
    assert grew("locker_http_requests_total", endpoint="api.create_reservation",
                method="POST", status="409") == 1
    assert grew("locker_http_request_duration_seconds_count",
                endpoint="api.create_reservation") == 6
    assert grew("locker_bookings_total", actor="visitor") == 4
    assert grew("locker_booking_refusals_total", reason="sold_out") == 1
    assert grew("locker_booking_refusals_total", reason="rules") == 1
    assert grew("locker_job_runs_total", job="send_mails", outcome="done") == 1
    assert value(after, "locker_job_last_success_timestamp_seconds", job="send_mails") > 0
    assert value(after, "locker_reservations_active", state="booked") == 4
    assert value(after, "locker_mails_queued") == 0  # sent by the job (to the test outbox)
    names = {labels for name, labels in after if name == "locker_controller_doors_open"}
    assert names, sorted({name for name, _ in after})
    fleet = dict(next(iter(names)))
    assert value(after, "locker_controller_doors_open", **fleet) == 1
    assert value(after, "locker_controller_outbox", **fleet) == 3
    assert value(after, "locker_controller_board_errors", **fleet) == 7
    assert value(after, "locker_controller_last_seen_seconds", **fleet) == 0
    assert value(after, "locker_controller_info", version="2026.12", **fleet) == 1
    assert value(after, "locker_controller_scan_to_unlock_seconds_count", **fleet) == 4
    assert value(after, "locker_controller_scan_to_unlock_seconds_sum", **fleet) == 1.2
    assert value(after, "locker_scans_refused_today", cabinet=fleet["cabinet"],
                 reason="too_early") == 2


def test_a_failed_job_is_counted(app, monkeypatch):
    from locker_app import scheduler
    from locker_app.metrics import JOB_RUNS
    before = JOB_RUNS.labels("mark_overdue", "failed")._value.get()

    def broken(app):
        raise RuntimeError("the database went away")
    monkeypatch.setitem(scheduler.JOBS, "mark_overdue", broken)
    assert run_jobs(app, ("mark_overdue",)) == {"mark_overdue": -1}
    assert JOB_RUNS.labels("mark_overdue", "failed")._value.get() == before + 1


def test_gunicorns_workers_answer_for_each_other(app, tmp_path):
    """Under gunicorn each worker counts in files of its own; whichever worker answers
    /metrics adds them all up (prometheus_client's multiprocess mode)."""
    from bench.city_scale import Server
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    server = Server(url, tmp_path, LOCKER_METRICS_TOKEN=TOKEN, LOCKER_WORKERS="3",
                    LOCKER_THREADS="1")
    try:
        session = requests.Session()
        for _ in range(30):
            assert session.get(server.base + "/healthz", timeout=10).status_code == 200
        counts = set()
        for _ in range(6):  # on new connections: any worker may answer
            text = requests.get(server.base + "/metrics", headers=AUTH, timeout=10).text
            counts.add(value(samples(text), "locker_http_requests_total",
                             endpoint="health.healthz", method="GET", status="200"))
        assert counts == {30.0}, counts
    finally:
        server.stop()


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        message = "promtool is missing (Debian's prometheus; scripts/ensure-test-services)"
        if IN_CI:
            pytest.fail(f"CI must check the alert rules, but {message}")
        pytest.skip(message)
    return found


def test_the_alert_rules_and_the_scrape_configuration_pass_promtool():
    promtool = _promtool()
    for args in (["check", "rules", "config/prometheus/locker-alerts.yml"],
                 ["check", "config", "--syntax-only", "config/prometheus/prometheus.example.yml"]):
        done = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


@freeze_time(NOW)
def test_the_rules_and_the_dashboard_name_only_exported_metrics(app):
    app.config["METRICS_TOKEN"] = TOKEN
    client = app.test_client()
    client.post("/api/v1/reservations", json={})  # a request, a refusal: every family shows
    with app.app_context():
        run_jobs(app, ("send_mails",))
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    exported = {name for name, _ in samples(text)} | family_names(text)
    families = exported | {re.sub(r"_(bucket|count|sum|total|created)$", "", n) for n in exported}
    families |= {f"{n}_{suffix}" for n in families for suffix in ("total", "bucket", "sum", "count")}
    rules = (ROOT / "config/prometheus/locker-alerts.yml").read_text()
    dashboard = json.loads((ROOT / "config/grafana/locker-dashboard.json").read_text())
    expressions = rules + json.dumps([t["expr"] for p in dashboard["panels"]
                                      for t in p["targets"]])
    named = set(re.findall(r"\blocker_[a-z_]+", expressions))
    assert named and named <= families | exported, sorted(named - families - exported)


def test_reading_the_gunicorn_settings_changes_nothing_in_the_reader():
    """bench.many_cabinets reads config/gunicorn.conf.py for its worker counts; reading it
    made a metrics folder and set PROMETHEUS_MULTIPROC_DIR in the reading process, whose
    own metrics then went missing from /metrics (the full test run)."""
    import os
    from runpy import run_path
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    settings = run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") == before
    assert callable(settings["on_starting"]) and settings["workers"] >= 1
