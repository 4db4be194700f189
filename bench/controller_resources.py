"""Controller memory and CPU: idle with two boards polled every 500 ms, then serving a
scan every second; with both display outputs on (the character display on a pty and the
page for the cabinet's screen, asked once a second as its kiosk browser would).

    python -m bench.controller_resources [--seconds 30]

The controller runs as its own process (as in the park); the web app and the emulated
boards run in this one. Figures come from /proc: resident memory (VmRSS, and the peak
VmHWM) and CPU time over wall time. Goal: <= 40 MB RSS, <= 1 % of one core idle.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scan_to_unlock import book_now, start_site
from hardware.emulator import BoardEmulator, DisplayEmulator, EmulatedBoard, ScannerEmulator

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def proc_figures(pid: int) -> tuple[float, float, float]:
    """(cpu seconds, rss MB, peak rss MB) of a process."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    memory = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                memory[name] = int(value.split()[0]) / 1024
    return cpu, memory["VmRSS"], memory["VmHWM"]


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ask_screen(port: int) -> None:
    import urllib.request
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/?seen=0", timeout=1).read()
    except OSError:
        pass  # not up yet: the next second asks again


def two_boards(app) -> None:
    from locker_app.extensions import db
    from locker_app.models import Compartment
    with app.app_context():
        for compartment in db.session.scalars(db.select(Compartment)):
            if compartment.number > 4:
                compartment.board_address, compartment.lock_number = 2, compartment.number - 4
        db.session.commit()


def measure(seconds: float) -> dict:
    import logging
    logging.disable(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    app, server, token = start_site(folder)
    two_boards(app)
    board = BoardEmulator([EmulatedBoard(1, 8), EmulatedBoard(2, 8)], pulse_seconds=0.005).start()
    scanner, display = ScannerEmulator(), DisplayEmulator()
    screen_port = _free_port()
    config = folder / "controller.toml"
    config.write_text(
        "[controller]\n"
        f'server_url = "http://127.0.0.1:{server.server_port}"\ntoken = "{token}"\n'
        f'database = "{folder / "controller.sqlite"}"\nboard_port = "{board.port}"\n'
        f'scanner_port = "{scanner.port}"\npoll_interval = 0.5\nsync_interval = 10\n'
        "scanner_debounce = 0.0\n"
        f'display_port = "{display.port}"\ndisplay_http = "127.0.0.1:{screen_port}"\n')
    process = subprocess.Popen([sys.executable, "-m", "controller", "--config", str(config),
                                "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.DEVNULL)
    figures = {}
    try:
        deadline = time.monotonic() + 20
        while board.requests_seen < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        code, _compartment = book_now(app)
        time.sleep(2)  # let the start-up settle (imports, first sync) before measuring
        for phase in ("idle", "scan every second"):
            cpu0, _, _ = proc_figures(process.pid)
            started = time.monotonic()
            polls0 = board.requests_seen
            while time.monotonic() - started < seconds:
                if phase != "idle":
                    scanner.scan(code if int(time.monotonic()) % 2 else f"x/r/{code}")
                _ask_screen(screen_port)  # the kiosk browser's refresh
                time.sleep(1.0)
            cpu1, rss, peak = proc_figures(process.pid)
            elapsed = time.monotonic() - started
            figures[phase] = {"cpu_percent": 100 * (cpu1 - cpu0) / elapsed, "rss_mb": rss,
                              "peak_mb": peak, "requests": board.requests_seen - polls0,
                              "seconds": elapsed}
        figures["unlocks"] = len(board.unlocks_received())
        figures["display_messages"] = display.frames
    finally:
        process.terminate()
        process.wait(10)
        board.stop()
        scanner.close()
        display.close()
        server.shutdown()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.controller_resources",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each phase")
    args = parser.parse_args(argv)
    figures = measure(args.seconds)
    for phase in ("idle", "scan every second"):
        f = figures[phase]
        print(f"{phase:18s} CPU {f['cpu_percent']:.2f} % of one core, RSS {f['rss_mb']:.1f} MB "
              f"(peak {f['peak_mb']:.1f} MB), {f['requests']} board requests in {f['seconds']:.0f} s")
    idle = figures["idle"]
    print(f"goal idle: <= 1 % CPU ({'met' if idle['cpu_percent'] <= 1 else 'MISSED'}), "
          f"<= 40 MB RSS ({'met' if max(f['peak_mb'] for k, f in figures.items() if isinstance(f, dict)) <= 40 else 'MISSED'}); "
          f"{figures['unlocks']} unlocks served, {figures['display_messages']} display messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
