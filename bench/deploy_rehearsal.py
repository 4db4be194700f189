"""A rehearsal of the documented production layout on one machine (issue 33, docs/deployment.md):
nginx (config/nginx) in front of two gunicorn instances (config/gunicorn.conf.py), the
scheduler, PostgreSQL, Redis for the shared limits, Mosquitto with the documented ACL
(docs/MQTT.md), and two controllers (``python -m controller``) on emulated boards and
scanners on real pseudo-terminals. It books through nginx, scans, opens, returns, opens a
compartment from the staff side over the broker, scrapes the metrics, asks every
readiness, makes and verifies a backup, and prints each step with its result.

    python -m bench.deploy_rehearsal [--short] [--keep]

``--short`` (CI, tests/test_deploy_rehearsal.py): one loan instead of one per cabinet.
Everything it starts is its own: a new PostgreSQL database (dropped at the end), a Redis
key prefix of its own, a Mosquitto and an nginx on free ports, files in a new folder.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from bench import create_database, drop_database, nginx_front

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WAIT = 20.0  # seconds any one step may wait for the layout to react


class Failed(Exception):
    pass


def _free_port() -> int:
    return nginx_front.free_port()


def _wait(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise Failed(f"{what}: nothing after {timeout:.0f} s")


class Layout:
    """The processes of the rehearsal and how to reach them."""

    def __init__(self, folder: Path, short: bool, say) -> None:
        self.folder, self.short, self.say = folder, short, say
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.emulators: list = []
        self.database_name: str | None = None
        self.token = secrets.token_hex(16)
        self.controller_tokens = {1: secrets.token_hex(16), 2: secrets.token_hex(16)}
        self.passwords = {user: secrets.token_hex(8) for user in ("locker-server", "1", "2")}

    # -- starting -------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), "FLASK_APP": "wsgi.py",
                "LOCKER_DATABASE_URL": self.database_url,
                "LOCKER_SECRET_KEY": self.secret, "LOCKER_SIGNING_KEY_DIR": str(self.folder / "keys"),
                "LOCKER_COOKIE_SECURE": "0", "LOCKER_MAIL_BACKEND": "console",
                "LOCKER_PROXY_COUNT": "1",
                "LOCKER_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
                "LOCKER_RATELIMIT_KEY_PREFIX": f"rehearsal-{self.token[:8]}",
                "LOCKER_MQTT_URL": f"mqtt://127.0.0.1:{self.mqtt_port}",
                "LOCKER_MQTT_USERNAME": "locker-server",
                "LOCKER_MQTT_PASSWORD": self.passwords["locker-server"],
                "LOCKER_METRICS_TOKEN": self.token, "LOCKER_LOG_FORMAT": "json",
                "LOCKER_SCHEDULER_PORT": str(self.scheduler_port), "LOCKER_WORKERS": "2"}

    def start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "ab") as log:  # the child keeps its own copy
            process = subprocess.Popen(command, cwd=ROOT, env=env or self.environment(),
                                       stdout=log, stderr=log, start_new_session=True)
        self.processes.append((name, process))
        return process

    def flask(self, *args: str) -> str:
        done = subprocess.run([PYTHON, "-m", "flask", *args], cwd=ROOT, env=self.environment(),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise Failed(f"flask {' '.join(args)}: {done.stderr.strip()[-300:]}")
        return done.stdout.strip()

    def stop(self) -> None:
        def signal_to(process, signum):
            if process.poll() is None:
                if os.getpgid(process.pid) == process.pid:  # a group of its own (gunicorn)
                    os.killpg(process.pid, signum)
                else:
                    process.send_signal(signum)
        for _, process in reversed(self.processes):
            signal_to(process, signal.SIGTERM)
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                signal_to(process, signal.SIGKILL)
                process.wait(timeout=15)
            if process.stdout is not None:  # nginx's, a pipe
                process.stdout.close()
        for emulator in self.emulators:
            emulator.stop() if hasattr(emulator, "stop") else emulator.close()
        if self.database_name:
            drop_database(self.database_name)


def rehearse(short: bool = False, keep: bool = False, say=print) -> int:
    folder = Path(tempfile.mkdtemp(prefix="locker-rehearsal-"))
    layout = Layout(folder, short, say)
    results: list[tuple[str, bool, str]] = []

    def step(name: str, work) -> None:
        started = time.monotonic()
        try:
            outcome = work() or "done"
        except Exception as error:
            results.append((name, False, str(error)))
            say(f"[FAILED] {name}: {error}")
            if not isinstance(error, Failed):
                traceback.print_exc()
            raise Failed(name) from None
        results.append((name, True, outcome))
        say(f"[ok] {name} ({time.monotonic() - started:.1f} s): {outcome}")

    try:
        for name, work in _steps(layout):
            step(name, work)
    except Failed:
        pass
    finally:
        layout.stop()
        if keep:
            say(f"files kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    failed = [r for r in results if not r[1]]
    say(f"{len(results) - len(failed)} of {len(results)} steps passed"
        + (f"; failed: {failed[0][0]}" if failed else ""))
    return 1 if failed else 0


def _steps(layout: Layout):
    """The rehearsal's steps, in order: (name, work returning what it found)."""
    from bench.deploy_steps import steps
    return steps(layout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="one loan (the CI form)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and files")
    args = parser.parse_args(argv)
    return rehearse(args.short, args.keep, lambda text: print(text, flush=True))


if __name__ == "__main__":
    sys.exit(main())
