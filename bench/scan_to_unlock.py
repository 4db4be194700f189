"""Time from a scanner line's CR to the unlock frame's last byte on the board line.

    python -m bench.scan_to_unlock [--samples 200]

Runs the real controller against the web app (in-process, on 127.0.0.1), the board emulator
and the scanner emulator on ptys, with the production poll interval. A pty carries bytes
without baud-rate timing, so the frame's wire time at the line's baud rate is printed beside
the measurement and added for the estimate on a real line. Goal: median <= wire + 15 ms.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from werkzeug.serving import make_server

from hardware import family_a
from hardware.emulator import BoardEmulator, EmulatedBoard, ScannerEmulator


def start_site(folder: Path):
    from flask_migrate import upgrade

    from locker_app import create_app
    from locker_app.config import Config
    from locker_app.demo_data import seed
    from locker_app.extensions import db
    app = create_app(Config, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'site.sqlite'}",
                              "SIGNING_KEY_DIR": str(folder / "keys"),
                              "SECRET_KEY": secrets.token_hex(32)})
    with app.app_context():
        upgrade()
        token = seed(db.session, "bench-controller-token-000000000")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Stopped in a twentieth of a second, not the half second of the default.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return app, server, token


def book_now(app) -> tuple[str, int]:
    """A reservation from now: its code and its compartment's number."""
    from locker_app.extensions import db
    from locker_app.models import ItemType, Site
    from locker_app.services.booking import create_reservation
    now = datetime.now(timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    with app.test_request_context():
        reservation = create_reservation(
            db.session, site=db.session.scalars(db.select(Site)).one(),
            item_type=db.session.scalars(db.select(ItemType).where(ItemType.code == "rollator")).one(),
            start=now, end=now + timedelta(hours=2), name="Bench", email=None)
        return reservation.code, reservation.compartment.number


def door_seen(controller, number: int, closed: bool, timeout: float = 5.0) -> None:
    """Until the controller has seen the door open, or shut and its unlock ended (two
    readings agree): a pickup's code opens for the return only after that door was shut."""
    deadline = time.monotonic() + timeout
    while True:
        tracker = controller.board.doors.get(number)
        if tracker is not None and tracker.closed is closed and (
                not closed or tracker.pending is None):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the controller did not see door {number} "
                               f"{'shut' if closed else 'open'}")
        time.sleep(0.005)


def measure(samples: int, poll_interval: float) -> dict:
    import logging
    logging.disable(logging.WARNING)  # the web server's access log would drown the figures
    from controller.service import LockerController
    from controller.settings import Settings
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    app, server, token = start_site(folder)
    board = BoardEmulator([EmulatedBoard(1, 8)], pulse_seconds=0.005).start()
    scanner = ScannerEmulator()
    settings = Settings(server_url=f"http://127.0.0.1:{server.server_port}", token=token,
                        database=str(folder / "controller.sqlite"), board_port=board.port,
                        scanner_port=scanner.port, poll_interval=poll_interval,
                        scanner_debounce=0.0, sync_interval=60)
    controller = LockerController(settings).start()
    try:
        if not (controller.synced.wait(10) and controller.scanner_ready.wait(10)):
            raise RuntimeError("the controller did not start")
        latencies = []
        for n in range(samples):
            if n % 2 == 0:  # a pickup, then its return, then the next visitor's booking
                code, number = book_now(app)
            before = len(board.unlocks_received())
            # Alternate two spellings of the same code (URL and bare), as two visitors would.
            scanner.scan(code if n % 2 else f"http://127.0.0.1/r/{code}")
            sent = scanner.last_write_monotonic
            if not board.wait_for(lambda e, before=before: len(e.unlocks_received()) > before, timeout=5):
                raise RuntimeError(f"scan {n} opened nothing")
            frame = [f for f in board.frames() if f.direction == "rx" and f.data[0] == 0x8A][-1]
            latencies.append((frame.monotonic - sent) * 1000)
            # The visitor takes the item (or puts it back) and shuts the door; the next scan
            # comes somewhere in the poll cycle, as real visitors' do.
            door_seen(controller, number, closed=False)
            board.close_door(number)
            door_seen(controller, number, closed=True)
            time.sleep(0.02 + (n % 7) * poll_interval / 7)  # spread scans over the poll cycle
    finally:
        controller.stop()
        board.stop()
        scanner.close()
        server.shutdown()
    latencies.sort()
    wire = family_a.wire_seconds(5, 9600) * 1000
    median = statistics.median(latencies)
    return {"samples": len(latencies), "median_ms": median,
            "p95_ms": latencies[max(0, int(len(latencies) * 0.95) - 1)], "max_ms": latencies[-1],
            "wire_ms": wire, "estimate_ms": median + wire, "goal_ms": wire + 15}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan_to_unlock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    figures = measure(args.samples, args.poll_interval)
    print(f"scan (CR written) -> unlock frame received, {figures['samples']} scans, "
          f"door polling every {args.poll_interval * 1000:.0f} ms:")
    print(f"  measured on a pty:  median {figures['median_ms']:.2f} ms   95% {figures['p95_ms']:.2f} ms"
          f"   max {figures['max_ms']:.2f} ms")
    print(f"  wire time of the 5-byte unlock frame at 9600 baud: {figures['wire_ms']:.2f} ms")
    print(f"  estimate on a real line (median + wire): {figures['estimate_ms']:.2f} ms   "
          f"goal <= {figures['goal_ms']:.2f} ms: {'met' if figures['estimate_ms'] <= figures['goal_ms'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
