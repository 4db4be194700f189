"""Family B: Kerong KR-CU16 boards (16 locks, infrared item sensors). Bytes only, no I/O.

Frame ``STX ADDR CMD ETX SUM``: SUM is the low byte of the sum of all bytes before it.
ADDR holds the board number in the high nibble and lock number minus 1 in the low nibble.
The state reply is ``02 ADDR 35 D1 D2 D3 D4 03 SUM``: D1/D2 doors of locks 1-8/9-16
(1 = closed), D3/D4 item sensors of compartments 1-8/9-16 (1 = item present).
"""
from __future__ import annotations

from dataclasses import dataclass

STX, ETX = 0x02, 0x03
STATE_CMD, UNLOCK_CMD, STATE_REPLY_CMD = 0x30, 0x31, 0x35
REQUEST_LENGTH, STATE_REPLY_LENGTH = 5, 9
MAX_BOARD, LOCKS_PER_BOARD = 15, 16


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def _frame(*body: int) -> bytes:
    raw = bytes(body)
    return raw + bytes([checksum(raw)])


def _address(board: int, lock: int = 1) -> int:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"board number must be 0..{MAX_BOARD}, not {board}")
    if not 1 <= lock <= LOCKS_PER_BOARD:
        raise ValueError(f"lock number must be 1..{LOCKS_PER_BOARD}, not {lock}")
    return board << 4 | (lock - 1)


def encode_state(board: int) -> bytes:
    return _frame(STX, _address(board), STATE_CMD, ETX)


def encode_unlock(board: int, lock: int) -> bytes:
    return _frame(STX, _address(board, lock), UNLOCK_CMD, ETX)


@dataclass(frozen=True)
class Request:
    board: int
    lock: int  # 1..16; for a state request the low nibble is 0, so 1
    cmd: int

    @property
    def is_state(self) -> bool:
        return self.cmd == STATE_CMD

    @property
    def is_unlock(self) -> bool:
        return self.cmd == UNLOCK_CMD

    def encode(self) -> bytes:
        return _frame(STX, self.board << 4 | (self.lock - 1), self.cmd, ETX)


@dataclass(frozen=True)
class StateReply:
    board: int
    door_bits: int  # bit 0 = lock 1; 1 = closed
    item_bits: int  # bit 0 = compartment 1; 1 = item present

    def closed(self, lock: int) -> bool:
        return bool(self.door_bits >> (lock - 1) & 1)

    def item_present(self, lock: int) -> bool:
        return bool(self.item_bits >> (lock - 1) & 1)


def encode_state_reply(board: int, door_bits: int, item_bits: int, lock: int = 1) -> bytes:
    return _frame(STX, board << 4 | (lock - 1), STATE_REPLY_CMD, door_bits & 0xFF,
                  door_bits >> 8 & 0xFF, item_bits & 0xFF, item_bits >> 8 & 0xFF, ETX)


def decode_request(buffer: bytes) -> tuple[Request | None, int]:
    """Board side: ``(request, consumed)``; ``(None, 0)`` = need more, ``(None, n)`` = skipped."""
    skipped = 0
    while skipped < len(buffer):
        if buffer[skipped] != STX:
            skipped += 1
            continue
        frame = buffer[skipped:skipped + REQUEST_LENGTH]
        if len(frame) < REQUEST_LENGTH:
            return None, skipped
        if frame[3] != ETX or checksum(frame[:-1]) != frame[-1] or frame[2] not in (STATE_CMD, UNLOCK_CMD):
            skipped += 1
            continue
        return Request(frame[1] >> 4, (frame[1] & 0x0F) + 1, frame[2]), skipped + REQUEST_LENGTH
    return None, skipped


def decode_state_reply(buffer: bytes, board: int) -> tuple[StateReply | None, int]:
    """Controller side: the state frame of ``board`` at the front of ``buffer``, checked for
    length, STX/ETX, command, board and sum; other bytes are skipped."""
    skipped = 0
    while skipped < len(buffer):
        if buffer[skipped] != STX:
            skipped += 1
            continue
        frame = buffer[skipped:skipped + STATE_REPLY_LENGTH]
        if len(frame) < STATE_REPLY_LENGTH:
            if _could_become_reply(frame, board):
                return None, skipped
            skipped += 1
            continue
        if (frame[2] != STATE_REPLY_CMD or frame[7] != ETX or frame[1] >> 4 != board
                or checksum(frame[:-1]) != frame[-1]):
            skipped += 1
            continue
        return StateReply(board, frame[3] | frame[4] << 8, frame[5] | frame[6] << 8), \
            skipped + STATE_REPLY_LENGTH
    return None, skipped


def _could_become_reply(prefix: bytes, board: int) -> bool:
    if len(prefix) >= 2 and prefix[1] >> 4 != board:
        return False
    if len(prefix) >= 3 and prefix[2] != STATE_REPLY_CMD:
        return False
    return True
