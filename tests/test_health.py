"""Issue 33, first part: /healthz and /readyz for nginx, systemd and the monitoring."""
from __future__ import annotations

import socket

from locker_app import create_app
from locker_app.config import TestConfig
from tests.conftest import close_app


def test_healthz_answers_without_a_session_or_a_limit(client):
    for _ in range(50):
        answer = client.get("/healthz")
        assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"


def test_readyz_names_each_check(any_app):
    answer = any_app.test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json() == {"ready": True, "checks": {"database": "ok"}}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_readyz_says_what_is_not_ready(tmp_path):
    app = create_app(TestConfig, {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'no-such-folder' / 'x.sqlite'}",
        "SIGNING_KEY_DIR": str(tmp_path / "keys"),
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{_closed_port()}/0",
        "MQTT_URL": f"mqtt://127.0.0.1:{_closed_port()}"})
    try:
        answer = app.test_client().get("/readyz")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
        checks = answer.get_json()["checks"]
        assert set(checks) == {"database", "redis", "broker"}
        assert all(result.startswith("not") for result in checks.values()), checks
        assert app.test_client().get("/healthz").status_code == 200  # alive all the same
    finally:
        close_app(app)


def test_the_scheduler_answers_for_its_health_and_its_jobs(app):
    """LOCKER_SCHEDULER_PORT: /healthz, /readyz and /metrics on 127.0.0.1, as the web site."""
    import requests
    from locker_app.scheduler import run_jobs
    from locker_app.scheduler_http import serve
    running = {"yes": True}
    server = serve(app, 0, lambda: running["yes"])
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(base + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "database": "ok", "scheduler": "ok"}
        run_jobs(app, ("mark_overdue",))
        metrics = requests.get(base + "/metrics", timeout=5).text
        assert 'locker_job_runs_total{job="mark_overdue",outcome="done"}' in metrics
        running["yes"] = False
        stopped = requests.get(base + "/readyz", timeout=5)
        assert stopped.status_code == 503 and stopped.json()["checks"]["scheduler"] == "not running"
    finally:
        server.shutdown()
        server.server_close()
