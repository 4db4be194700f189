"""Many cabinets at once: do 200 connected controllers slow the public pages?

    python -m bench.many_cabinets [--controllers 200] [--seconds 60] [--postgres] [--record]

One gunicorn with the project's settings. The visitors' side asks for the site page over
and over (p95 of the answers); the cabinets' side (another process) is the controllers'
traffic as the real ones make it: a sync every 10 s and the status after it, and for the
remote commands either

- the message broker (Mosquitto on 127.0.0.1:1883; an MQTT 5 connection per controller with
  its retained status and last will) and a short HTTP look every 60 s, or
- without a broker, the 20 s long poll each (issue 11 measured 24 s for the home page with
  eight; a process now holds two and turns the others away for 5 s).

Goal: with 200 controllers on the broker, the page's p95 at most 1.5 times its p95 without
them. SQLite in a temporary folder; ``--postgres`` a database of its own
on LOCKER_BENCH_POSTGRES_URL's server, dropped at the end.
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics as stats
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import record
from bench.city_scale import Server
from bench.statistics import build_app

BROKER = "mqtt://127.0.0.1:1883"


def prepare(folder: Path, controllers: int, postgres: bool) -> tuple[str, list[tuple[int, str]]]:
    """The demo site plus a cabinet (one compartment, one rollator) per extra controller;
    returns the database URL and (cabinet id, token) per controller."""
    from sqlalchemy import select

    from locker_app.extensions import db
    from locker_app.models import Cabinet, Compartment, Item, ItemType, Site
    from locker_app.services import signing
    from locker_app.services.controllers import register_controller
    app = build_app(folder, postgres)
    fleet = []
    with app.app_context():
        signing.ensure_key()
        site = db.session.scalars(select(Site)).first()
        rollator = db.session.scalars(select(ItemType).where(ItemType.code == "rollator")).one()
        for n in range(controllers):
            cabinet = Cabinet(site=site, name=f"Schrank {n + 2}", board_family="A")
            compartment = Compartment(cabinet=cabinet, number=1, board_address=1, lock_number=1)
            db.session.add_all([cabinet, compartment,
                                Item(item_type=rollator, compartment=compartment, label=f"R{n}")])
            token = f"bench-fleet-{n:04d}-" + "x" * 24
            controller, _ = register_controller(db.session, cabinet, f"Controller {n}", token)
            fleet.append((cabinet.id, token))
        db.session.commit()
        url = db.engine.url.render_as_string(hide_password=False)
        db.engine.dispose()
    return url, fleet


def _controller(base: str, cabinet_id: int, token: str, broker: bool, stop, prefix: str,
                spread: float, first_sync_done) -> None:
    """One controller's traffic until ``stop`` is set; ``first_sync_done()`` after its first."""
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    client = None
    if broker:
        import paho.mqtt.client as mqtt
        from signed_code import remote
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id=f"bench-{prefix}-{cabinet_id}")
        status = remote.topic(prefix, cabinet_id, "status")
        key = remote.presence_key(token)  # signed as a controller signs it (one connection)
        client.will_set(status, remote.presence(key, "offline", 1), qos=1, retain=True)
        client.on_connect = lambda c, *a: (c.subscribe(remote.topic(prefix, cabinet_id, "commands"), 1),
                                           c.publish(status, remote.presence(key, "online", 1), 1, True))
        client.connect_async("127.0.0.1", 1883, keepalive=30)
        client.loop_start()
    cursor, next_sync, next_look = 0, 0.0, time.monotonic() + random.uniform(0, 60)
    stop.wait(random.uniform(0, spread))  # the fleet does not sync in step
    first = True
    while not stop.is_set():
        now = time.monotonic()
        try:
            if now >= next_sync:
                cursor = session.get(f"{base}/api/v1/controller/sync?since={cursor}", headers=headers,
                                     timeout=60).json()["cursor"]
                session.post(f"{base}/api/v1/controller/status", headers=headers, timeout=60,
                             json={"status": {"outbox": 0, "doors_open": []}})
                next_sync = now + 10
                if first:
                    first = False
                    first_sync_done()
            if broker and now >= next_look:
                session.get(f"{base}/api/v1/controller/commands?after=0&wait=0", headers=headers,
                            timeout=60)
                next_look = now + 60
            if not broker:
                answer = session.get(f"{base}/api/v1/controller/commands?after=0&wait=20",
                                     headers=headers, timeout=60).json()
                # Turned away (the process holds its LOCKER_LONG_POLLS_PER_PROCESS): as
                # the real controller, asked again when the server says.
                stop.wait(answer.get("retry_after", 0))
                continue
        except requests.RequestException:
            pass  # asked again shortly (a first sync that failed is still due)
        stop.wait(max(0.05, min(next_sync, next_look) - time.monotonic()))
    if client is not None:
        client.publish(remote.topic(prefix, cabinet_id, "status"), b"", 1, True).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
    session.close()


