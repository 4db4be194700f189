"""City scale: the public pages, booking and the controllers' sync as history grows, each
next to a bare endpoint of the same app on the same gunicorn (config/gunicorn.conf.py).

    python -m bench.city_scale [--sizes 10000,100000,1000000] [--database sqlite|postgresql|both]
                               [--rounds 40] [--bookings 60] [--before CHECKOUT] [--record]

For each size: that many past reservations (90 % returned, spread over three years, as
bench.statistics makes them), then, over HTTP with keep-alive and interleaved with the bare
endpoint (medians):

- the site page ``GET /s/<slug>/``, the availability API and a reservation's page
  ``GET /r/<code>``;
- a controller's first sync (``since=0``) and an incremental one;
- booking through the API, one client after the other and with 8 clients at once (after
  a round not counted that warms every worker), as throughput next to the bare endpoint's
  with the same clients.

Goals (issues 11 and 31): pages and availability <= 3x the bare endpoint at 1M, growing
<= 1.2x from 10k to 1M, the syncs too; booking with 8 clients >= 1/6 of the bare endpoint's
throughput, growing <= 1.2x; a first sync at 1M <= 2 s. ``--before`` serves another
checkout's code (a worktree of an earlier commit) on a copy of the same data right before
ours at each size, so that both meet the same minute of the machine.
PostgreSQL: a database of its own on LOCKER_BENCH_POSTGRES_URL's server, dropped at the end.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics as stats
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

from bench import copy_database, record, remove_copy
from bench.statistics import build_app, fill

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-" + "x" * 30
AUTH = {"Authorization": f"Bearer {TOKEN}"}


EIGHT_CLIENT_ROUNDS = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(folder: Path, count: int, postgres: bool, say) -> str:
    """A database with ``count`` past reservations and a signing key; returns its URL."""
    from locker_app.extensions import db
    from locker_app.services import signing
    app = build_app(folder, postgres)
    fill(app, count, date.today(), say)
    with app.app_context():
        signing.ensure_key()
        url = db.engine.url.render_as_string(hide_password=False)
        if postgres:
            # What autovacuum does after a bulk load, done now rather than within a minute.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # The history came with its ids: new reservations number on after it.
                conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('reservation', 'id'), "
                                     "(SELECT max(id) FROM reservation))")
                # Every table, the small ones too: with autovacuum off (as on the test
                # machines) the compartments were never analysed, PostgreSQL guessed one row
                # per cabinet and the first sync walked all history (270 ms at 100k).
                conn.exec_driver_sql("VACUUM ANALYZE")
        db.engine.dispose()
    return url


class Server:
    """gunicorn with the project's settings, serving bench.city_wsgi."""

    def __init__(self, url: str, folder: Path, port: int | None = None, code: Path = ROOT,
                 **extra_env: str):
        """``code``: the checkout to serve (this one, or another to compare)."""
        self.port = port or _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **extra_env, "LOCKER_DATABASE_URL": url,
               "LOCKER_SECRET_KEY": secrets.token_hex(32),
               "LOCKER_SIGNING_KEY_DIR": str(folder / "keys"), "LOCKER_COOKIE_SECURE": "0",
               "LOCKER_BIND": f"127.0.0.1:{self.port}", "LOCKER_MAIL_BACKEND": "console",
               # Behind a reverse proxy, as deployed: Bookings sends each visitor's own
               # address in X-Forwarded-For, so the limits per address stay as configured.
               "LOCKER_PROXY_COUNT": "1"}
        with open(folder / f"gunicorn-{self.port}.log", "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(code / "config" / "gunicorn.conf.py"),
                 "bench.city_wsgi:app"], cwd=code, env={**env, "PYTHONPATH": str(code)}, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/bare", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or listening while the workers still load the app
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; see {folder / f'gunicorn-{self.port}.log'}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _slots(item_count: int, first_day: date | None = None):
    """Distinct half-hour windows from ``first_day`` (tomorrow) on, each as often as there
    are items."""
    day = first_day or date.today() + timedelta(days=1)
    while True:
        for minute in range(8 * 60, 20 * 60, 30):
            start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
            for _ in range(item_count):
                yield start, start + timedelta(minutes=30)
        day += timedelta(days=1)


class Bookings:
    """Booking requests for distinct windows, e-mail addresses and client addresses (each
    visitor from a network address of their own, through the reverse proxy), safe to share
    between threads. From one address, the limits per address refuse after 10 active
    reservations, and with them raised a booking counted all the address held."""

    def __init__(self, base: str, slug: str, item_type: str, items: int,
                 first_day: date | None = None, first_number: int = 0):
        self.base, self.slug, self.item_type = base, slug, item_type
        self._slots, self._lock, self._n = _slots(items, first_day), threading.Lock(), first_number
        self.refused = 0
        self.last_code = None  # the code of a booking made, for its reservation page

    def book(self, client: requests.Session) -> float:
        with self._lock:
            start, end = next(self._slots)
            self._n += 1
            n = self._n
        started = time.perf_counter()
        response = client.post(self.base + "/api/v1/reservations", json={
            "site": self.slug, "item_type": self.item_type, "start": f"{start:%Y-%m-%dT%H:%M}",
            "end": f"{end:%Y-%m-%dT%H:%M}", "name": "Bench", "email": f"bench{n}@example.org"},
            headers={"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"})
        took = time.perf_counter() - started
        if response.status_code != 201:
            with self._lock:
                self.refused += 1
            raise RuntimeError(f"booking refused: {response.status_code} {response.text[:200]}")
        self.last_code = response.json()["code"]
        return took


