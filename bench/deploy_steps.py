"""The steps of bench.deploy_rehearsal, each a function returning what it found."""
from __future__ import annotations

import getpass
import secrets
import socket
import subprocess
from datetime import datetime, timedelta, timezone

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench import create_database, nginx_front
from bench.deploy_rehearsal import PYTHON, ROOT, Failed, _free_port, _wait

SETUP = """
import sys
from locker_app import create_app
from locker_app.extensions import db
from locker_app.models import Cabinet, Compartment, Item, ItemType, Site
from locker_app.services.controllers import register_controller
app = create_app()
with app.app_context():
    site = db.session.scalars(db.select(Site)).one()
    rollator = db.session.scalars(db.select(ItemType).filter_by(code="rollator")).one()
    cabinet = Cabinet(site=site, name="Stadtpark Schrank 2", location="Am Teich",
                      board_family="A", serial_port="/dev/ttyUSB0")
    db.session.add(cabinet)
    for number in range(1, 5):
        compartment = Compartment(cabinet=cabinet, number=number, board_address=1,
                                  lock_number=number)
        db.session.add_all([compartment, Item(item_type=rollator, compartment=compartment,
                                              label=f"Rollator Teich {number}")])
    db.session.flush()
    register_controller(db.session, cabinet, "Teich", token=sys.argv[1])
    db.session.commit()
    print(cabinet.id)
"""

ACL = """user locker-server
topic write {prefix}/cabinet/+/commands
topic read {prefix}/cabinet/+/status

pattern read {prefix}/cabinet/%u/commands
pattern write {prefix}/cabinet/%u/status
"""


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _anonymous_accepted(port: int) -> bool:
    """Whether the broker takes a client without a user name (it must not)."""
    import threading

    import paho.mqtt.client as mqtt
    answered, accepted = threading.Event(), []

    def on_connect(client, userdata, flags, reason_code, properties):
        accepted.append(not reason_code.is_failure)
        answered.set()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        if not answered.wait(10):
            raise Failed("the broker did not answer a connect within 10 s")
    finally:
        client.loop_stop()
        client.disconnect()
    return accepted[0]


