"""The fault bench: the production layout on one machine, under load, while its helpers fail
one after the other.

    python -m bench.faults [--seconds 8] [--bookers 6] [--short] [--record]

It starts, each on ports and in a database of its own: a PostgreSQL database (created on
LOCKER_BENCH_POSTGRES_URL's server, dropped at the end) reached through a fault proxy
(bench/fault_proxy.py), a Redis server for the limits, a Mosquitto broker, two gunicorn
instances and nginx in front of them with the shipped config/nginx/locker-proxy.conf.
Visitors book through nginx (each booking with its Idempotency-Key, retried with the same
key after an error, as the form's key is when a visitor presses again), others look at the
site page, and "controllers" deliver events (each with its key, retried until stored, as
the outbox does). Then, in turn, for ``--seconds`` each with as long to recover: Redis
stalls (SIGSTOP) and is killed, the database stalls and its connections are cut, the broker
stalls and is killed, one web instance is killed.

It prints: requests answered, p99 latency, answers over 5 s, 5xx other than 503, bookings
answered OK and missing, stored though answered an error, booked twice, events lost or
doubled. Goal (issue 30): no answer over 5 s, nothing lost, doubled or stored after an
error. ``--short`` (the CI's run, tests/test_benchmarks.py) fails Redis, the database and a
web instance for 3 s each.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import create_database as create_own_database, drop_database, nginx_front, record
from bench.city_scale import ROOT, Server
from bench.fault_load import TOKEN, Tally, booker, controller, viewer
from bench.fault_proxy import FaultProxy

ANSWER_WITHIN = 5.0


# The helpers, each a process of this bench's own ------------------------------------------
class Helper:
    """A server process on a free port that can be stalled (SIGSTOP), killed and restarted."""

    def __init__(self, name: str, command: list[str], port: int) -> None:
        self.name, self.command, self.port = name, command, port
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, f"{self.name} on port {self.port}")

    def stall(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _wait_for_port(port: int, what: str, seconds: float = 20) -> None:
    import socket
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def create_database(folder: Path) -> tuple[str, str]:
    """A database of this bench's own, migrated and seeded; (its URL, its name)."""
    from flask_migrate import upgrade

    from locker_app import create_app
    from locker_app.config import TestConfig
    from locker_app.demo_data import seed
    from locker_app.extensions import db
    from locker_app.services import signing
    url, name = create_own_database("locker_faults")
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SIGNING_KEY_DIR": str(folder / "keys")})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed(db.session, TOKEN)
        signing.ensure_key()
        db.session.remove()
        db.engine.dispose()
    return url, name


# The run ----------------------------------------------------------------------------------
def measure(seconds: float = 8.0, bookers: int = 6, short: bool = False) -> dict:
    import logging
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    redis_port, broker_port = nginx_front.free_port(), nginx_front.free_port()
    helpers, servers, front, proxy, name = [], [], None, None, None
    logging.disable(logging.WARNING)
    try:
        url, name = create_database(folder)
        from sqlalchemy import make_url
        target = make_url(url)
        proxy = FaultProxy((target.host or "127.0.0.1", target.port or 5432))
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        redis = Helper("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no"], redis_port)
        broker = Helper("mosquitto", ["mosquitto", "-p", str(broker_port)], broker_port)
        helpers = [redis, broker]
        env = {"LOCKER_RATELIMIT_STORAGE_URL": f"redis://127.0.0.1:{redis_port}/0",
               "LOCKER_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
               "LOCKER_LIMIT_BOOKING_PER_ADDRESS": "1000000 per hour",
               "LOCKER_ADDRESS_MAX_ACTIVE": "1000000", "LOCKER_WORKERS": "1",
               "LOCKER_THREADS": "4"}
        servers = [Server(proxied, folder, **env) for _ in range(2)]
        front, base = nginx_front.start(folder / "nginx", [s.port for s in servers])
        _wait_for_port(int(base.rsplit(":", 1)[1]), "nginx")
        tally, stop = Tally(), threading.Event()
        threads = ([threading.Thread(target=booker, args=(base, tally, stop, n), daemon=True)
                    for n in range(bookers)]
                   + [threading.Thread(target=viewer, args=(base, tally, stop), daemon=True)
                      for _ in range(2)]
                   + [threading.Thread(target=controller, args=(base, tally, stop), daemon=True)
                      for _ in range(2)])
        for thread in threads:
            thread.start()
        time.sleep(seconds)  # (the bench's own clock: load before the first fault)

        def web_killed():
            victim = servers[0]
            _kill_with_workers(victim.process)  # as a host that dies
            # Back on its port: nginx asks it again after its fail_timeout (2 s).
            return lambda: servers.__setitem__(0, Server(proxied, folder, victim.port, **env))
        faults = [
            ("Redis stalled", lambda: (redis.stall(), redis.resume)[1]),
            ("Redis killed", lambda: (redis.kill(), redis.start)[1]),
            ("database stalled", lambda: (proxy.stall(), proxy.heal)[1]),
            ("database cut", lambda: (proxy.cut(), proxy.heal)[1]),
            ("broker stalled", lambda: (broker.stall(), broker.resume)[1]),
            ("broker killed", lambda: (broker.kill(), broker.start)[1]),
            ("web instance killed", web_killed),
        ]
        if short:
            faults = [faults[0], faults[2], faults[3], faults[6]]
        for label, fail in faults:
            tally.phase = label
            print(f"  {label} ...", flush=True)
            recover = fail()
            time.sleep(seconds)
            recover()
            tally.phase = f"after {label}"
            time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(120)
        return _figures(tally, url, faults=[label for label, _ in faults], seconds=seconds)
    finally:
        logging.disable(logging.NOTSET)
        if front is not None:
            front.terminate()
            front.communicate(timeout=10)
        for server in servers:
            server.stop()
        for helper in helpers:
            helper.stop()
        if proxy is not None:
            proxy.close()
        if name is not None:
            drop_database(name)


