"""The README's run command: everything starts, a booking opens a door, Ctrl-C stops it all."""
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from datetime import datetime, timedelta, timezone

import requests

from locker_app.services.timeutil import to_local

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port_run(count: int = 3) -> int:
    """A port with the next ``count - 1`` free too: site, emulated locker, cabinet screen."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        try:
            for offset in range(1, count):
                with socket.socket() as b:
                    b.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} free ports in a row")


def test_demo_runs_books_opens_and_stops_cleanly(tmp_path):
    port = free_port_run()
    site, locker = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    screen = f"http://127.0.0.1:{port + 2}/"
    demo = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--data-dir",
                             str(tmp_path / "demo"), "--pulse", "0.05"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(demo.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        def banner_shown():
            assert demo.poll() is None, "".join(lines)
            return any("demo is running" in line for line in lines)
        # As a person would: use it once the banner says it runs.
        wait_until(banner_shown, timeout=90, interval=0.1, message="demo banner")
        session = requests.Session()
        form = session.get(f"{site}/s/stadtpark/reserve/rollator", timeout=5).text
        fields = dict(re.findall(r'name="(csrf_token|date|start|end_date|end)"[^>]*value="([^"]*)"', form))
        fields["name"] = "Demo"
        # The suggested window starts at the next quarter hour; start now instead.
        start = to_local(datetime.now(timezone.utc) - timedelta(minutes=1))
        end = start + timedelta(hours=1)
        fields.update(date=f"{start:%Y-%m-%d}", start=f"{start:%H:%M}", end_date=f"{end:%Y-%m-%d}",
                      end=f"{end:%H:%M}")
        booked = session.post(f"{site}/s/stadtpark/reserve/rollator", data=fields, timeout=10)
        assert booked.status_code == 200 and "Reserviert" in booked.text
        link = booked.url

        # The controller decides offline (signature and window): one scan is enough.
        assert requests.post(f"{locker}/scan", data={"code": link}, timeout=5).status_code == 200

        def door_one_open():
            return not requests.get(f"{locker}/state.json", timeout=5).json()["doors"][0]["closed"]
        wait_until(door_one_open, timeout=30, interval=0.1, message="door 1 open")
        # The visitor reads it on the cabinet's display and on its screen.
        wait_until(lambda: "Fach 1" in " ".join(requests.get(f"{locker}/state.json", timeout=5)
                                                .json()["display"]["rows"]),
                   timeout=10, interval=0.1, message="the display says which compartment")
        assert "Fach 1" in requests.get(screen, timeout=5).text
        state = requests.get(f"{locker}/state.json", timeout=5).json()
        assert [line.split(" ", 1)[1] for line in state["frames"] if ">>>" in line] == [
            ">>> 8A 01 01 11 9B"]
        wait_until(lambda: "Abgeholt" in requests.get(link, timeout=5).text, timeout=30,
                   message="picked up on the site")

        # The banner's staff login works over the demo's plain HTTP (cookie not Secure there).
        login = re.search(r'user "(\w+)", password "([^"]+)"', "".join(lines))
        assert login, "no staff login in the banner"
        staff = requests.Session()
        page = staff.get(f"{site}/staff/login", timeout=5).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        desk = staff.post(f"{site}/staff/login", data={"csrf_token": token, "username": login.group(1),
                                                         "password": login.group(2)}, timeout=10)
        assert desk.url == f"{site}/staff/" and "Heute abzuholen" in desk.text
        assert "Demo" in staff.get(f"{site}/staff/reservations", timeout=5).text
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
        reader.join(10)
        demo.stdout.close()
        output = "".join(lines)

    assert demo.returncode == 0, output
    assert "Stadtpark locker demo is running" in output and "Stopped." in output
    assert "Traceback" not in output
