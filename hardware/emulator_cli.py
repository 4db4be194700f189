"""``python -m hardware.emulator``: emulated boards and scanner on ptys, with a small page
and commands on standard input."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from hardware.emulator import (BoardEmulator, DisplayEmulator, EmulatedBoard, ScannerEmulator,
                               faults_from_args)
from hardware.emulator_web import EmulatorPage

HELP = ("commands: scan <code> | close|open|force|put|take|stick|unstick|bounce <lock> [board] | "
        "power off|on | silent on|off | drop|corrupt|unsolicited <p> | delay <s> | doors | quit")
DOOR_ACTIONS = {
    "close": lambda e, lock, board: e.close_door(lock, board),
    "open": lambda e, lock, board: e.open_door(lock, board),
    "force": lambda e, lock, board: e.force_door(lock, board),
    "put": lambda e, lock, board: e.put_item(lock, board),
    "take": lambda e, lock, board: e.take_item(lock, board),
    "stick": lambda e, lock, board: e.stick_lock(lock, board),
    "unstick": lambda e, lock, board: e.stick_lock(lock, board, stuck=False),
    "bounce": lambda e, lock, board: e.bounce_door(lock, board),
}
PROBABILITIES = {"drop": "drop_probability", "corrupt": "corrupt_probability",
                 "unsolicited": "unsolicited_probability"}


def run_command(line: str, board: BoardEmulator, scanner: ScannerEmulator) -> str:
    words = line.split()
    if not words:
        return ""
    command, args = words[0].lower(), words[1:]
    try:
        if command == "scan" and args:
            scanner.scan(" ".join(args))
            return "scanned"
        if command in DOOR_ACTIONS and args:
            lock = int(args[0])
            DOOR_ACTIONS[command](board, lock, int(args[1]) if len(args) > 1 else None)
            return f"{command} {lock}: done"
        if command == "power" and args and args[0] in ("on", "off"):
            (board.power_on if args[0] == "on" else board.power_off)()
            return f"power {args[0]}"
        if command == "silent" and args and args[0] in ("on", "off"):
            board.faults.silent = args[0] == "on"
            return f"silent {args[0]}"
        if command in PROBABILITIES and args:
            value = float(args[0])
            if not 0 <= value <= 1:
                return "a probability is between 0 and 1"
            setattr(board.faults, PROBABILITIES[command], value)
            return f"{command} probability {value}"
        if command == "delay" and args:
            board.faults.reply_delay = max(0.0, float(args[0]))
            return f"replies delayed by {board.faults.reply_delay} s"
        if command == "doors":
            return "  ".join(f"{b.address}/{lock}:{'closed' if closed else 'OPEN'}"
                             + ("" if b.items[lock] else "(empty)")
                             for b in board.boards.values() for lock, closed in sorted(b.doors.items()))
    except (ValueError, KeyError) as error:
        return f"not possible: {error}"
    return HELP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardware.emulator",
                                     description="Emulated lock boards on a pseudo-terminal.")
    parser.add_argument("--family", default="A", choices=["A", "B"])
    parser.add_argument("--boards", default=None,
                        help="board addresses on the bus, e.g. 1,2 (default 1 for A, 0 for B)")
    parser.add_argument("--channels", type=int, default=None, help="locks per board (8 / 16)")
    parser.add_argument("--pulse", type=float, default=0.5, help="solenoid pulse in seconds")
    parser.add_argument("--no-spring", action="store_true",
                        help="doors stay shut after an unlock until opened by hand")
    parser.add_argument("--inverted", action="store_true", help="inverted feedback polarity")
    parser.add_argument("--corrupt", type=float, default=0.0, metavar="P")
    parser.add_argument("--drop", type=float, default=0.0, metavar="P")
    parser.add_argument("--delay", type=float, default=0.0, metavar="S")
    parser.add_argument("--silent", action="store_true")
    parser.add_argument("--unlock-without-reply", action="store_true")
    parser.add_argument("--unsolicited", type=float, default=0.0, metavar="P")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--web-port", type=int, default=None, help="serve the locker page here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        addresses = [int(a) for a in (args.boards or ("1" if args.family == "A" else "0")).split(",")]
    except ValueError:
        parser.error("--boards takes numbers separated by commas")
    channels = args.channels or (8 if args.family == "A" else 16)
    faults = faults_from_args(args)
    board = BoardEmulator([EmulatedBoard(a, channels, inverted_polarity=args.inverted)
                           for a in addresses], family=args.family, pulse_seconds=args.pulse,
                          door_springs_open=not args.no_spring, faults=faults,
                          seed=args.seed).start()
    scanner, keypad, display = ScannerEmulator(), ScannerEmulator(), DisplayEmulator()
    page = EmulatorPage(board, scanner, port=args.web_port, display=display,
                        keypad=keypad).start() if args.web_port else None
    print(f"board bus port: {board.port}  (family {args.family}, {board.baudrate} baud)")
    print(f"scanner port:   {scanner.port}")
    print(f"keypad port:    {keypad.port}")
    print(f"display port:   {display.port}")
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
        for port in (scanner, keypad, display):
            port.close()
    return 0