def _kill_with_workers(process: subprocess.Popen) -> None:
    """SIGKILL a gunicorn master and its workers (a worker outlives its master for a while
    and keeps the port)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    workers = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.kill()
    process.wait(10)


def _figures(tally: Tally, url: str, faults: list[str], seconds: float) -> dict:
    import hashlib

    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = {row[0]: row[1] for row in conn.execute(text(
            "SELECT booking_key, count(*) FROM reservation WHERE booking_key IS NOT NULL "
            "GROUP BY booking_key"))}
        events = {row[0]: row[1] for row in conn.execute(text(
            "SELECT idempotency_key, count(*) FROM controller_event "
            "WHERE idempotency_key LIKE 'fault-%' GROUP BY idempotency_key"))}
        per_name = conn.execute(text(
            "SELECT count(*) FROM (SELECT visitor_name FROM reservation WHERE visitor_name "
            "LIKE 'Bench %' GROUP BY visitor_name HAVING count(*) > 1) twice")).scalar()
    engine.dispose()

    def hashed(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()
    times = sorted(seconds for _, _, seconds in tally.answers)
    ok = [key for key, final in tally.bookings.items() if final.startswith("ok")]
    errors = [key for key, final in tally.bookings.items() if final == "error"]
    return {
        "faults": faults, "seconds": seconds, "requests": len(tally.answers),
        "no_answer": sum(1 for _, status, _ in tally.answers if status == -1),
        "p99": times[int(0.99 * (len(times) - 1))] if times else 0.0,
        "over_5s": sum(1 for t in times if t > ANSWER_WITHIN),
        "over_5s_by_phase": _by_phase(tally, lambda status, t: t > ANSWER_WITHIN),
        "answers_503": sum(1 for _, status, _ in tally.answers if status == 503),
        "other_5xx": sum(1 for _, status, _ in tally.answers if status >= 500 and status != 503),
        "other_5xx_by_phase": _by_phase(tally, lambda status, t: status >= 500 and status != 503),
        "other_5xx_seen": sorted(set(tally.odd))[:5],
        "bookings": len(tally.bookings), "booked": len(ok),
        "refused": sum(1 for final in tally.bookings.values() if final == "refused"),
        "gave_up": len(errors),
        "ok_missing": sum(1 for key in ok if hashed(key) not in stored),
        "stored_after_error": sum(1 for key in errors if hashed(key) in stored),
        "booked_twice": per_name + sum(1 for count in stored.values() if count > 1),
        "events": len(tally.events),
        "events_lost": sum(1 for key, done in tally.events.items() if done and key not in events),
        "events_undelivered": sum(1 for done in tally.events.values() if not done),
        "events_doubled": sum(1 for count in events.values() if count > 1),
    }


def _by_phase(tally: Tally, counts) -> dict[str, int]:
    found: dict[str, int] = {}
    for phase, status, seconds in tally.answers:
        if counts(status, seconds):
            found[phase] = found.get(phase, 0) + 1
    return found


def met(f: dict) -> bool:
    return (f["over_5s"] == 0 and f["other_5xx"] == 0 and f["ok_missing"] == 0
            and f["stored_after_error"] == 0 and f["booked_twice"] == 0
            and f["events_lost"] == 0 and f["events_doubled"] == 0)


def report(f: dict) -> str:
    def phases(counts: dict) -> str:
        return (" (" + ", ".join(f"{phase}: {n}" for phase, n in counts.items()) + ")"
                if counts else "")
    return (f"faults, {f['seconds']:g} s each with as long to recover: {', '.join(f['faults'])}\n"
            f"  requests answered {f['requests'] - f['no_answer']:,} of {f['requests']:,}, "
            f"p99 {f['p99']:.2f} s, over 5 s {f['over_5s']}{phases(f['over_5s_by_phase'])}\n"
            f"  503 'try again' {f['answers_503']}, other 5xx {f['other_5xx']}"
            f"{phases(f['other_5xx_by_phase'])}\n"
            + "".join(f"    {seen}\n" for seen in f["other_5xx_seen"]) +
            f"  bookings {f['bookings']}: booked {f['booked']}, refused {f['refused']}, "
            f"given up after 20 tries {f['gave_up']}; answered OK and missing "
            f"{f['ok_missing']}, stored though answered an error {f['stored_after_error']}, "
            f"booked twice {f['booked_twice']}\n"
            f"  events {f['events']}: lost {f['events_lost']}, doubled {f['events_doubled']}, "
            f"not delivered within 30 s {f['events_undelivered']}\n"
            f"  goal (nothing over 5 s, lost, doubled or stored after an error): "
            f"{'met' if met(f) else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bookers", type=int, default=6)
    parser.add_argument("--short", action="store_true", help="three faults, 3 s each (CI)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.short else args.seconds
    figures = measure(seconds, args.bookers, args.short)
    text = report(figures)
    print(text)
    if args.record:
        record("Faults", f"python -m bench.faults --seconds {seconds:g} --bookers {args.bookers}"
               f"{' --short' if args.short else ''} --record", text)
    return 0 if met(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
