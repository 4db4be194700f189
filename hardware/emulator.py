"""Emulated lock boards of family A or B on a pseudo-terminal, an emulated QR scanner and
an emulated character display.

The controller opens ``BoardEmulator.port`` with pyserial exactly as it would open
``/dev/ttyUSB0``. Visitors' actions (open, close, force a door, put an item in) and faults
(corrupted bytes, lost or slow replies, silence, power loss, a stuck lock, a bouncing
contact, the disputed variants) are switched through this Python API or the command line,
never through the data stream.
"""
from __future__ import annotations

import logging
import random
import select
import threading
import time
from collections import deque
from dataclasses import dataclass

from hardware.emulator_boards import BUSES, EmulatedBoard
from hardware.pty_port import PtyPort

logger = logging.getLogger(__name__)
wire_log = logging.getLogger("hardware.wire.emulator")

__all__ = ["BoardEmulator", "DisplayEmulator", "EmulatedBoard", "Faults", "Frame", "ScannerEmulator"]


@dataclass
class Faults:
    corrupt_probability: float = 0.0  # flip the bits of one byte of a reply
    byte_error_rate: float = 0.0  # each byte of a reply garbled with this probability (noise)
    drop_probability: float = 0.0  # carry out the request but send no reply
    reply_delay: float = 0.0  # seconds before each reply
    silent: bool = False  # answer nothing (a cut cable)
    unlock_without_reply: bool = False  # disputed variant: pulse, but say nothing
    unsolicited_probability: float = 0.0  # an unasked frame before a reply


def faults_from_args(args) -> Faults:
    """The faults asked for on a command line (``--corrupt``, ``--drop``, ``--delay``, ...);
    by name, as the fields are not in the order of the options."""
    return Faults(corrupt_probability=getattr(args, "corrupt", 0.0),
                  drop_probability=getattr(args, "drop", 0.0),
                  reply_delay=getattr(args, "delay", 0.0), silent=getattr(args, "silent", False),
                  unlock_without_reply=getattr(args, "unlock_without_reply", False),
                  unsolicited_probability=getattr(args, "unsolicited", 0.0))


@dataclass(frozen=True)
class Frame:
    at: float  # time.time()
    direction: str  # "rx": from the controller to the board, "tx": the board's reply
    data: bytes
    monotonic: float = 0.0

    def hex(self) -> str:
        return self.data.hex(" ").upper()

    def time_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at % 1 * 1000):03d}"


