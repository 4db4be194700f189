"""A rush for the last items: many visitors book the same window at the same moment, through
two gunicorn instances on one database (as two web hosts would).

    python -m bench.booking_rush [--attempts 1000] [--items 10] [--runs 5]
        [--via api|form|both] [--database sqlite|postgresql|both] [--before CHECKOUT]
        [--record]

Goal (issues 11 and 31): with 1,000 attempts for 10 free items, 10 bookings and 990 clear
refusals ("sold out"), no errors, no overlapping reservations, and an answer within 2 s
through the API (3 s through the booking form) for 95 % of the visitors. Each attempt is
timed from the common start; through the form, each visitor fetched it before (not timed).
``--before`` runs another checkout's code too (a worktree of an earlier commit), each of
its runs right before ours, so that both meet the same minute of the machine. PostgreSQL: a database of its
own on LOCKER_BENCH_POSTGRES_URL's server, dropped at the end; ``--sqlite`` a file instead.

Both instances run on this one machine, as two hosts would on theirs: each gets the
processes config/gunicorn.conf.py gives its share of the cores (2 per core), not those of
the whole machine, or the machine would run twice the processes a host runs.
LOCKER_WORKERS overrides that. The clients share the machine too, so they are one event
loop. The time a run takes varies widely on a shared machine (the same 1,000 answers cost
the web processes 1.6 to 4.1 s of CPU from one run to the next): ``--runs`` repeats the
rush on a fresh database and judges the median p95.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics as stats
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import make_url

from bench import drop_database, record
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


def rush(bases: list[str], attempts: int, via: str = "api") -> list[tuple[int, str, float]]:
    """Every attempt on its own connection, all released together; (status, code, seconds)
    each, timed from the common start. ``via`` "form": each visitor has fetched the booking
    form before (its cookie, its CSRF token and one-time key; not timed) and sends it."""
    return asyncio.run(_rush(bases, attempts, via))


async def _exchange(host: str, port: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a connection of its own: (status, headers, body)."""
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers.setdefault(name.strip().lower(), value.strip())
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return int(lines[0].split()[1]), headers, body
    finally:
        writer.close()