def _fleet(base: str, fleet: list[tuple[int, str]], broker: bool, spread: float, synced,
           finished) -> None:
    """The cabinets' side, in its own process: a thread per controller. ``synced`` is set
    once every controller has made its first sync; the fleet runs until ``finished``."""
    stop = threading.Event()
    prefix = f"bench{random.randrange(10**6)}"
    waiting, lock = [len(fleet)], threading.Lock()

    def first_sync_done():
        with lock:
            waiting[0] -= 1
            if waiting[0] == 0:
                synced.set()
    threads = [threading.Thread(target=_controller, daemon=True,
                                args=(base, cabinet_id, token, broker, stop, prefix, spread,
                                      first_sync_done)) for cabinet_id, token in fleet]
    for thread in threads:
        thread.start()
    finished.wait()
    stop.set()
    for thread in threads:
        thread.join(70)


def pages(base: str, seconds: float) -> list[float]:
    """The site page, one request after the other, for ``seconds``."""
    times = []
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                session.get(base + "/s/stadtpark/", timeout=60).raise_for_status()
            except requests.RequestException:
                times.append(60.0)
                continue
            times.append(time.perf_counter() - started)
            time.sleep(0.05)
    return times


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[int(0.95 * (len(ordered) - 1))]


def measure(controllers: int = 200, seconds: float = 60, postgres: bool = False,
            long_poll: bool = True, spread: float = 10) -> dict:
    """``spread``: the controllers' first syncs fall at random within that many seconds;
    the pages are measured once every controller has made it."""
    import logging
    folder = Path(tempfile.mkdtemp(prefix="bench-cabinets-"))
    logging.disable(logging.WARNING)
    try:
        url, fleet = prepare(folder, controllers, postgres)
    finally:
        logging.disable(logging.NOTSET)
    figures = {"controllers": controllers, "database": "postgresql" if postgres else "sqlite"}
    server = Server(url, folder, LOCKER_MQTT_URL=BROKER)
    try:
        pages(server.base, 2)  # warm up
        alone = pages(server.base, seconds / 2)
        figures.update(alone_p50=stats.median(alone), alone_p95=_p95(alone))
        modes = [("broker", True)] + ([("long_poll", False)] if long_poll else [])
        for name, broker in modes:
            context = multiprocessing.get_context("spawn")
            synced, finished = context.Event(), context.Event()
            process = context.Process(target=_fleet, args=(server.base, fleet, broker, spread,
                                                           synced, finished))
            process.start()
            try:
                if not synced.wait(spread + 120):
                    raise RuntimeError("the controllers' first syncs did not all arrive")
                busy = pages(server.base, seconds if broker else min(seconds, 30))
            finally:
                finished.set()
                process.join(120)
            figures.update({f"{name}_p50": stats.median(busy), f"{name}_p95": _p95(busy),
                            f"{name}_samples": len(busy)})
    finally:
        server.stop()
    return figures


def _gunicorn_size() -> str:
    """Processes and threads as config/gunicorn.conf.py sets them on this machine."""
    from runpy import run_path
    conf = run_path(str(Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"))
    return f"{conf['workers']} workers x {conf['threads']} threads"


def report(f: dict) -> str:
    lines = [f"site page with {f['controllers']} controllers connected ({f['database']}, one gunicorn, "
             f"{_gunicorn_size()}):",
             f"  without them:           median {f['alone_p50'] * 1000:.1f} ms, p95 {f['alone_p95'] * 1000:.1f} ms",
             f"  on the broker:          median {f['broker_p50'] * 1000:.1f} ms, p95 {f['broker_p95'] * 1000:.1f} ms "
             f"({f['broker_p95'] / f['alone_p95']:.2f}x)"]
    if "long_poll_p95" in f:
        lines.append(f"  long polls, no broker:  median {f['long_poll_p50'] * 1000:.1f} ms, "
                     f"p95 {f['long_poll_p95'] * 1000:.1f} ms ({f['long_poll_p95'] / f['alone_p95']:.0f}x)")
    lines.append(f"  goal (on the broker, p95 <= 1.5x): "
                 f"{'met' if f['broker_p95'] <= 1.5 * f['alone_p95'] else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.many_cabinets",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--controllers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-long-poll", action="store_true", help="skip the run without a broker")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = report(measure(args.controllers, args.seconds, args.postgres, not args.no_long_poll))
    print(text)
    if args.record:
        record("Many cabinets", f"python -m bench.many_cabinets --controllers {args.controllers} "
               f"--seconds {args.seconds:g}{' --postgres' if args.postgres else ''} --record", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
