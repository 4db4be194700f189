"""``python -m demo`` (what ``./run-demo`` starts).

Prepares an SQLite database through the migrations, demo data and a signing key under
``instance/demo``, starts the emulated locker (board, scanner, keypad and display on ptys, with its page),
the web site under gunicorn and the controller, each as it would run in production, and
stops all of it on Ctrl-C.
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from hardware.emulator import BoardEmulator, DisplayEmulator, EmulatedBoard, ScannerEmulator
from hardware.emulator_web import EmulatorPage

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("demo")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def prepare_database(data_dir: Path, env: dict[str, str]) -> str:
    """Migrate, seed, and return the demo controller's token (kept in the data folder)."""
    os.environ.update(env)
    from flask_migrate import upgrade

    from locker_app import create_app
    from locker_app.demo_data import seed
    from locker_app.extensions import db
    from locker_app.models import Controller
    from locker_app.services.controllers import hash_token

    token_file = data_dir / "controller-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(32))
        token_file.chmod(0o600)
    token = token_file.read_text().strip()
    app = create_app()
    with app.app_context():
        upgrade()
        seed(db.session, token)
        # A demo folder reused with a new token file: let the demo controller in again.
        controller = db.session.scalars(db.select(Controller).order_by(Controller.id)).first()
        controller.token_hash = hash_token(token)
        db.session.commit()
        _demo_admin(db.session, data_dir)
        db.engine.dispose()
    return token


DEMO_ADMIN = "admin"


def _demo_admin(session, data_dir: Path) -> None:
    """A demo administrator whose password lives in the data folder (printed at start)."""
    from sqlalchemy import select

    from locker_app.models import StaffUser
    from locker_app.services.staff_accounts import create_account
    password_file = data_dir / "staff-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    if not session.scalars(select(StaffUser).where(StaffUser.username == DEMO_ADMIN)).first():
        create_account(session, DEMO_ADMIN, "Demo-Administration", password_file.read_text().strip(),
                       role="admin")
        session.commit()


def write_controller_config(path: Path, *, server: str, token: str, board: str, scanner: str,
                            keypad: str = "", display: str = "", screen: str = "") -> None:
    path.write_text(
        "[controller]\n"
        f'server_url = "{server}"\n'
        f'token = "{token}"\n'
        'database = "controller.sqlite"\n'
        f'board_port = "{board}"\n'
        f'scanner_port = "{scanner}"\n'
        f'keypad_port = "{keypad}"\n'
        f'display_port = "{display}"\n'
        f'display_http = "{screen}"\n'
        "sync_interval = 2.0\n"
        "command_wait = 3.0\n"
        # The cabinet's screen page says each message aloud when espeak-ng is there.
        f"speech = {'true' if shutil.which('espeak-ng') else 'false'}\n")


