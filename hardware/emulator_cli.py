"""``python -m hardware.emulator``: emulated boards and scanner on ptys, with a small page
and commands on standard input."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from hardware.emulator import BoardEmulator, EmulatedBoard, ScannerEmulator
from hardware.emulator_web import EmulatorPage

HELP = "commands: scan <code> | close <lock> [board] | open <lock> [board] | doors | quit"


def run_command(line: str, board: BoardEmulator, scanner: ScannerEmulator) -> str:
    words = line.split()
    if not words:
        return ""
    command, args = words[0].lower(), words[1:]
    try:
        if command == "scan" and args:
            scanner.scan(" ".join(args))
            return "scanned"
        if command in ("close", "open") and args:
            lock = int(args[0])
            address = int(args[1]) if len(args) > 1 else None
            (board.close_door if command == "close" else board.open_door)(lock, address)
            return f"door {lock} {'closed' if command == 'close' else 'open'}"
        if command == "doors":
            return "  ".join(f"{b.address}/{lock}:{'closed' if closed else 'OPEN'}"
                             for b in board.boards.values() for lock, closed in sorted(b.doors.items()))
    except (ValueError, KeyError) as error:
        return f"not possible: {error}"
    return HELP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardware.emulator",
                                     description="Emulated family A lock boards on a pseudo-terminal.")
    parser.add_argument("--boards", default="1", help="board addresses on the bus, e.g. 1,2")
    parser.add_argument("--channels", type=int, default=8, help="locks per board")
    parser.add_argument("--pulse", type=float, default=0.5, help="solenoid pulse in seconds")
    parser.add_argument("--web-port", type=int, default=None, help="serve the locker page here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        addresses = [int(a) for a in args.boards.split(",")]
    except ValueError:
        parser.error("--boards takes numbers separated by commas")
    board = BoardEmulator([EmulatedBoard(a, args.channels) for a in addresses],
                          pulse_seconds=args.pulse).start()
    scanner = ScannerEmulator()
    page = EmulatorPage(board, scanner, port=args.web_port).start() if args.web_port else None
    print(f"board bus port: {board.port}")
    print(f"scanner port:   {scanner.port}")
    if page:
        print(f"locker page:    {page.url}")
    print(HELP, flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        if sys.stdin.isatty():
            for line in sys.stdin:
                if line.strip().lower() in ("quit", "exit"):
                    break
                print(run_command(line, board, scanner), flush=True)
        else:
            stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if page:
            page.stop()
        board.stop()
        scanner.close()
    return 0