def steps(layout):
    folder = layout.folder
    web_ports = [_free_port(), _free_port()]
    layout.scheduler_port = _free_port()
    layout.mqtt_port = _free_port()
    layout.secret = secrets.token_hex(32)
    state: dict = {}

    def postgresql():
        layout.database_url, layout.database_name = create_database("locker_rehearsal")
        return f"database {layout.database_name}"

    def redis_answers():
        import redis
        client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2,
                             socket_connect_timeout=2)
        client.ping()
        return "PONG; limits shared under the prefix rehearsal-…"

    def mosquitto():
        passwd, acl = folder / "mosquitto.passwd", folder / "mosquitto.acl"
        for n, (user, password) in enumerate(layout.passwords.items()):
            subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if n == 0 else []), str(passwd),
                            user, password], check=True, capture_output=True, timeout=30)
        acl.write_text(ACL.format(prefix="locker"))
        (folder / "mosquitto.conf").write_text(
            # (Started as root, mosquitto would become user "mosquitto", who cannot read
            # the rehearsal's private folder: it stays who starts it.)
            f"user {getpass.getuser()}\n"
            f"listener {layout.mqtt_port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwd}\nacl_file {acl}\npersistence false\n")
        layout.start("mosquitto", ["mosquitto", "-c", str(folder / "mosquitto.conf")])
        _wait(lambda: _port_open(layout.mqtt_port), "mosquitto listening")
        if _anonymous_accepted(layout.mqtt_port):
            raise Failed("the broker let an anonymous client in")
        return f"127.0.0.1:{layout.mqtt_port}, anonymous refused, the ACL of docs/MQTT.md"

    def schema_and_cabinets():
        layout.flask("db", "upgrade")
        layout.flask("keys", "new")
        layout.flask("demo-data", "--controller-token", layout.controller_tokens[1])
        done = subprocess.run([PYTHON, "-c", SETUP, layout.controller_tokens[2]], cwd=ROOT,
                              env=layout.environment(), capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise Failed(done.stderr.strip()[-300:])
        today = datetime.now().date()
        for day in (today, today + timedelta(days=1)):  # a rehearsal at any hour
            layout.flask("hours", "stadtpark", day.isoformat(), "00:00", "23:59")
        return "migrated, a signing key, cabinets 1 (8 compartments) and 2 (4), open all day"

    def web_and_nginx():
        for n, port in enumerate(web_ports, 1):
            env = {**layout.environment(), "LOCKER_BIND": f"127.0.0.1:{port}"}
            layout.start(f"web{n}", [PYTHON, "-m", "gunicorn", "-c",
                                     str(ROOT / "config" / "gunicorn.conf.py"), "wsgi:app"], env)
        for port in web_ports:
            _wait(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok,
                  f"gunicorn on {port}", timeout=60)
        process, base = nginx_front.start(folder / "nginx", web_ports)
        layout.processes.append(("nginx", process))
        layout.base = base
        _wait(lambda: requests.get(base + "/healthz", timeout=2).ok, "nginx")
        return f"{base} -> 127.0.0.1:{web_ports[0]}, 127.0.0.1:{web_ports[1]}"

    def scheduler():
        layout.start("scheduler", [PYTHON, "-m", "locker_app.scheduler"])
        url = f"http://127.0.0.1:{layout.scheduler_port}/readyz"
        answer = _wait(lambda: (lambda r: r.status_code == 200 and r.json())(
            requests.get(url, timeout=2)), "the scheduler's /readyz")
        return f"ready: {answer['checks']}"

    def controllers():
        from hardware.emulator import BoardEmulator, ScannerEmulator
        layout.cabinets = {}
        for cabinet in (1, 2):
            board, scanner = BoardEmulator().start(), ScannerEmulator()
            layout.emulators += [board, scanner]
            health = _free_port()
            config = folder / f"controller{cabinet}.toml"
            config.write_text(
                f'server_url = "{layout.base}"\ntoken = "{layout.controller_tokens[cabinet]}"\n'
                f'database = "{folder / f"controller{cabinet}.sqlite"}"\n'
                f'board_port = "{board.port}"\nscanner_port = "{scanner.port}"\n'
                f'sync_interval = 1.0\nhealth_http = "127.0.0.1:{health}"\n'
                f'mqtt_url = "mqtt://127.0.0.1:{layout.mqtt_port}"\n'
                f'mqtt_username = "{cabinet}"\nmqtt_password = "{layout.passwords[str(cabinet)]}"\n')
            layout.start(f"controller{cabinet}", [PYTHON, "-m", "controller", "--config",
                                                  str(config)])
            url = f"http://127.0.0.1:{health}/readyz"
            _wait(lambda: requests.get(url, timeout=2).status_code == 200,
                  f"controller {cabinet}'s /readyz")
            layout.cabinets[cabinet] = (board, scanner, url)
        return "both ready: boards answer, the server answers (through nginx)"

    def readiness():
        answer = requests.get(layout.base + "/readyz", timeout=5)
        if answer.status_code != 200:
            raise Failed(f"/readyz {answer.status_code}: {answer.text[:200]}")
        return f"nginx /readyz: {answer.json()['checks']}"

    def loan(cabinet: int, compartment: int):
        def work():
            board, scanner, _ = layout.cabinets[cabinet]
            start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
            # Cabinet 1's rollators are compartments 1-4, cabinet 2's its 1-4: the first free
            # item is in cabinet 1 until those are taken.
            booked = requests.post(layout.base + "/api/v1/reservations", json={
                "site": "stadtpark", "item_type": "rollator", "name": "Probe",
                "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()},
                headers={"Idempotency-Key": secrets.token_hex(12)}, timeout=10)
            if booked.status_code != 201:
                raise Failed(f"booking through nginx: {booked.status_code} {booked.text[:200]}")
            reservation = booked.json()
            code = reservation["code"]
            status = lambda: requests.get(f"{layout.base}/api/v1/reservations/{code}",  # noqa: E731
                                          timeout=5).json().get("state")
            before = len(board.unlocks_received())

            def scanned(unlocks: int):
                # Scanned again until it opens (the controller syncs every second; the same
                # line is read again after the scanner's debounce of a second).
                scanner.scan(reservation["url"])
                return board.wait_for(lambda e: len(e.unlocks_received()) >= unlocks,
                                      timeout=1.5)
            _wait(lambda: scanned(before + 1), "the door unlocked for the pickup")
            _wait(lambda: status() == "picked_up", "picked up, on the server")
            lock = reservation["compartment"]
            board.close_door(lock)
            _wait(lambda: scanned(before + 2), "the door unlocked for the return")
            _wait(lambda: not board.door_closed(lock), "the door open for the return")
            # Shut once the controller has read it open: two polls of the board later.
            polls = board.requests_seen
            _wait(lambda: board.requests_seen >= polls + 2, "the controller polling the board")
            board.close_door(lock)
            _wait(lambda: status() == "returned", "returned, on the server")
            state.setdefault("loans", 0)
            state["loans"] += 1
            return f"booked through nginx, picked up and returned at compartment {lock}"
        return work

    def remote_open():
        board, _, _ = layout.cabinets[1]
        before = len(board.unlocks_received())
        said = layout.flask("open-compartment", "1", "8", "--reason", "rehearsal", "--wait", "10")
        _wait(lambda: len(board.unlocks_received()) > before, "the remote unlock at the board")
        return said

    def metrics():
        found: dict[str, float] = {}
        for port in web_ports:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5,
                                headers={"Authorization": f"Bearer {layout.token}"}).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = sample.name
                    if key in ("locker_bookings_total", "locker_http_requests_total"):
                        found[key] = found.get(key, 0) + sample.value
                    elif key == "locker_controller_last_seen_seconds":
                        found[f"seen {sample.labels['cabinet']}"] = sample.value
        if found.get("locker_bookings_total", 0) < state.get("loans", 1):
            raise Failed(f"bookings counted {found.get('locker_bookings_total')}")
        if sum(1 for key in found if key.startswith("seen ")) != 2:
            raise Failed(f"the fleet: {found}")
        scheduler = requests.get(f"http://127.0.0.1:{layout.scheduler_port}/metrics", timeout=5)
        if "locker_job_runs_total" not in scheduler.text:
            raise Failed("the scheduler's metrics lack its jobs")
        public = requests.get(layout.base + "/metrics", timeout=5).status_code
        if public != 404:
            raise Failed(f"nginx answered /metrics with {public}")
        return (f"{found['locker_bookings_total']:.0f} booking(s), "
                f"{found['locker_http_requests_total']:.0f} requests over both instances; "
                f"2 cabinets seen; the scheduler's jobs; nginx keeps /metrics from the public")

    def backup():
        file = layout.folder / "backup.tar.gz"
        made = layout.flask("backup", "create", str(file))
        checked = layout.flask("backup", "verify", str(file))
        return f"{made.splitlines()[-1]} {checked.splitlines()[-1]}"

    yield "PostgreSQL", postgresql
    yield "Redis", redis_answers
    yield "Mosquitto", mosquitto
    yield "schema, keys, cabinets", schema_and_cabinets
    yield "two gunicorn instances behind nginx", web_and_nginx
    yield "the scheduler", scheduler
    yield "two controllers on emulated boards", controllers
    yield "readiness", readiness
    yield "a loan at cabinet 1", loan(1, 1)
    if not layout.short:
        for n in range(3):
            yield f"another loan ({n + 2})", loan(1, n + 2)
    yield "a remote open over the broker", remote_open
    yield "metrics", metrics
    yield "backup", backup
