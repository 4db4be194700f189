"""The boards inside the emulator: doors, locks, item sensors, and how each family answers.
No I/O here; ``hardware.emulator`` owns the pty and the faults."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from hardware import family_a, family_b


@dataclass
class EmulatedBoard:
    address: int
    channels: int = 8
    doors: dict[int, bool] = field(default_factory=dict)  # lock -> door closed
    items: dict[int, bool] = field(default_factory=dict)  # compartment -> item present
    # Feedback contacts wired the other way round (a per-cabinet setting in real life).
    inverted_polarity: bool = False
    stuck_locks: set[int] = field(default_factory=set)  # pulses do not release these
    bouncing: dict[int, int] = field(default_factory=dict)  # lock -> readings left to bounce
    pulses: list[int] = field(default_factory=list)  # locks actually pulsed, in order

    def __post_init__(self) -> None:
        for lock in range(1, self.channels + 1):
            self.doors.setdefault(lock, True)
            self.items.setdefault(lock, True)

    def reads_closed(self, lock: int) -> bool:
        """What the feedback contact says now (bounce and polarity included)."""
        closed = self.doors.get(lock, True)
        left = self.bouncing.get(lock, 0)
        if left:
            self.bouncing[lock] = left - 1
            closed = not closed if left % 2 else closed
        return closed != self.inverted_polarity

    def state_bits(self) -> int:
        return sum(1 << (lock - 1) for lock in self.doors if self.reads_closed(lock))

    def item_bits(self) -> int:
        return sum(1 << (lock - 1) for lock, present in self.items.items() if present)

    def pulse(self, lock: int, springs_open: bool) -> None:
        self.pulses.append(lock)
        if springs_open and lock not in self.stuck_locks:
            self.doors[lock] = False


class FamilyABus:
    """How family A boards answer on their bus."""

    baudrate = 9600
    decode_request = staticmethod(family_a.decode_request)

    @staticmethod
    def describe(request) -> tuple[str, int, int]:
        kind = ("unlock" if request.is_unlock else "state_all" if request.is_state_all else
                "state_one" if request.is_state_one else "open_all" if request.is_open_all else "other")
        return kind, request.board, request.lock

    @staticmethod
    def lock_reply(request, board: EmulatedBoard) -> bytes:
        feedback = family_a.FEEDBACK_CLOSED if board.reads_closed(request.lock) else family_a.FEEDBACK_OPEN
        return family_a.encode_lock_reply(request, feedback)

    @staticmethod
    def state_reply(request, board: EmulatedBoard) -> bytes:
        # Three state bytes whatever the number of channels, as real 8-channel boards do.
        return family_a.encode_state_reply(board.address, board.state_bits())

    @staticmethod
    def open_all_reply(request, board: EmulatedBoard) -> bytes:
        return request.encode()

    @staticmethod
    def unsolicited(board: EmulatedBoard, rng: random.Random) -> bytes:
        lock = rng.randint(1, board.channels)
        header = rng.choice((0x81, 0x82))
        body = bytes([header, board.address, lock, 0x11 if board.doors[lock] else 0x00])
        return body + bytes([family_a.bcc(body)])


class FamilyBBus:
    baudrate = 19200
    decode_request = staticmethod(family_b.decode_request)

    @staticmethod
    def describe(request) -> tuple[str, int, int]:
        return ("unlock" if request.is_unlock else "state_all"), request.board, request.lock

    @staticmethod
    def state_reply(request, board: EmulatedBoard) -> bytes:
        return family_b.encode_state_reply(board.address, board.state_bits(), board.item_bits(),
                                           request.lock)

    lock_reply = state_reply  # a KR-CU16 that answers an unlock sends its state frame

    @staticmethod
    def unsolicited(board: EmulatedBoard, rng: random.Random) -> bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))


BUSES = {"A": FamilyABus, "B": FamilyBBus}
