"""Emulated family A lock boards on a pseudo-terminal, and an emulated QR scanner.

The controller opens ``BoardEmulator.port`` with pyserial exactly as it would open
``/dev/ttyUSB0``. Visitors' actions (close a door, force one open) and what a test
wants to know (frames received) go through this Python API, never through the
data stream.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from hardware import family_a
from hardware.pty_port import PtyPort

logger = logging.getLogger(__name__)
wire_log = logging.getLogger("hardware.wire.emulator")


@dataclass
class EmulatedBoard:
    address: int
    channels: int = 8
    # True means the door of that lock is closed.
    doors: dict[int, bool] = field(default_factory=dict)
    # Feedback contacts wired the other way round (a per-cabinet setting in real life).
    inverted_polarity: bool = False

    def __post_init__(self) -> None:
        for lock in range(1, self.channels + 1):
            self.doors.setdefault(lock, True)

    def state_bits(self) -> int:
        bits = 0
        for lock, closed in self.doors.items():
            if closed != self.inverted_polarity:
                bits |= 1 << (lock - 1)
        return bits

    def feedback(self, lock: int) -> int:
        closed = self.doors.get(lock, True) != self.inverted_polarity
        return family_a.FEEDBACK_CLOSED if closed else family_a.FEEDBACK_OPEN


@dataclass(frozen=True)
class Frame:
    at: float
    direction: str  # "rx": from the controller to the board, "tx": the board's reply
    data: bytes

    def hex(self) -> str:
        return self.data.hex(" ").upper()

    def time_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at % 1 * 1000):03d}"


class BoardEmulator:
    """One or more family A boards sharing one bus on one pty."""

    def __init__(self, boards: list[EmulatedBoard] | None = None, *,
                 pulse_seconds: float = 0.5, door_springs_open: bool = True,
                 history: int = 200) -> None:
        self.boards = {b.address: b for b in (boards or [EmulatedBoard(1)])}
        self.pulse_seconds = pulse_seconds
        self.door_springs_open = door_springs_open
        self._frames: deque[Frame] = deque(maxlen=history)
        self._all_rx: list[bytes] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._pty = PtyPort()
        self._thread = threading.Thread(target=self._serve, name="board-emulator", daemon=True)

    @property
    def port(self) -> str:
        return self._pty.path

    def start(self) -> "BoardEmulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pty.close()

    def __enter__(self) -> "BoardEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Visitors' actions -------------------------------------------------------
    def close_door(self, lock: int, board: int | None = None) -> None:
        self._set_door(board, lock, closed=True)

    def open_door(self, lock: int, board: int | None = None) -> None:
        """Open a door by hand (forced, or after an unlock that did not spring it)."""
        self._set_door(board, lock, closed=False)

    def door_closed(self, lock: int, board: int | None = None) -> bool:
        with self._changed:
            return self._board(board).doors[lock]

    def _board(self, board: int | None) -> EmulatedBoard:
        return self.boards[board] if board is not None else next(iter(self.boards.values()))

    def _set_door(self, board: int | None, lock: int, *, closed: bool) -> None:
        with self._changed:
            target = self._board(board)
            if lock not in target.doors:
                raise ValueError(f"board {target.address} has no lock {lock}")
            target.doors[lock] = closed
            self._changed.notify_all()

    # What tests and the demo page look at -------------------------------------
    def frames(self) -> list[Frame]:
        with self._changed:
            return list(self._frames)

    def received(self) -> list[bytes]:
        """Every request frame the boards received, oldest first."""
        with self._changed:
            return list(self._all_rx)

    def unlocks_received(self) -> list[bytes]:
        return [f for f in self.received() if f[0] == family_a.UNLOCK_HEADER]

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

    # The board side of the line -------------------------------------------------
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
                request, consumed = family_a.decode_request(buffer)
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
            self._frames.append(Frame(time.time(), direction, data))
            if direction == "rx":
                self._all_rx.append(data)
            self._changed.notify_all()

    def _handle(self, request: family_a.Request) -> None:
        self._record("rx", request.encode())
        board = self.boards.get(request.board)
        if board is None:
            return  # another board's address: stay silent, as on a shared bus
        if request.is_unlock:
            if request.lock not in board.doors:
                return
            if self.pulse_seconds:
                self._stop.wait(self.pulse_seconds)
            with self._changed:
                if self.door_springs_open:
                    board.doors[request.lock] = False
                reply = family_a.encode_lock_reply(request, board.feedback(request.lock))
        elif request.is_state_all:
            with self._changed:
                reply = family_a.encode_state_reply(board.address, board.state_bits())
        elif request.is_state_one:
            if request.lock not in board.doors:
                return
            with self._changed:
                reply = family_a.encode_lock_reply(request, board.feedback(request.lock))
        elif request.is_open_all:
            for lock in sorted(board.doors):
                if self.pulse_seconds:
                    self._stop.wait(self.pulse_seconds)
                with self._changed:
                    if self.door_springs_open:
                        board.doors[lock] = False
            reply = request.encode()
        else:
            return  # optional commands this board does not have: no answer
        self._pty.write(reply)
        self._record("tx", reply)


class ScannerEmulator:
    """A QR scanner in serial mode: each code arrives as its text and a CR."""

    def __init__(self, line_ending: bytes = b"\r") -> None:
        self._pty = PtyPort()
        self.line_ending = line_ending

    @property
    def port(self) -> str:
        return self._pty.path

    def scan(self, code: str | bytes) -> None:
        data = code.encode("utf-8") if isinstance(code, str) else code
        self._pty.write(data + self.line_ending)

    def write_raw(self, data: bytes) -> None:
        self._pty.write(data)

    def close(self) -> None:
        self._pty.close()


if __name__ == "__main__":
    import sys

    from hardware.emulator_cli import main
    sys.exit(main())
