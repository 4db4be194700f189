"""The serial soak: scans at the locker through a faulty line, with power cuts.

    python -m bench.serial_soak [--operations 10000] [--family A|B] [--seed N] [--record]

The real controller (a separate process, so a power cut is a SIGKILL) drives the board
emulator on a pty and reads the scanner emulator on another, against the web app on
127.0.0.1. Replies lose each byte with probability ``--byte-errors`` (default 1 %) and
whole replies with ``--drops`` (5 %); the board loses power twice and the controller once.
One operation is one scan and what follows it: eight visitors pick up and return their
items (the door springs open, the visitor shuts it again), mixed with unreadable lines (10 %)
and forged codes (10 %).

Checked and printed: no door opened that no scan asked for, no unlock on the wire without
its stored ``unlock_sent``, every valid scan opened or was refused with a reason, a door that
did not open was reported with a reason, and every event of the controller reached the
server exactly once. ``--record`` appends the figures to ``bench/RESULTS.md``. The test
suite runs a short version (tests/test_serial_soak.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sqlite3
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hardware.emulator import BoardEmulator, EmulatedBoard, Faults, ScannerEmulator

ROOT = Path(__file__).resolve().parent.parent
OUTCOME_WAIT = 10.0  # seconds for the controller to record what a scan did


@dataclass
class Visitor:
    item_type: str
    reservation_id: int | None = None
    code: str = ""
    compartment: int = 0
    phase: str = "book"  # book -> pickup -> return -> book ...


@dataclass
class SoakResult:
    family: str
    operations: int = 0
    valid_scans: int = 0
    opened: int = 0
    pickups: int = 0
    returns: int = 0
    refused: Counter = field(default_factory=Counter)  # reason -> count, valid scans
    unreadable_refused: int = 0
    forged_refused: int = 0
    doors_not_opened: Counter = field(default_factory=Counter)  # why -> count
    without_outcome: int = 0  # a scan nothing was recorded for (must be 0 outside a cut)
    lost_in_controller_cut: int = 0  # a scan the killed controller never read (scanned again)
    wrong_doors: int = 0
    unlocks_without_event: int = 0
    board_cuts: int = 0
    controller_cuts: int = 0
    events_local: int = 0
    events_on_server: int = 0
    events_lost: int = 0
    events_twice: int = 0
    requests: int = 0
    replies_dropped: int = 0
    replies_garbled: int = 0
    event_kinds: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        not_opened = ", ".join(f"{k} {v}" for k, v in sorted(self.doors_not_opened.items())) or "none"
        return [
            f"family {self.family}: {self.operations} operations in {self.seconds:.0f} s "
            f"({self.seconds / max(1, self.operations) * 1000:.0f} ms each)",
            f"  line: {self.requests} requests, {self.replies_dropped} replies dropped, "
            f"{self.replies_garbled} garbled; board power cuts {self.board_cuts}, "
            f"controller power cuts {self.controller_cuts}",
            f"  valid scans {self.valid_scans}: opened {self.opened} ({self.pickups} pickups, "
            f"{self.returns} returns), refused with a reason: {refused}",
            f"  doors that did not open, with the reason reported: {not_opened}",
            f"  unreadable lines refused {self.unreadable_refused}, forged codes refused "
            f"{self.forged_refused}",
            f"  scans with no outcome {self.without_outcome}; lost in the controller's power cut "
            f"and scanned again {self.lost_in_controller_cut}",
            f"  wrong doors {self.wrong_doors}; unlock frames without a stored unlock_sent "
            f"{self.unlocks_without_event}",
            f"  events: {self.events_local} stored by the controller, {self.events_on_server} on the "
            f"server, lost {self.events_lost}, twice {self.events_twice}",
            "  result: " + ("PASSED" if self.passed else "FAILED: " + "; ".join(self.problems)),
        ]


class Outbox:
    """The controller's outbox, read from its SQLite file (WAL: readers never block it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0

    def rows(self, after: int = 0) -> list[dict]:
        if not self.path.exists():
            return []
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
                cursor = db.execute("SELECT seq, idempotency_key, kind, reservation_id, compartment,"
                                    " detail, sent_at FROM outbox WHERE seq > ? ORDER BY seq", (after,))
                names = [c[0] for c in cursor.description]
                rows = [dict(zip(names, row)) for row in cursor]
        except sqlite3.OperationalError:
            return []  # the file is being created
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    def local_reservation(self, rid: int) -> bool:
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT 1 FROM reservation WHERE id = ?", (rid,)).fetchone() is not None
        except sqlite3.OperationalError:
            return False

    def wait(self, match, timeout: float = OUTCOME_WAIT, after: int | None = None) -> dict | None:
        """The first event after ``after`` (default: the cursor) that ``match`` accepts."""
        start = self.seq if after is None else after
        deadline = time.monotonic() + timeout
        while True:
            for row in self.rows(start):
                if match(row):
                    return row
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class SerialSoak:
    def __init__(self, operations: int, *, family: str = "A", seed: int = 20261122,
                 byte_errors: float = 0.01, drops: float = 0.05, board_cuts: int = 2,
                 controller_cuts: int = 1, folder: Path | None = None, progress=None) -> None:
        self.operations = operations
        self.family = family.upper()
        self.rng = random.Random(seed)
        self.folder = folder or Path(tempfile.mkdtemp(prefix="serial-soak-"))
        self.progress = progress
        self.result = SoakResult(self.family)
        self.faults = Faults(byte_error_rate=byte_errors, drop_probability=drops)
        # Spread the power cuts over the run, not in its first or last tenth.
        spread = lambda n, offset: sorted({max(1, int(operations * (i + offset) / (n + 1)))  # noqa: E731
                                           for i in range(1, n + 1)})
        self.board_cut_at = set(spread(board_cuts, 0.0))
        self.controller_cut_at = set(spread(controller_cuts, 0.3)) - self.board_cut_at
        self.board_off_until = -1
        self.process: subprocess.Popen | None = None
        self.scanned_compartments: Counter = Counter()

    # Set-up ----------------------------------------------------------------------------------
    def _start_site(self):
        from bench.scan_to_unlock import start_site
        from locker_app.extensions import db
        from locker_app.models import Cabinet
        app, server, self.token = start_site(self.folder)
        if self.family == "B":
            with app.app_context():
                cabinet = db.session.get(Cabinet, 1)
                cabinet.board_family = "B"
                for compartment in cabinet.compartments:
                    compartment.board_address, compartment.lock_number = 0, compartment.number
                db.session.commit()
        return app, server

    def _config(self, server_url: str) -> Path:
        config = self.folder / "controller.toml"
        config.write_text(
            "[controller]\n"
            f'server_url = "{server_url}"\ntoken = "{self.token}"\n'
            f'database = "{self.folder / "controller.sqlite"}"\n'
            f'board_port = "{self.board.port}"\nboard_family = "{self.family}"\n'
            f'scanner_port = "{self.scanner.port}"\n'
            "poll_interval = 0.05\nsync_interval = 0.3\nresponse_timeout = 0.2\n"
            "recovery_quiet = 0.05\nmax_backoff = 0.4\nscanner_debounce = 0.0\n"
            "unlock_open_timeout = 1.0\ncommand_wait = 1.0\n")
        return config

    def _start_controller(self) -> None:
        seen = self.board.requests_seen
        log = open(self.folder / "controller.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controller", "--config", str(self.config_path)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        # Running once it polls the board (the scanner port opens at the same moment); while
        # the board has no power, once its outbox file is there.
        if not _wait(lambda: self.process.poll() is not None or self.board.requests_seen >= seen + 2,
                     30) or self.process.poll() is not None:
            raise RuntimeError("the controller did not start: see " + str(self.folder / "controller.log"))

    # Visitors ---------------------------------------------------------------------------------
    def _book(self, visitor: Visitor) -> bool:
        from locker_app.extensions import db
        from locker_app.models import ItemType, Reservation, Site
        from locker_app.services.booking import create_reservation
        now = datetime.now(timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
        with self.app.test_request_context():
            if visitor.reservation_id is not None:
                previous = db.session.get(Reservation, visitor.reservation_id)
                db.session.refresh(previous)
                if previous.state != "returned":
                    return False  # the return has not reached the server yet
            reservation = create_reservation(
                db.session, site=db.session.scalars(db.select(Site)).one(),
                item_type=db.session.scalars(db.select(ItemType).where(
                    ItemType.code == visitor.item_type)).one(),
                start=now, end=now + timedelta(hours=3), name="Soak", email=None)
            visitor.reservation_id, visitor.code = reservation.id, reservation.code
            visitor.compartment = reservation.compartment.number
            db.session.remove()
        visitor.phase = "pickup"
        return True

    def _ready(self, visitor: Visitor) -> bool:
        if visitor.phase == "book" and not self._book(visitor):
            return False
        return self.outbox.local_reservation(visitor.reservation_id)

    def _lock_of(self, compartment: int) -> tuple[int, int]:
        return (0, compartment) if self.family == "B" else (1, compartment)

    def _valid_scan(self, visitor: Visitor, cut_controller: bool) -> None:
        result, outbox = self.result, self.outbox
        board, lock = self._lock_of(visitor.compartment)
        start = outbox.seq
        result.valid_scans += 1
        self.scanned_compartments[visitor.compartment] += 1
        pulses_before = len(self.board.pulses()[board])
        self.scanner.scan(visitor.code)
        if cut_controller:
            time.sleep(self.rng.uniform(0.0, 0.15))  # the random moment of the power cut
            self.process.kill()
            self.process.wait(10)
            result.controller_cuts += 1
            self._start_controller()
        rid = visitor.reservation_id
        what_it_did = lambda e: e["reservation_id"] == rid and e["kind"] in (  # noqa: E731
            "unlock_sent", "scan_refused")
        outcome = outbox.wait(what_it_did, after=start)
        if outcome is None and cut_controller:
            result.lost_in_controller_cut += 1
            self.scanner.scan(visitor.code)  # nothing happened: the visitor scans again
            outcome = outbox.wait(what_it_did, after=start)
        if outcome is None:
            result.without_outcome += 1
            result.problems.append(f"no outcome for a scan of reservation {rid}")
            return
        if outcome["kind"] == "scan_refused":
            result.refused[outcome["detail"].get("reason", "?")] += 1
            return
        if outcome["compartment"] != visitor.compartment:
            result.wrong_doors += 1
            result.problems.append(f"reservation {rid} unlocked compartment {outcome['compartment']}")
        # The visitor goes by the door: when it springs open, they use it, whatever the
        # controller knows yet; when it stays shut, the controller must say why.
        pulses = lambda: len(self.board.pulses()[board])  # noqa: E731
        why_not = lambda e: e["reservation_id"] == rid and (  # noqa: E731
            e["kind"] == "unlock_failed"
            or (e["kind"] == "unlock_unanswered" and e["detail"].get("why") == "board not answering"))
        deadline = time.monotonic() + OUTCOME_WAIT + 5
        reason = None
        while pulses() <= pulses_before and time.monotonic() < deadline:
            reason = outbox.wait(why_not, after=outcome["seq"], timeout=0.02)
            if reason is not None:
                break
        if pulses() <= pulses_before:
            if reason is None:
                result.without_outcome += 1
                result.problems.append(f"reservation {rid}: the door stayed shut without a reason")
            else:
                result.doors_not_opened[reason["detail"].get("why", "?")] += 1
            return  # the visitor scans again later
        opened = outbox.wait(lambda e: e["reservation_id"] == rid and e["kind"] == "door_opened",
                             after=outcome["seq"], timeout=OUTCOME_WAIT + 5)
        if opened is None:
            result.problems.append(f"reservation {rid}: the door opened, door_opened never recorded")
            return
        result.opened += 1
        # The visitor takes the item out (or puts it back) and shuts the door.
        if visitor.phase == "pickup":
            self.board.take_item(lock, board)
        else:
            self.board.put_item(lock, board)
        self.board.close_door(lock, board)
        closed = outbox.wait(lambda e: e["compartment"] == visitor.compartment
                             and e["kind"] == "door_closed", after=opened["seq"])
        if closed is None:
            result.problems.append(f"compartment {visitor.compartment}: door_closed never recorded")
            return
        if visitor.phase == "pickup":
            result.pickups += 1
            visitor.phase = "return"
        else:
            result.returns += 1
            visitor.phase = "book"

    def _unreadable(self) -> None:
        start = self.outbox.seq
        alphabet = string.ascii_letters + string.digits + " -_/:.?=&%"
        junk = "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 60))).strip() or "x"
        self.scanner.scan(junk)
        if self.outbox.wait(lambda e: e["kind"] == "scan_refused" and e["reservation_id"] is None,
                            after=start) is None:
            self.result.without_outcome += 1
            self.result.problems.append(f"no outcome for the unreadable line {junk!r}")
        else:
            self.result.unreadable_refused += 1

    def _forged(self, visitor: Visitor) -> None:
        start = self.outbox.seq
        code = visitor.code
        # Not the last character: its spare bits may not change the decoded bytes.
        position = self.rng.randrange(len(code) // 2, len(code) - 1)
        replacement = self.rng.choice([c for c in "ABCDEFGHJKMNPQRSTVWXYZ0123456789" if c != code[position]])
        forged = code[:position] + replacement + code[position + 1:]
        self.scanner.scan(forged)
        refused = self.outbox.wait(lambda e: e["kind"] in ("scan_refused", "unlock_sent"), after=start)
        if refused is None:
            self.result.without_outcome += 1
            self.result.problems.append("no outcome for a forged code")
        elif refused["kind"] == "unlock_sent":
            self.result.wrong_doors += 1
            self.result.problems.append(f"a forged code opened compartment {refused['compartment']}")
        else:
            self.result.forged_refused += 1

    # The run ----------------------------------------------------------------------------------
    def run(self) -> SoakResult:
        started = time.monotonic()
        self.app, self.server = self._start_site()
        self.board = BoardEmulator([EmulatedBoard(0 if self.family == "B" else 1,
                                                  16 if self.family == "B" else 8)],
                                   family=self.family, pulse_seconds=0.01, faults=self.faults,
                                   seed=self.rng.randrange(2 ** 32), history=50).start()
        self.scanner = ScannerEmulator()
        self.config_path = self._config(f"http://127.0.0.1:{self.server.server_port}")
        self.outbox = Outbox(self.folder / "controller.sqlite")
        visitors = [Visitor("rollator") for _ in range(4)] + [Visitor("bollerwagen") for _ in range(4)]
        try:
            self._start_controller()
            for n in range(1, self.operations + 1):
                self._operation(n, visitors)
                self.result.operations = n
                if self.progress:
                    self.progress(n, self.result)
            self.board.power_on()
            self._settle()
        finally:
            if self.process and self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self.board.stop()
            self.scanner.close()
            self.server.shutdown()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _operation(self, n: int, visitors: list[Visitor]) -> None:
        if n in self.board_cut_at:
            self.board.power_off()
            self.result.board_cuts += 1
            self.board_off_until = n + 5
        elif n == self.board_off_until:
            self.board.power_on()
        roll = self.rng.random()
        booked = [v for v in visitors if v.code]
        if roll < 0.1:
            self._unreadable()
        elif roll < 0.2 and booked:
            self._forged(self.rng.choice(booked))
        else:
            candidates = visitors[:]
            self.rng.shuffle(candidates)
            deadline = time.monotonic() + 30
            while True:
                ready = next((v for v in candidates if self._ready(v)), None)
                if ready is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)  # returns on their way to the server, bookings to the controller
            if ready is None:
                self.result.problems.append("no visitor could scan for 30 s (sync stalled)")
                self._unreadable()
            else:
                # A power cut falls on the first valid scan at or after its planned moment.
                due = [at for at in self.controller_cut_at if at <= n]
                if due:
                    self.controller_cut_at -= set(due)
                self._valid_scan(ready, cut_controller=bool(due))
        rows = self.outbox.rows(self.outbox.seq)
        if rows:
            self.outbox.seq = rows[-1]["seq"]

    def _settle(self) -> None:
        """Wait until every stored event is on the server, then compare."""
        from locker_app.extensions import db
        from locker_app.models import ControllerEvent
        result = self.result

        def server_keys() -> list[str]:
            with self.app.app_context():
                keys = list(db.session.scalars(db.select(ControllerEvent.idempotency_key)))
                db.session.remove()
                return keys

        def settled():
            local = self.outbox.rows()
            return all(e["sent_at"] for e in local) and len(server_keys()) >= len(local)
        if not _wait(settled, 60):
            result.problems.append("the outbox did not empty within 60 s")
        local = self.outbox.rows()
        on_server = server_keys()
        result.events_local, result.events_on_server = len(local), len(on_server)
        local_keys = {e["idempotency_key"] for e in local}
        result.events_lost = len(local_keys - set(on_server))
        result.events_twice = len(on_server) - len(set(on_server))
        result.event_kinds = Counter(e["kind"] for e in local)
        if result.events_lost or result.events_twice:
            result.problems.append("events lost or stored twice")
        # Every unlock frame on the wire has its stored unlock_sent (never a pulse sent again
        # on its own), and every pulse was asked for by a valid scan of that compartment.
        decode = self.board.bus.decode_request
        on_wire = Counter()
        for frame in self.board.unlocks_received():
            request = decode(frame)[0]
            on_wire[request.lock] += 1
        stored = Counter(e["compartment"] for e in local if e["kind"] == "unlock_sent")
        result.unlocks_without_event = sum(max(0, on_wire[c] - stored[c]) for c in on_wire)
        pulsed = Counter(lock for locks in self.board.pulses().values() for lock in locks)
        wrong = sum(max(0, pulsed[c] - self.scanned_compartments[c]) for c in pulsed)
        result.wrong_doors += wrong
        if result.unlocks_without_event or wrong:
            result.problems.append("unlocks without a stored event, or pulses no scan asked for")
        if result.without_outcome:
            result.problems.append(f"{result.without_outcome} scans without an outcome")
        result.requests = self.board.requests_seen
        result.replies_dropped = self.board.replies_dropped
        result.replies_garbled = self.board.replies_garbled


def record(result: SoakResult, argv: list[str]) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    if not path.exists():
        path.write_text("# Benchmark and soak results\n\nAppended by the commands under `bench/`"
                        " with `--record`; newest last.\n")
    with path.open("a") as handle:
        handle.write(f"\n## Serial soak, {datetime.now().strftime('%Y-%m-%d %H:%M')}\n\n"
                     f"`python -m bench.serial_soak {' '.join(argv)}`\n\n```\n"
                     + "\n".join(result.lines()) + "\n```\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.serial_soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--family", choices=["A", "B"], default="A")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--byte-errors", type=float, default=0.01)
    parser.add_argument("--drops", type=float, default=0.05)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the web server's access log would drown the figures
    every = max(1, args.operations // 20)

    def progress(n: int, result: SoakResult) -> None:
        if n % every == 0 or n == args.operations:
            print(f"  {n}/{args.operations} operations, {result.opened} doors opened, "
                  f"{len(result.problems)} problems", flush=True)
    soak = SerialSoak(args.operations, family=args.family, seed=args.seed,
                      byte_errors=args.byte_errors, drops=args.drops, progress=progress)
    print(f"serial soak: {args.operations} operations, family {args.family}, working in {soak.folder}",
          flush=True)
    result = soak.run()
    print("\n".join(result.lines()))
    if args.record:
        record(result, argv)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
