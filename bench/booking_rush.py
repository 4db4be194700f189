"""A rush for the last items: many visitors book the same window at the same moment, through
two gunicorn instances on one PostgreSQL (as two web hosts would).

    python -m bench.booking_rush [--attempts 1000] [--items 10] [--sqlite] [--record]

Goal (issue 11): with 1,000 attempts for 10 free items, 10 bookings and 990 clear refusals
("sold out"), no errors, no overlapping reservations, and every answer within 2 s for 95 %
of the visitors. Each attempt is timed from the common start. PostgreSQL uses
LOCKER_TEST_POSTGRES_URL's server and empties its schema; ``--sqlite`` a file instead.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics as stats
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.city_scale import ROOT, Server
from bench.statistics import build_app

TOMORROW = date.today() + timedelta(days=1)


def prepare(folder: Path, items: int, postgres: bool) -> str:
    """The demo site with ``items`` rollators, all free tomorrow; returns the database URL."""
    from sqlalchemy import select

    from locker_app.extensions import db
    from locker_app.models import Cabinet, Compartment, Item, ItemType
    from locker_app.services import signing
    app = build_app(folder, postgres)
    with app.app_context():
        signing.ensure_key()
        cabinet = db.session.scalars(select(Cabinet)).first()
        rollator = db.session.scalars(select(ItemType).where(ItemType.code == "rollator")).one()
        have = db.session.scalar(select(db.func.count()).select_from(Item).where(
            Item.item_type_id == rollator.id))
        number = 100
        for n in range(items - have):
            compartment = Compartment(cabinet=cabinet, number=number + n, board_address=2,
                                      lock_number=n + 1)
            db.session.add_all([compartment, Item(item_type=rollator, compartment=compartment,
                                                  label=f"Rollator {have + n + 1}")])
        db.session.commit()
        url = db.engine.url.render_as_string(hide_password=False)
        db.engine.dispose()
    return url


def rush(bases: list[str], attempts: int) -> list[tuple[int, str, float]]:
    """Every attempt in its own thread, released together; (status, code, seconds) each."""
    results: list[tuple[int, str, float]] = [(0, "", 0.0)] * attempts
    start = threading.Barrier(attempts + 1)
    begun = [0.0]

    def attempt(n: int) -> None:
        # http.client, not requests: a thousand clients in one Python process must cost the
        # two cores as little as possible, or the bench measures itself.
        host, port = urlsplit(bases[n % len(bases)]).netloc.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        body = json.dumps({"site": "stadtpark", "item_type": "rollator", "name": f"Besuch {n}",
                           "email": f"rush{n}@example.org", "start": f"{TOMORROW}T10:00",
                           "end": f"{TOMORROW}T12:00"})
        start.wait()
        try:
            connection.request("POST", "/api/v1/reservations", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            code = answer.get("code", "") if response.status != 201 else "booked"
            results[n] = (response.status, code, time.perf_counter() - begun[0])
        except Exception as error:  # noqa: BLE001 (counted as an error)
            results[n] = (-1, type(error).__name__, time.perf_counter() - begun[0])
        finally:
            connection.close()
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    begun[0] = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return results


def overlaps(url: str) -> tuple[int, int]:
    """Active reservations in the database, and pairs of them overlapping on one item."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as conn:
        active = conn.execute(text(
            "SELECT count(*) FROM reservation WHERE state IN ('booked', 'picked_up', 'overdue')")).scalar()
        pairs = conn.execute(text(
            "SELECT count(*) FROM reservation a JOIN reservation b ON a.item_id = b.item_id "
            "AND a.id < b.id AND a.start_at < b.end_at AND b.start_at < a.end_at "
            "WHERE a.state IN ('booked', 'picked_up', 'overdue') "
            "AND b.state IN ('booked', 'picked_up', 'overdue')")).scalar()
    engine.dispose()
    return active, pairs


def measure(attempts: int = 1000, items: int = 10, postgres: bool = True, instances: int = 2) -> dict:
    import logging
    folder = Path(tempfile.mkdtemp(prefix="bench-rush-"))
    logging.disable(logging.WARNING)
    try:
        url = prepare(folder, items, postgres)
    finally:
        logging.disable(logging.NOTSET)
    limits = {"LOCKER_LIMIT_BOOKING_PER_ADDRESS": "1000000 per hour",
              "LOCKER_ADDRESS_MAX_ACTIVE": "1000000"}
    servers = [Server(url, folder, **limits) for _ in range(instances)]
    try:
        results = rush([server.base for server in servers], attempts)
    finally:
        for server in servers:
            server.stop()
    active, pairs = overlaps(url)
    times = sorted(seconds for _, _, seconds in results)
    booked = sum(1 for status, _, _ in results if status == 201)
    refused = sum(1 for status, code, _ in results if status == 409 and code == "sold_out")
    return {"attempts": attempts, "items": items, "instances": instances,
            "database": "postgresql" if postgres else "sqlite", "booked": booked,
            "refused": refused, "errors": attempts - booked - refused,
            "other": sorted({f"{status} {code}" for status, code, _ in results
                             if status not in (201, 409)}),
            "active_in_database": active, "overlaps": pairs,
            "p50": stats.median(times), "p95": times[int(0.95 * (len(times) - 1))], "max": times[-1]}


def report(f: dict) -> str:
    met = (f["booked"] == f["items"] and f["refused"] == f["attempts"] - f["items"]
           and f["errors"] == 0 and f["overlaps"] == 0 and f["p95"] <= 2.0)
    return (f"{f['attempts']:,} simultaneous attempts for {f['items']} free items, "
            f"{f['instances']} gunicorn instances on one {f['database']} database:\n"
            f"  booked {f['booked']}, refused as sold out {f['refused']}, errors {f['errors']}"
            f"{' ' + ', '.join(f['other']) if f['other'] else ''}\n"
            f"  active reservations in the database {f['active_in_database']}, "
            f"overlapping pairs {f['overlaps']}\n"
            f"  answered after: median {f['p50']:.2f} s, p95 {f['p95']:.2f} s, slowest {f['max']:.2f} s\n"
            f"  goal (all right, p95 <= 2 s): {'met' if met else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.booking_rush",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = report(measure(args.attempts, args.items, postgres=not args.sqlite))
    print(text)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write(f"\n## Booking rush, {datetime.now():%Y-%m-%d %H:%M}\n\n"
                         f"`python -m bench.booking_rush --attempts {args.attempts} --items {args.items}"
                         f"{' --sqlite' if args.sqlite else ''} --record`\n\n```\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
