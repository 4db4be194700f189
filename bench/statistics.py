"""Statistics as history grows: past reservations (90 % returned, the rest no-shows and
cancellations, spread over three years) with their events, the daily aggregates rebuilt, then
the statistics page for a year timed next to a bare endpoint of the same app.

    python -m bench.statistics [--reservations 1000000] [--record]

Goal: the year's statistics page answers in under a second at 1M past reservations.
SQLite in a temporary folder; ``--postgres`` a database of its own on
LOCKER_BENCH_POSTGRES_URL's server, dropped at the end.
"""
from __future__ import annotations

import argparse
import random
import statistics as stats
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from bench import create_database, record

ROOT = Path(__file__).resolve().parent.parent


def build_app(folder: Path, postgres: bool):
    from flask_migrate import upgrade

    from locker_app import create_app
    from locker_app.config import TestConfig
    from locker_app.demo_data import seed
    from locker_app.extensions import db
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    if postgres:  # a database of the bench's own, dropped when it ends
        url, _ = create_database()
    # (Rate limits stay on: the limiter is one object per process, and the few requests
    # timed here are far below every limit.)
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SIGNING_KEY_DIR": str(folder / "keys")})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed(db.session, "bench-token-" + "x" * 30)
    app.add_url_rule("/bare", "bare", lambda: "ok")
    return app


def fill(app, count: int, today: date, progress) -> None:
    """``count`` past reservations over the three years before ``today``, with their events,
    in bulk (a few thousand rows a statement)."""
    from sqlalchemy import insert, select

    from locker_app.extensions import db
    from locker_app.models import Item, Reservation, ReservationEvent
    rng = random.Random(7)
    with app.app_context():
        items = [(i.id, i.compartment_id) for i in db.session.scalars(select(Item))]
        first = datetime.combine(today - timedelta(days=3 * 365), datetime.min.time())
        span = (3 * 365 - 2) * 24 * 60
        batch_r, batch_e, next_id = [], [], 1
        started = time.monotonic()
        for n in range(count):
            item_id, compartment_id = rng.choice(items)
            start = first + timedelta(minutes=rng.randrange(span) // 15 * 15)
            end = start + timedelta(minutes=rng.choice((60, 120, 180, 240)))
            created = start - timedelta(hours=rng.randrange(1, 72))
            roll = rng.random()
            state = "returned" if roll < 0.9 else "no_show" if roll < 0.95 else "cancelled"
            batch_r.append(dict(id=next_id, item_id=item_id, compartment_id=compartment_id,
                                start_at=start, end_at=end,
                                pickup_until=min(end, start + timedelta(hours=1)), state=state,
                                created_at=created, booked_with_email=rng.random() < 0.6,
                                erased_at=created + timedelta(days=40), locale="de"))
            batch_e.append(dict(reservation_id=next_id, at=created, from_state=None,
                                to_state="booked", actor="staff" if rng.random() < 0.2 else "visitor",
                                cause="bench"))
            if state == "returned":
                picked = start + timedelta(minutes=rng.randrange(0, 30))
                back = end + timedelta(minutes=rng.randrange(-40, 30))
                batch_e += [dict(reservation_id=next_id, at=picked, from_state="booked",
                                 to_state="picked_up", actor="controller", cause="bench"),
                            dict(reservation_id=next_id, at=max(back, picked + timedelta(minutes=5)),
                                 from_state="picked_up", to_state="returned", actor="controller",
                                 cause="bench")]
            elif state == "cancelled":
                batch_e.append(dict(reservation_id=next_id, at=created + timedelta(minutes=30),
                                    from_state="booked", to_state="cancelled", actor="visitor",
                                    cause="bench"))
            else:
                batch_e.append(dict(reservation_id=next_id, at=start + timedelta(hours=1),
                                    from_state="booked", to_state="no_show", actor="scheduler",
                                    cause="bench"))
            next_id += 1
            if len(batch_r) >= 5000 or n == count - 1:
                db.session.execute(insert(Reservation), batch_r)
                db.session.execute(insert(ReservationEvent), batch_e)
                db.session.commit()
                batch_r, batch_e = [], []
                progress(f"history: {n + 1:,} of {count:,} reservations "
                         f"({time.monotonic() - started:.0f} s)")


def timed(client, path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    return stats.median(times)


def measure(count: int, postgres: bool = False, runs: int = 5, quiet: bool = False) -> dict:
    import logging
    logging.disable(logging.WARNING)
    try:
        return _measure(count, postgres, runs, quiet)
    finally:
        logging.disable(logging.NOTSET)  # the process (a test run) logs as before


def _measure(count: int, postgres: bool, runs: int, quiet: bool) -> dict:
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    folder = Path(tempfile.mkdtemp(prefix="bench-statistics-"))
    app = build_app(folder, postgres)
    from locker_app.extensions import db
    from locker_app.services import usage
    from locker_app.services.staff_accounts import create_account
    today = date.today()
    fill(app, count, today, say)
    with app.app_context():
        started = time.monotonic()
        day, last = today - timedelta(days=3 * 365 + 1), today
        while day <= last:
            until = min(day + timedelta(days=30), last)
            usage.rebuild(db.session, day, until)
            day = until + timedelta(days=1)
            say(f"aggregates: up to {until} ({time.monotonic() - started:.0f} s)")
        rebuild_seconds = time.monotonic() - started
        started = time.monotonic()
        usage.keep_current(db.session)
        daily_seconds = time.monotonic() - started
        create_account(db.session, "bench", "Bench", "bench-password-long", "admin")
        db.session.commit()
    client = app.test_client()
    client.post("/staff/login", data={"username": "bench", "password": "bench-password-long"})
    year = f"/staff/statistics?from={today - timedelta(days=364)}&to={today}"
    timed(client, year, 1)  # warm up
    figures = {"reservations": count, "database": "postgresql" if postgres else "sqlite",
               "rebuild_seconds": rebuild_seconds, "daily_job_seconds": daily_seconds,
               "year_page_seconds": timed(client, year, runs),
               "month_page_seconds": timed(client, f"/staff/statistics?from={today - timedelta(days=29)}&to={today}", runs),
               "bare_seconds": timed(client, "/bare", runs * 4)}
    return figures


def report(f: dict) -> str:
    return (f"{f['reservations']:,} past reservations on {f['database']}:\n"
            f"  aggregates rebuilt for 3 years in {f['rebuild_seconds']:.1f} s; "
            f"the scheduler's daily job {f['daily_job_seconds'] * 1000:.0f} ms\n"
            f"  statistics page, a year:  {f['year_page_seconds'] * 1000:.0f} ms "
            f"({f['year_page_seconds'] / f['bare_seconds']:.0f}x the bare endpoint)\n"
            f"  statistics page, 30 days: {f['month_page_seconds'] * 1000:.0f} ms\n"
            f"  bare endpoint:            {f['bare_seconds'] * 1000:.2f} ms\n"
            f"  goal: a year under 1 s: {'met' if f['year_page_seconds'] < 1 else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statistics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reservations", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = report(measure(args.reservations, args.postgres))
    print(text)
    if args.record:
        record("Statistics", f"python -m bench.statistics --reservations {args.reservations}"
               f"{' --postgres' if args.postgres else ''} --record", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