class BoardEmulator:
    """One or more boards of one family sharing one bus on one pty."""

    def __init__(self, boards: list[EmulatedBoard] | None = None, *, family: str = "A",
                 pulse_seconds: float = 0.5, door_springs_open: bool = True,
                 faults: Faults | None = None, seed: int | None = None, history: int = 200) -> None:
        self.family = family.upper()
        self.bus = BUSES[self.family]
        default = EmulatedBoard(1 if self.family == "A" else 0, 8 if self.family == "A" else 16)
        self.boards = {b.address: b for b in (boards or [default])}
        self.pulse_seconds = pulse_seconds
        self.door_springs_open = door_springs_open
        self.faults = faults or Faults()
        self.powered = True
        self._rng = random.Random(seed)
        self._frames: deque[Frame] = deque(maxlen=history)
        self._all_rx: list[bytes] = []
        self.requests_seen = 0
        self.replies_dropped = 0  # by the drop fault
        self.replies_garbled = 0  # by either corruption fault
        # A visitor quicker than any poll: called right after a pulse, before any reply,
        # with (board, lock); it may open, shut, take or put (``board.doors``, ``board.items``).
        self.after_pulse = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._pty = PtyPort()
        self._thread = threading.Thread(target=self._serve, name="board-emulator", daemon=True)

    @property
    def port(self) -> str:
        return self._pty.path

    @property
    def baudrate(self) -> int:
        return self.bus.baudrate

    def start(self) -> "BoardEmulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._pty.close()

    def __enter__(self) -> "BoardEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Visitors' actions ---------------------------------------------------------------------
    def close_door(self, lock: int, board: int | None = None) -> None:
        self._set(board, lock, "doors", True)

    def open_door(self, lock: int, board: int | None = None) -> None:
        """Open a door by hand: after an unlock that did not spring it, or forced."""
        self._set(board, lock, "doors", False)

    force_door = open_door

    def put_item(self, lock: int, board: int | None = None) -> None:
        self._set(board, lock, "items", True)

    def take_item(self, lock: int, board: int | None = None) -> None:
        self._set(board, lock, "items", False)

    def door_closed(self, lock: int, board: int | None = None) -> bool:
        with self._changed:
            return self._board(board).doors[lock]

    def item_present(self, lock: int, board: int | None = None) -> bool:
        with self._changed:
            return self._board(board).items[lock]

    # Faults -----------------------------------------------------------------------------------
    def power_off(self) -> None:
        with self._changed:
            self.powered = False

    def power_on(self) -> None:
        with self._changed:
            self.powered = True

    def stick_lock(self, lock: int, board: int | None = None, stuck: bool = True) -> None:
        with self._changed:
            (self._board(board).stuck_locks.add if stuck else self._board(board).stuck_locks.discard)(lock)

    def bounce_door(self, lock: int, board: int | None = None, readings: int = 6) -> None:
        """The contact of ``lock`` flickers for the next ``readings`` state readings."""
        with self._changed:
            self._board(board).bouncing[lock] = readings

    def set_polarity(self, inverted: bool) -> None:
        with self._changed:
            for board in self.boards.values():
                board.inverted_polarity = inverted

    # What tests and the bench look at ----------------------------------------------------------
    def _board(self, board: int | None) -> EmulatedBoard:
        return self.boards[board] if board is not None else next(iter(self.boards.values()))

    def _set(self, board: int | None, lock: int, what: str, value: bool) -> None:
        with self._changed:
            target = self._board(board)
            if lock not in target.doors:
                raise ValueError(f"board {target.address} has no lock {lock}")
            getattr(target, what)[lock] = value
            self._changed.notify_all()

    def frames(self) -> list[Frame]:
        with self._changed:
            return list(self._frames)

    def received(self) -> list[bytes]:
        """Every request frame the bus carried, oldest first."""
        with self._changed:
            return list(self._all_rx)

    def unlocks_received(self) -> list[bytes]:
        return [f for f in self.received() if self.bus.describe(self.bus.decode_request(f)[0])[0] == "unlock"]

    def pulses(self) -> dict[int, list[int]]:
        """Board address -> locks actually pulsed, in order."""
        with self._changed:
            return {address: list(b.pulses) for address, b in self.boards.items()}

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Wait until ``predicate(self)`` holds or the deadline passes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # The board side of the line -------------------------------------------------------------
    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._pty.master_fd], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            buffer += self._pty.read_available()
            while buffer:
                request, consumed = self.bus.decode_request(buffer)
                if consumed == 0:
                    break
                buffer = buffer[consumed:]
                if request is not None:
                    try:
                        self._handle(request)
                    except Exception:  # thread boundary: log and keep serving
                        logger.exception("emulator failed on %s", request)

    def _record(self, direction: str, data: bytes) -> None:
        wire_log.debug("%s %s", ">>>" if direction == "rx" else "<<<", data.hex(" "))
        with self._changed:
            self._frames.append(Frame(time.time(), direction, data, time.monotonic()))
            if direction == "rx":
                self._all_rx.append(data)
                self.requests_seen += 1
            self._changed.notify_all()

    def _handle(self, request) -> None:
        self._record("rx", request.encode())
        kind, address, lock = self.bus.describe(request)
        with self._changed:
            board = self.boards.get(address)
            if board is None or not self.powered:
                return  # another board's address, or no power: silence, as on a real bus
        if kind == "unlock":
            if lock not in board.doors:
                return
            self._stop.wait(self.pulse_seconds)
            with self._changed:
                board.pulse(lock, self.door_springs_open)
                if self.after_pulse is not None:
                    self.after_pulse(board, lock)
                self._changed.notify_all()
                if self.faults.unlock_without_reply:
                    return
                reply = self.bus.lock_reply(request, board)
        elif kind == "state_all":
            with self._changed:
                reply = self.bus.state_reply(request, board)
        elif kind == "state_one" and lock in board.doors:
            with self._changed:
                reply = self.bus.lock_reply(request, board)
        elif kind == "open_all":
            for each in sorted(board.doors):
                self._stop.wait(self.pulse_seconds)
                with self._changed:
                    board.pulse(each, self.door_springs_open)
            reply = self.bus.open_all_reply(request, board)
        else:
            return  # optional commands this board does not have: no answer
        self._reply(board, reply)

    def _reply(self, board: EmulatedBoard, reply: bytes) -> None:
        faults = self.faults
        if faults.silent:
            return
        if self._rng.random() < faults.drop_probability:
            self.replies_dropped += 1
            return
        if faults.reply_delay:
            self._stop.wait(faults.reply_delay)
        if self._rng.random() < faults.unsolicited_probability:
            extra = self.bus.unsolicited(board, self._rng)
            self._record("tx", extra)
            self._pty.write(extra)
            time.sleep(0.03)  # a separate burst: longer than the quiet time
        sent = reply
        if self._rng.random() < faults.corrupt_probability:
            position = self._rng.randrange(len(reply))
            reply = reply[:position] + bytes([reply[position] ^ self._rng.randint(1, 255)]) + reply[position + 1:]
        if faults.byte_error_rate:
            reply = bytes(b ^ self._rng.randint(1, 255) if self._rng.random() < faults.byte_error_rate
                          else b for b in reply)
        if reply != sent:
            self.replies_garbled += 1
        # Recorded before it is written: whoever has read the reply finds it in frames().
        self._record("tx", reply)
        self._pty.write(reply)