def _api_request(host: str, port: str, n: int) -> bytes:
    body = json.dumps({"site": "stadtpark", "item_type": "rollator", "name": f"Besuch {n}",
                       "email": f"rush{n}@example.org", "start": f"{TOMORROW}T10:00",
                       "end": f"{TOMORROW}T12:00"}).encode()
    return (f"POST /api/v1/reservations HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _form_request(host: str, port: str, n: int) -> bytes:
    """The booking form as a visitor sends it, after fetching it (its cookie, its CSRF
    token and its one-time key)."""
    path = "/s/stadtpark/reserve/rollator"
    status, headers, page = await _exchange(host, port, (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").encode())
    if status != 200:
        raise RuntimeError(f"the form answered {status}")
    hidden = dict(re.findall(rb'name="(csrf_token|booking_key)"[^>]*value="([^"]+)"', page))
    fields = urlencode({"csrf_token": hidden[b"csrf_token"].decode(),
                        "booking_key": hidden[b"booking_key"].decode(),
                        "date": str(TOMORROW), "start": "10:00", "end_date": str(TOMORROW),
                        "end": "12:00", "name": f"Besuch {n}",
                        "email": f"rush{n}@example.org"}).encode()
    cookie = headers["set-cookie"].split(";", 1)[0]
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(fields)}\r\n\r\n").encode() + fields


def _outcome(status: int, body: bytes, via: str) -> str:
    """What the answer says: "booked", "sold_out", or the API's error code."""
    if via == "form":
        if status == 302:
            return "booked"
        return "sold_out" if status == 409 else f"page {status}"
    return "booked" if status == 201 else json.loads(body).get("code", "")


async def _rush(bases: list[str], attempts: int, via: str) -> list[tuple[int, str, float]]:
    # One event loop, not a thread per attempt: the thousand clients share the two cores
    # with the servers, and a thread each cost them 1.0 s of CPU (0.6 s this way), so the
    # bench measured itself.
    gate, all_ready = asyncio.Event(), asyncio.Event()
    begun, waiting = [0.0], [0]
    fetching = asyncio.Semaphore(50)  # the forms are fetched before, 50 at a time

    async def at_the_gate() -> None:
        waiting[0] += 1
        if waiting[0] == attempts:
            all_ready.set()
        await gate.wait()

    async def attempt(n: int) -> tuple[int, str, float]:
        host, port = urlsplit(bases[n % len(bases)]).netloc.split(":")
        try:
            if via == "form":
                async with fetching:
                    async with asyncio.timeout(60):
                        request = await _form_request(host, port, n)
            else:
                request = _api_request(host, port, n)
        except Exception as error:  # noqa: BLE001 (counted as an error)
            await at_the_gate()
            return -1, f"form {type(error).__name__}", 0.0
        await at_the_gate()
        try:
            async with asyncio.timeout(60):
                status, _, body = await _exchange(host, port, request)
            return status, _outcome(status, body, via), time.perf_counter() - begun[0]
        except Exception as error:  # noqa: BLE001 (counted as an error)
            return -1, type(error).__name__, time.perf_counter() - begun[0]

    tasks = [asyncio.create_task(attempt(n)) for n in range(attempts)]
    await all_ready.wait()  # every attempt waits at the gate
    begun[0] = time.perf_counter()
    gate.set()
    return list(await asyncio.gather(*tasks))


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


GOAL_P95 = {"api": 2.0, "form": 3.0}  # seconds (issue 31)


def measure(attempts: int = 1000, items: int = 10, postgres: bool = True, instances: int = 2,
            via: str = "api", code: Path = ROOT) -> dict:
    """One rush on a fresh database. ``code``: the checkout whose web app serves it (another
    one, e.g. a worktree of an earlier commit, to compare)."""
    import logging
    folder = Path(tempfile.mkdtemp(prefix="bench-rush-"))
    logging.disable(logging.WARNING)
    try:
        url = prepare(folder, items, postgres)
    finally:
        logging.disable(logging.NOTSET)
    limits = {"LOCKER_LIMIT_BOOKING_PER_ADDRESS": "1000000 per hour",
              "LOCKER_ADDRESS_MAX_ACTIVE": "1000000"}
    workers = os.environ.get("LOCKER_WORKERS") or str(max(1, 2 * (os.cpu_count() or 1) // instances))
    threads = os.environ.get("LOCKER_THREADS") or "2"
    try:
        servers = [Server(url, folder, code=code, LOCKER_WORKERS=workers,
                          LOCKER_THREADS=threads, **limits) for _ in range(instances)]
        try:
            results = rush([server.base for server in servers], attempts, via)
        finally:
            for server in servers:
                server.stop()
        active, pairs = overlaps(url)
    finally:
        if postgres:
            drop_database(make_url(url).database)
    times = sorted(seconds for _, _, seconds in results)
    booked = sum(1 for _, outcome, _ in results if outcome == "booked")
    refused = sum(1 for _, outcome, _ in results if outcome == "sold_out")
    return {"attempts": attempts, "items": items, "instances": instances,
            "workers": int(workers), "threads": int(threads), "via": via,
            "code": "" if code == ROOT else str(code),
            "database": "postgresql" if postgres else "sqlite", "booked": booked,
            "refused": refused, "errors": attempts - booked - refused,
            "other": sorted({f"{status} {outcome}" for status, outcome, _ in results
                             if outcome not in ("booked", "sold_out")}),
            "active_in_database": active, "overlaps": pairs,
            "p50": stats.median(times), "p95": times[int(0.95 * (len(times) - 1))], "max": times[-1]}


def all_right(f: dict) -> bool:
    return (f["booked"] == f["items"] and f["refused"] == f["attempts"] - f["items"]
            and f["errors"] == 0 and f["overlaps"] == 0)


def report(f: dict) -> str:
    goal = GOAL_P95[f["via"]]
    met = all_right(f) and f["p95"] <= goal
    served = f" (served by {f['code']})" if f["code"] else ""
    return (f"{f['attempts']:,} simultaneous attempts through the {f['via']} for {f['items']} "
            f"free items, {f['instances']} gunicorn instances ({f['workers']} processes x "
            f"{f['threads']} threads each) on one {f['database']} database{served}:\n"
            f"  booked {f['booked']}, refused as sold out {f['refused']}, errors {f['errors']}"
            f"{' ' + ', '.join(f['other']) if f['other'] else ''}\n"
            f"  active reservations in the database {f['active_in_database']}, "
            f"overlapping pairs {f['overlaps']}\n"
            f"  answered after: median {f['p50']:.2f} s, p95 {f['p95']:.2f} s, slowest {f['max']:.2f} s\n"
            f"  goal (all right, p95 <= {goal:g} s): {'met' if met else 'MISSED'}")


def summary(runs: list[dict]) -> str:
    p95 = sorted(f["p95"] for f in runs)
    median = stats.median(p95)
    goal = GOAL_P95[runs[0]["via"]]
    met = all(all_right(f) for f in runs) and median <= goal
    served = f", served by {runs[0]['code']}" if runs[0]["code"] else ""
    return (f"{runs[0]['via']} on {runs[0]['database']}{served}, over {len(runs)} runs: "
            f"p95 median {median:.2f} s ({p95[0]:.2f} to {p95[-1]:.2f}), "
            f"all right in {sum(all_right(f) for f in runs)} of {len(runs)}\n"
            f"  goal (all right every time, median p95 <= {goal:g} s): {'met' if met else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.booking_rush",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1, help="repeat, judge the median p95")
    parser.add_argument("--via", choices=("api", "form", "both"), default="api")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="postgresql")
    parser.add_argument("--sqlite", action="store_true", help="the same as --database sqlite")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also run the code of this checkout, each run right before ours")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.database == "both" else \
        ["sqlite" if args.sqlite else args.database]
    ways = ["api", "form"] if args.via == "both" else [args.via]
    codes = [args.before.resolve(), ROOT] if args.before else [ROOT]
    runs: dict[tuple, list[dict]] = {}
    lines = []
    for n in range(args.runs):
        for database in databases:
            for via in ways:
                for code in codes:  # interleaved: the earlier code, then ours, in turn
                    f = measure(args.attempts, args.items, postgres=database == "postgresql",
                                via=via, code=code)
                    runs.setdefault((database, via, code), []).append(f)
                    lines.append((f"run {n + 1}: " if args.runs > 1 else "") + report(f))
                    print(lines[-1], flush=True)
    if args.runs > 1:
        for kept in runs.values():
            lines.append(summary(kept))
            print(lines[-1])
    if args.record:
        command = " ".join(["python -m bench.booking_rush", *(argv if argv is not None else sys.argv[1:])])
        record("Booking rush", command, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