def wait_for_http(url: str, deadline_seconds: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def wait_for_controller(database: Path, deadline_seconds: float, process: subprocess.Popen) -> bool:
    """Until the controller's status says synced and scanner ready."""
    import json
    import sqlite3
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
                row = connection.execute("SELECT value FROM setting WHERE name = 'status'").fetchone()
        except sqlite3.Error:
            row = None
        status = json.loads(row[0]) if row else {}
        if status.get("synced") and status.get("scanner_ready"):
            return True
        time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCKER_DEMO_PORT", 5000)),
                        help="port of the booking site (default 5000)")
    parser.add_argument("--locker-port", type=int, default=None,
                        help="port of the emulated locker's page (default: site port + 1)")
    parser.add_argument("--data-dir", default=str(ROOT / "instance" / "demo"),
                        help="where the demo keeps its database, keys and controller state")
    parser.add_argument("--pulse", type=float, default=0.5, help="emulated solenoid pulse (s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)
    locker_port = args.locker_port or args.port + 1
    screen_port = locker_port + 1  # the controller's page for the cabinet's screen
    for port in (args.port, locker_port, screen_port):
        if not port_free(port):
            print(f"Port {port} on 127.0.0.1 is in use. Choose others, e.g. "
                  f"./run-demo --port {args.port + 10}", file=sys.stderr)
            return 1

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    site = f"http://127.0.0.1:{args.port}"
    env = {
        "LOCKER_DATABASE_URL": f"sqlite:///{data_dir / 'locker.sqlite'}",
        "LOCKER_SIGNING_KEY_DIR": str(data_dir / "signing-keys"),
        "LOCKER_PUBLIC_BASE_URL": site,
        "LOCKER_SECRET_KEY": _secret(data_dir),
        # The demo runs on plain HTTP on this machine: the session cookie must travel there.
        "LOCKER_COOKIE_SECURE": "0",
        # Example operator details for the Impressum and the privacy page, marked as such.
        "LOCKER_OPERATOR_NAME": "Stadt Musterstadt (Beispiel), Fachbereich Grün",
        "LOCKER_OPERATOR_ADDRESS": "Rathausplatz 1; 12345 Musterstadt",
        "LOCKER_OPERATOR_REPRESENTATIVE": "Bürgermeisterin Erika Muster (Beispiel)",
        "LOCKER_OPERATOR_EMAIL": "stadtpark@example.org",
        "LOCKER_OPERATOR_PHONE": "0123 4567890",
        "LOCKER_PRIVACY_OFFICER": "Datenschutzbeauftragte der Stadt (Beispiel), datenschutz@example.org",
    }
    logger.info("preparing the database in %s", data_dir)
    token = prepare_database(data_dir, env)

    board = BoardEmulator([EmulatedBoard(1, channels=8)], pulse_seconds=args.pulse).start()
    scanner, keypad, display = ScannerEmulator(), ScannerEmulator(), DisplayEmulator()
    screen = f"127.0.0.1:{screen_port}"
    page = EmulatorPage(board, scanner, port=locker_port, display=display, keypad=keypad,
                        screen_url=f"http://{screen}/").start()
    config = data_dir / "controller.toml"
    write_controller_config(config, server=site, token=token, board=board.port, scanner=scanner.port,
                            keypad=keypad.port, display=display.port, screen=screen)

    # The web site's graceful stop outlasts the controller's long poll (3 s here).
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "LOCKER_GRACEFUL_TIMEOUT": "5"}
    python = sys.executable
    children = {
        "web site": subprocess.Popen(
            [python, "-m", "gunicorn", "--config", str(ROOT / "config" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{args.port}", "wsgi:app"],
            cwd=ROOT, env=child_env, start_new_session=True),
        # Reminders, no-shows, overdue items, erasure; mails are printed here, not sent.
        "scheduler": subprocess.Popen(
            [python, "-m", "locker_app.scheduler"], cwd=ROOT,
            env={**child_env, "LOCKER_MAIL_BACKEND": "console"}, start_new_session=True),
    }
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    exit_code = 0
    try:
        if not wait_for_http(site + "/", 30, children["web site"]):
            print("The web site did not start; see the messages above.", file=sys.stderr)
            return 1
        # The controller once the site answers, so its first sync finds it; the banner
        # once the controller has synced and listens to its scanner.
        children["controller"] = subprocess.Popen(
            [python, "-m", "controller", "--config", str(config)], cwd=ROOT, env=child_env,
            start_new_session=True)
        if not wait_for_controller(data_dir / "controller.sqlite", 30, children["controller"]):
            print("The controller did not get ready; see the messages above.", file=sys.stderr)
            return 1
        print(f"""
  Stadtpark locker demo is running.

    Booking site:     {site}
    Staff pages:      {site}/staff/   (user "{DEMO_ADMIN}", password "{(data_dir / 'staff-password').read_text().strip()}")
    Emulated locker:  {page.url}   (display, scanner, keypad, doors, the frames)
    Cabinet screen:   http://{screen}/   (the controller's page for the cabinet's screen)

  Reserve on the booking site, type the 8-digit number into the emulated locker's keypad
  (or paste the reservation page's address into its scanner field), read the display and
  watch the door open. Press Ctrl-C to stop.
""", flush=True)
        while not stopping.wait(0.5):
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"The {name} stopped unexpectedly (exit {child.returncode}).", file=sys.stderr)
                    exit_code = 1
                    stopping.set()
    finally:
        print("Stopping ...", flush=True)
        # The controller first, so it does not report the site as gone.
        for name in ("controller", "scheduler", "web site"):
            if name in children and children[name].poll() is None:
                children[name].send_signal(signal.SIGTERM)
        for name, child in children.items():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", name)
                child.kill()
        page.stop()
        board.stop()
        for port in (scanner, keypad, display):
            port.close()
    print("Stopped.", flush=True)
    return exit_code


def _secret(data_dir: Path) -> str:
    path = data_dir / "secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


if __name__ == "__main__":
    sys.exit(main())