class ScannerEmulator:
    """A QR scanner in serial mode: each code arrives as its text and a CR."""

    def __init__(self, line_ending: bytes = b"\r") -> None:
        self._pty = PtyPort()
        self.line_ending = line_ending
        self.last_write_monotonic = 0.0

    @property
    def port(self) -> str:
        return self._pty.path

    def scan(self, code: str | bytes) -> None:
        data = code.encode("utf-8") if isinstance(code, str) else code
        self._pty.write(data + self.line_ending)
        self.last_write_monotonic = time.monotonic()

    def write_raw(self, data: bytes) -> None:
        self._pty.write(data)

    def close(self) -> None:
        self._pty.close()


class DisplayEmulator:
    """A character display with a buzzer, as the controller's ``display_port`` sees it
    (docs/DISPLAY_PROTOCOL.md): it takes CLEAR, ROW n text and TONE YES|NO lines and keeps
    what a visitor would see and hear. Nothing is ever sent back."""

    def __init__(self, rows: int = 4, columns: int = 20) -> None:
        self._pty = PtyPort()
        self.rows_count, self.columns = rows, columns
        self.rows = [""] * rows
        self.tones: list[str] = []
        self.frames = 0  # CLEARs seen: one per message
        self.messages: list[str] = []  # the text of every message shown, its rows joined
        self.changed = threading.Condition()
        self._buffer = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="display-emulator", daemon=True)
        self._thread.start()

    @property
    def port(self) -> str:
        return self._pty.path

    def text(self) -> str:
        with self.changed:
            return "\n".join(row for row in self.rows if row)

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Until ``predicate(self)`` holds (checked after every line), or the timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._pty.master_fd], [], [], 0.05)
            if not ready:
                continue
            self._buffer += self._pty.read_available()
            while b"\n" in self._buffer:
                raw, _, rest = bytes(self._buffer).partition(b"\n")
                self._buffer = bytearray(rest)
                self._line(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        command, _, rest = line.partition(" ")
        with self.changed:
            if command == "CLEAR":
                self.rows = [""] * self.rows_count
                self.frames += 1
                self.messages.append("")
            elif command == "ROW":
                number, _, text = rest.partition(" ")
                if number.isdigit() and 1 <= int(number) <= self.rows_count:
                    self.rows[int(number) - 1] = text[:self.columns]
                    if self.messages:
                        self.messages[-1] = " ".join(filter(None, (self.messages[-1], text)))
            elif command == "TONE" and rest in ("YES", "NO"):
                self.tones.append(rest.lower())
            else:
                logger.warning("display emulator: line not understood: %r", line)
            self.changed.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pty.close()


if __name__ == "__main__":
    import sys

    from hardware.emulator_cli import main
    sys.exit(main())