def _timed_get(client: requests.Session, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = client.get(url, **kwargs)
    took = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
    return took


def _parallel(clients: int, per_client: int, work) -> float:
    """Requests per second with ``clients`` threads doing ``per_client`` calls each."""
    errors = []

    def run():
        with requests.Session() as client:
            try:
                for _ in range(per_client):
                    work(client)
            except Exception as error:  # noqa: BLE001 (reported below)
                errors.append(error)
    threads = [threading.Thread(target=run) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if errors:
        raise errors[0]
    return clients * per_client / took


def measure_server(base: str, rounds: int, bookings: int) -> dict:
    client = requests.Session()
    slug = "stadtpark"
    sites = client.get(base + "/api/v1/sites")
    if sites.status_code == 200:
        slug = sites.json()["sites"][0]["slug"]
    book = Bookings(base, slug, "rollator", 4)
    # Booking, one client: each booking beside a bare request.
    _timed_get(client, base + "/bare")
    booking, bare = [], []
    for _ in range(bookings):
        booking.append(book.book(client))
        bare.append(_timed_get(client, base + "/bare"))
    figures = {"booking_seconds": stats.median(booking), "bare_seconds": stats.median(bare)}
    figures["booking_throughput_1"] = figures["bare_seconds"] / figures["booking_seconds"]
    # Eight clients at once: rounds of bookings then the bare endpoint, the median of each.
    # A round of 40 bookings (half a second on the test machines) moved by 20 % from run to
    # run: a round is 8 x bookings/6 (80) bookings now, five of them.
    per_client = max(2, bookings // 6)
    booked_8, bare_8 = [], []
    # These bookings (480 and more) go after the week the pages below show: those are
    # measured with the one client's bookings in it, however many rounds are booked here
    # (with them in it, the week was five days full and the availability API at 10k 3.1x
    # the bare endpoint instead of 2.2x on SQLite, 3.6x instead of 2.7x on PostgreSQL).
    book = Bookings(base, slug, "rollator", 4, first_day=date.today() + timedelta(days=9),
                    first_number=bookings)
    # First a round not counted: the one client above kept to one worker, and each other
    # worker's first bookings compile their statements (80 to 100 ms the first) and
    # PostgreSQL prepares them only on a connection's fifth use; the rounds then measure
    # the site as it runs all day (1/5.5 of the bare endpoint instead of 1/7.0).
    _parallel(8, per_client, book.book)
    _parallel(8, per_client * 4, lambda c: _timed_get(c, base + "/bare"))
    for _ in range(EIGHT_CLIENT_ROUNDS):
        booked_8.append(_parallel(8, per_client, book.book))
        bare_8.append(_parallel(8, per_client * 4, lambda c: _timed_get(c, base + "/bare")))
    figures.update(bookings_per_second_8=stats.median(booked_8),
                   bare_per_second_8=stats.median(bare_8),
                   booking_throughput_8=stats.median(booked_8) / stats.median(bare_8))
    # Pages and sync, interleaved round by round.
    today = date.today() + timedelta(days=1)
    paths = {"site": (f"/s/{slug}/", {}),
             "availability": (f"/api/v1/sites/{slug}/availability?from={today}&to={today + timedelta(days=6)}", {}),
             "reservation": (f"/r/{book.last_code}", {}),
             "first_sync": ("/api/v1/controller/sync?since=0", {"headers": AUTH})}
    first = client.get(base + "/api/v1/controller/sync?since=0", headers=AUTH).json()
    figures["first_sync_reservations"] = len(first["reservations"])
    figures["first_sync_pages"] = 1
    cursor = first["cursor"]
    started = time.perf_counter()
    while first["more"]:
        first = client.get(base + f"/api/v1/controller/sync?since={first['cursor']}", headers=AUTH).json()
        figures["first_sync_pages"] += 1
        cursor = first["cursor"]
    figures["first_sync_rest_seconds"] = time.perf_counter() - started
    paths["incremental_sync"] = (f"/api/v1/controller/sync?since={cursor}", {"headers": AUTH})
    if client.get(base + paths["availability"][0]).status_code != 200:
        del paths["availability"]
    times = {name: [] for name in paths}
    bare = []
    for _ in range(rounds):
        for name, (path, kwargs) in paths.items():
            times[name].append(_timed_get(client, base + path, **kwargs))
            bare.append(_timed_get(client, base + "/bare"))
    figures["page_bare_seconds"] = stats.median(bare)
    for name, values in times.items():
        figures[f"{name}_seconds"] = stats.median(values)
    client.close()
    return figures


def measure(count: int, postgres: bool = False, rounds: int = 40, bookings: int = 60,
            quiet: bool = False, codes: tuple[Path, ...] = (ROOT,)) -> list[dict]:
    """The figures at ``count`` past reservations for each checkout in ``codes`` (this one,
    or an earlier one to compare), one after the other, each on a copy of the same data."""
    import logging
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    folder = Path(tempfile.mkdtemp(prefix="bench-city-"))
    logging.disable(logging.WARNING)
    try:
        url = prepare(folder, count, postgres, say)
    finally:
        logging.disable(logging.NOTSET)  # the process (a test run) logs as before
    rows = []
    for code in codes:
        say(f"{count:,} past reservations: serving {code} with gunicorn")
        served = copy_database(url) if len(codes) > 1 else url
        server = Server(served, folder, code=code)
        try:
            figures = measure_server(server.base, rounds, bookings)
        finally:
            server.stop()
            if served != url:
                remove_copy(served)
        figures.update(reservations=count, database="postgresql" if postgres else "sqlite",
                       code="" if code == ROOT else str(code))
        rows.append(figures)
    return rows


PAGES = (("site", "site page"), ("availability", "availability API"),
         ("reservation", "reservation page"), ("first_sync", "first sync, a page"),
         ("incremental_sync", "incremental sync"))


def report(rows: list[dict]) -> str:
    lines = []
    for database in ("sqlite", "postgresql"):
        for code in dict.fromkeys(f.get("code", "") for f in rows):
            mine = [f for f in rows if f["database"] == database and f.get("code", "") == code]
            if mine:
                lines += _report(database, code, mine)
    return "\n".join(lines)


def _report(database: str, code: str, mine: list[dict]) -> list[str]:
    served = f" (served by {code})" if code else ""
    lines = [f"{database}{served}: past reservations "
             + " / ".join(f"{f['reservations']:,}" for f in mine)]

    def ratio(name):
        return " / ".join(f"{f[name + '_seconds'] * 1000:.1f} ms = {f[name + '_seconds'] / f['page_bare_seconds']:.1f}x"
                          if name + "_seconds" in f else "-" for f in mine)
    for name, label in PAGES:
        lines.append(f"  {label:<22} {ratio(name)}")
    lines.append("  first sync, all pages  " + " / ".join(
        f"{f['first_sync_pages']} page(s), {f['first_sync_reservations']} reservations on the first"
        for f in mine))
    lines.append("  bare endpoint          " + " / ".join(
        f"{f['page_bare_seconds'] * 1000:.2f} ms" for f in mine))
    lines.append("  booking, 1 client      " + " / ".join(
        f"{f['booking_seconds'] * 1000:.1f} ms = 1/{1 / f['booking_throughput_1']:.1f} of bare"
        for f in mine))
    lines.append("  booking, 8 clients     " + " / ".join(
        f"{f['bookings_per_second_8']:.0f}/s = 1/{1 / f['booking_throughput_8']:.1f} of bare "
        f"({f['bare_per_second_8']:.0f}/s)" for f in mine))
    first, last = mine[0], mine[-1]
    if len(mine) > 1:
        # As multiples of the bare endpoint measured beside them, as the goal reads: the
        # machine's own pace moved by a fifth between two sizes of one run (bare endpoint
        # 0.89 -> 1.07 ms), and the times alone counted that as growth.
        for name, label in PAGES:
            if f"{name}_seconds" not in first or f"{name}_seconds" not in last:
                continue
            times = last[f"{name}_seconds"] / first[f"{name}_seconds"]
            relative = times / (last["page_bare_seconds"] / first["page_bare_seconds"])
            lines.append(f"  {label} growth {first['reservations']:,} -> {last['reservations']:,}: "
                         f"{relative:.2f}x of bare (times alone {times:.2f}x)")
        growth = first["booking_throughput_8"] / last["booking_throughput_8"]
        lines.append(f"  booking, 8 clients, growth {first['reservations']:,} -> "
                     f"{last['reservations']:,}: {growth:.2f}x of bare")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.city_scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--bookings", type=int, default=60)
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also serve this checkout's code, on a copy of the same data, "
                             "right before ours at each size")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    codes = (args.before.resolve(), ROOT) if args.before else (ROOT,)
    rows = []
    for database in databases:
        for size in sizes:
            rows += measure(size, database == "postgresql", args.rounds, args.bookings,
                            codes=codes)
            print(report(rows[-len(codes):]), flush=True)
    text = report(rows)
    print("\n" + text)
    if args.record:
        command = " ".join(["python -m bench.city_scale", *(argv if argv is not None else sys.argv[1:])])
        record("City scale", command, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
