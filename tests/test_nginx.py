"""Issue 30, part 6: the documented deployment puts nginx in front (bodies buffered,
limits, the visitor's address passed on). Tested for real: Debian's nginx with the shipped
config/nginx/locker-proxy.conf in front of gunicorn (one process of two threads, so that a
few slow clients could take every thread)."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from bench import nginx_front
from bench.nginx_front import free_port
from tests.conftest import IN_CI, close_app, make_app, wait_until

ROOT = Path(__file__).resolve().parent.parent


def require_nginx() -> None:
    if not nginx_front.available():
        if IN_CI:
            pytest.fail("CI must run the nginx tests, but Debian's nginx is not installed "
                        "(scripts/ensure-test-services installs it as root)")
        pytest.skip("no nginx: install Debian's nginx-light for these tests")


@pytest.fixture
def site(tmp_path):
    """gunicorn with 1 process of 2 threads behind nginx; (direct URL, URL through nginx,
    gunicorn's process)."""
    require_nginx()
    app = make_app(tmp_path)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    close_app(app)
    port = free_port()
    env = {**os.environ, "LOCKER_DATABASE_URL": url, "LOCKER_SIGNING_KEY_DIR": str(tmp_path / "keys"),
           "LOCKER_WORKERS": "1", "LOCKER_THREADS": "2", "LOCKER_BIND": f"127.0.0.1:{port}",
           "LOCKER_SECRET_KEY": secrets.token_hex(32), "LOCKER_COOKIE_SECURE": "0",
           "LOCKER_PROXY_COUNT": "1", "LOCKER_TRUSTED_PROXIES": "127.0.0.1",
           "LOCKER_LIMIT_BOOKING_PER_ADDRESS": "3 per hour"}
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                            "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    proxy, through = nginx_front.start(tmp_path / "nginx", [port])
    direct = f"http://127.0.0.1:{port}"

    def up(base, process):
        assert process.poll() is None, process.stdout.read()
        try:
            return requests.get(base + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    try:
        wait_until(lambda: up(direct, web), timeout=30, interval=0.1, message="gunicorn")
        wait_until(lambda: up(through, proxy), timeout=15, interval=0.1, message="nginx")
        yield direct, through, web
    finally:
        for process in (proxy, web):
            process.terminate()
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def slow_clients(base: str, count: int) -> list[socket.socket]:
    """Clients that announce a booking's body and send one byte of it."""
    host, port = base.removeprefix("http://").split(":")
    held = []
    for _ in range(count):
        client = socket.create_connection((host, int(port)), timeout=5)
        client.sendall(b"POST /api/v1/reservations HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{")
        held.append(client)
    return held


def page_within(base: str, seconds: float) -> bool:
    try:
        return requests.get(base + "/", timeout=seconds).status_code == 200
    except requests.RequestException:
        return False


def test_slow_clients_do_not_starve_the_site_behind_nginx(site):
    """On main four clients that announce a body and send it slowly took every request
    thread of gunicorn: page views timed out. nginx reads bodies whole first."""
    direct, through, _web = site
    held = slow_clients(direct, 4)
    try:
        time.sleep(0.5)  # (no event to wait on: the threads are taken or not)
        assert not page_within(direct, 2.0), "gunicorn alone answered: the test shows nothing"
    finally:
        for client in held:
            client.close()
    wait_until(lambda: page_within(direct, 2.0), timeout=40, message="gunicorn free again")
    held = slow_clients(through, 8)
    try:
        started = time.monotonic()
        assert page_within(through, 2.0)
        assert time.monotonic() - started < 2.0
    finally:
        for client in held:
            client.close()


def test_a_booking_through_nginx_and_the_address_the_limits_see(site):
    _direct, through, _web = site
    day = (datetime.now(timezone.utc) + timedelta(days=1)).date()
    booked = requests.post(f"{through}/api/v1/reservations", timeout=10, json={
        "site": "stadtpark", "item_type": "rollator", "name": "Erika",
        "start": f"{day}T10:00", "end": f"{day}T11:00"})
    assert booked.status_code == 201, booked.text
    assert booked.json()["url"].startswith(through)  # Host and scheme passed on
    # A made-up X-Forwarded-For through nginx: the client's own address is what counts.
    answers = [requests.post(f"{through}/api/v1/reservations", json={}, timeout=10,
                             headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
               for n in range(3)]
    assert answers == [422, 422, 429]  # the booking above was the first of three


def test_a_web_host_that_hangs_is_answered_try_again_within_seconds(site):
    """A web host whose database stalled under it gives no answer: nginx answers "try
    again in a minute" after 4 s, never a blank wait."""
    import signal
    _direct, through, web = site
    workers = [int(pid) for pid in
               Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()]
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = requests.get(through + "/", timeout=15)
        took = time.monotonic() - started
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "60"
    assert "in einer Minute noch einmal" in answer.text
    assert 3.5 < took < 5, took
    wait_until(lambda: page_within(through, 5.0), timeout=20, message="the site back")
