"""``python -m hardware.bench``: the test bench for a real USB-RS485 adapter or the emulator.

    python -m hardware.bench --port /dev/ttyUSB0 --family A find
    python -m hardware.bench --port /dev/ttyUSB0 unlock 1 3
    python -m hardware.bench --port /dev/ttyUSB0 watch 1
    python -m hardware.bench --emulate --drop 0.05 soak --boards 1 --locks 1-8 --cycles 100
"""
from __future__ import annotations

import argparse
import sys
import time

import serial

from hardware.drivers import LinkError, REGISTRY, Timing, default_baudrate, make_driver
from hardware.emulator import BoardEmulator, EmulatedBoard, faults_from_args
from hardware.soak import run_soak


def number_list(text: str) -> list[int]:
    """"1-8,12" -> [1, ..., 8, 12]"""
    numbers: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            numbers.extend(range(int(low), int(high) + 1))
        elif part.strip():
            numbers.append(int(part))
    return numbers


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hardware.bench", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port or pyserial URL, e.g. /dev/ttyUSB0")
    where.add_argument("--emulate", action="store_true", help="run against the built-in emulator")
    p.add_argument("--family", default="A", choices=sorted(REGISTRY), help="board family")
    p.add_argument("--baud", type=int, help="baud rate (default: the family's)")
    p.add_argument("--inverted", action="store_true", help="feedback contacts read 0 when closed")
    p.add_argument("--channels", type=int, default=8, help="locks per family A board (8, 12, 16, 24)")
    p.add_argument("--timeout", type=float, default=1.5, help="reply timeout, s")
    p.add_argument("--quiet-time", type=float, default=0.025, help="frame end after this silence, s")
    p.add_argument("--gap", type=float, default=0.005, help="pause between transactions, s")
    faults = p.add_argument_group("emulator faults (with --emulate)")
    faults.add_argument("--corrupt", type=float, default=0.0, metavar="P")
    faults.add_argument("--drop", type=float, default=0.0, metavar="P")
    faults.add_argument("--delay", type=float, default=0.0, metavar="S")
    faults.add_argument("--unsolicited", type=float, default=0.0, metavar="P")
    faults.add_argument("--pulse", type=float, default=0.05, metavar="S", help="emulated pulse")
    faults.add_argument("--seed", type=int, default=None)
    commands = p.add_subparsers(dest="command", required=True)
    find = commands.add_parser("find", help="list the boards that answer")
    find.add_argument("--addresses", type=number_list, help="e.g. 1-31 (default: all of the family)")
    unlock = commands.add_parser("unlock", help="pulse one lock")
    unlock.add_argument("board", type=int)
    unlock.add_argument("lock", type=int)
    watch = commands.add_parser("watch", help="show door (and item) states live")
    watch.add_argument("boards", type=int, nargs="+")
    watch.add_argument("--interval", type=float, default=0.5)
    watch.add_argument("--count", type=int, default=0, help="stop after this many readings")
    soak = commands.add_parser("soak", help="N unlock cycles over all compartments")
    soak.add_argument("--boards", type=number_list, required=True)
    soak.add_argument("--locks", type=number_list, required=True)
    soak.add_argument("--cycles", type=int, default=10)
    return p


def progress_bar(total: int):
    def show(done: int, report) -> None:
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cycles  "
                         f"timeouts {report.unlock_timeouts}  not opened {len(report.doors_not_opened)}")
        sys.stderr.flush()
        if done == total:
            sys.stderr.write("\n")
    return show


def doors_text(state) -> str:
    doors = " ".join(f"{lock}:{'zu' if closed else 'AUF'}" for lock, closed in sorted(state.doors.items()))
    items = ""
    if state.items is not None:
        items = "  items " + " ".join(f"{lock}:{'ja' if present else '-'}"
                                      for lock, present in sorted(state.items.items()))
    return f"board {state.board}: {doors}{items}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    emulator = None
    if args.emulate:
        addresses = getattr(args, "boards", None) or ([1] if args.family == "A" else [0])
        if args.command == "unlock":
            addresses = [args.board]
        channels = 16 if args.family == "B" else args.channels
        emulator = BoardEmulator(
            [EmulatedBoard(a, channels, inverted_polarity=args.inverted) for a in addresses],
            family=args.family, pulse_seconds=args.pulse, seed=args.seed,
            faults=faults_from_args(args)).start()
        port_name = emulator.port
        print(f"emulated family {args.family} bus on {port_name}")
    else:
        port_name = args.port
    try:
        port = serial.serial_for_url(port_name, baudrate=args.baud or default_baudrate(args.family))
    except (serial.SerialException, ValueError) as error:
        print(f"Cannot open {port_name}: {error}. Is the adapter plugged in, and may this user "
              f"use it (group dialout)?", file=sys.stderr)
        return 2
    options = {"channels": args.channels} if args.family == "A" else {}
    driver = make_driver(args.family, port, Timing(args.timeout, args.quiet_time, args.gap),
                         inverted_polarity=args.inverted, **options)
    try:
        return run_command(args, driver, emulator)
    except KeyboardInterrupt:
        return 130
    finally:
        port.close()
        if emulator:
            emulator.stop()


def run_command(args, driver, emulator) -> int:
    if args.command == "find":
        addresses = list(args.addresses or driver.addresses)
        found = []
        for index, address in enumerate(addresses, 1):
            sys.stderr.write(f"\rasking address {address} ({index}/{len(addresses)}) ...")
            sys.stderr.flush()
            found += driver.find_boards([address])
        sys.stderr.write("\n")
        if not found:
            print("No board answered. Check wiring (A/B not swapped), baud rate, family, and "
                  "that the board has power.")
            return 1
        for board in found:
            print(doors_text(driver.read_board(board)))
        return 0
    if args.command == "unlock":
        try:
            result = driver.unlock(args.board, args.lock)
        except LinkError as error:
            print(f"Unlock sent, no valid reply ({error}). Not repeated; reading the state instead.")
        else:
            said = "no reply (normal for some boards)" if not result.replied else (
                "door reads closed" if result.door_closed else "door reads open")
            print(f"Unlock board {args.board} lock {args.lock}: {said}")
        time.sleep(0.1)
        try:
            state = driver.read_board(args.board)
        except LinkError as error:
            print(f"State of board {args.board}: {error}")
            return 1
        print(doors_text(state))
        return 0
    if args.command == "watch":
        last: dict[int, str] = {}
        readings = 0
        while not args.count or readings < args.count:
            for board in args.boards:
                try:
                    text = doors_text(driver.read_board(board))
                except LinkError as error:
                    text = f"board {board}: {error}"
                if last.get(board) != text:
                    print(time.strftime("%H:%M:%S"), text, flush=True)
                    last[board] = text
            readings += 1
            time.sleep(args.interval)
        return 0
    if args.command == "soak":
        locks = {board: args.locks for board in args.boards}
        close = (lambda board, lock: emulator.close_door(lock, board)) if emulator else None
        report = run_soak(driver, locks, args.cycles, close_door=close,
                          progress=progress_bar(args.cycles))
        for line in report.lines(driver):
            print(line)
        return 0 if not report.doors_not_opened and not report.unlock_timeouts else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
