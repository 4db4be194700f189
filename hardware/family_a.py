"""Family A "8A/80" XOR lock boards: frames as bytes, nothing else (no I/O).

See shared BOARD_PROTOCOL.md. Requests are 5 bytes ``HEADER BOARD LOCK FUNC BCC``;
BCC is the XOR of the bytes before it. Replies are 5 bytes, or 7 bytes for the
state of all locks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

UNLOCK_HEADER = 0x8A
STATE_HEADER = 0x80
UNLOCK_FUNC = 0x11
STATE_FUNC = 0x33
# Feedback state on most boards; the polarity is a per-cabinet setting.
FEEDBACK_CLOSED = 0x11
FEEDBACK_OPEN = 0x00

REQUEST_LENGTH = 5
# Headers of frames that may legally appear on the line (the optional ones included),
# so a decoder can resynchronise on them.
KNOWN_REQUEST_HEADERS = frozenset({0x8A, 0x80, 0x9A, 0x9B, 0x90})
MAX_BOARD_ADDRESS = 99


class FrameError(ValueError):
    """A frame that cannot be what was asked for."""


def bcc(data: bytes) -> int:
    """XOR of all bytes: the block check character of family A."""
    return reduce(lambda acc, b: acc ^ b, data, 0)


def _frame(*body: int) -> bytes:
    for value in body:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"byte out of range: {value}")
    raw = bytes(body)
    return raw + bytes([bcc(raw)])


def _check_address(board: int, lock: int | None = None) -> None:
    if not 1 <= board <= MAX_BOARD_ADDRESS:
        raise ValueError(f"board address must be 1..{MAX_BOARD_ADDRESS}, not {board}")
    if lock is not None and not 1 <= lock <= 255:
        raise ValueError(f"lock number must be 1..255, not {lock}")


def encode_unlock(board: int, lock: int) -> bytes:
    _check_address(board, lock)
    return _frame(UNLOCK_HEADER, board, lock, UNLOCK_FUNC)


def encode_open_all(board: int) -> bytes:
    _check_address(board)
    return _frame(UNLOCK_HEADER, board, 0x00, UNLOCK_FUNC)


def encode_state_all(board: int) -> bytes:
    _check_address(board)
    return _frame(STATE_HEADER, board, 0x00, STATE_FUNC)


def encode_state_one(board: int, lock: int) -> bytes:
    _check_address(board, lock)
    return _frame(STATE_HEADER, board, lock, STATE_FUNC)


@dataclass(frozen=True)
class Request:
    header: int
    board: int
    lock: int
    func: int

    @property
    def is_unlock(self) -> bool:
        return self.header == UNLOCK_HEADER and self.func == UNLOCK_FUNC and self.lock != 0

    @property
    def is_open_all(self) -> bool:
        return self.header == UNLOCK_HEADER and self.func == UNLOCK_FUNC and self.lock == 0

    @property
    def is_state_all(self) -> bool:
        return self.header == STATE_HEADER and self.func == STATE_FUNC and self.lock == 0

    @property
    def is_state_one(self) -> bool:
        return self.header == STATE_HEADER and self.func == STATE_FUNC and self.lock != 0

    def encode(self) -> bytes:
        return _frame(self.header, self.board, self.lock, self.func)

    def expected_reply_length(self) -> int:
        return 7 if self.is_state_all else 5


def decode_request(buffer: bytes) -> tuple[Request | None, int]:
    """Take one request from the front of ``buffer``.

    Returns ``(request, consumed)``. ``(None, 0)`` means "need more bytes";
    ``(None, n)`` means n bytes of garbage were skipped. The board side uses this.
    """
    skipped = 0
    while skipped < len(buffer):
        if buffer[skipped] not in KNOWN_REQUEST_HEADERS:
            skipped += 1
            continue
        frame = buffer[skipped:skipped + REQUEST_LENGTH]
        if len(frame) < REQUEST_LENGTH:
            return None, skipped
        if bcc(frame[:-1]) != frame[-1]:
            skipped += 1
            continue
        header, board, lock, func = frame[:4]
        return Request(header, board, lock, func), skipped + REQUEST_LENGTH
    return None, skipped


@dataclass(frozen=True)
class LockReply:
    """Reply to an unlock or to the state of one lock."""

    board: int
    lock: int
    feedback: int


@dataclass(frozen=True)
class StateReply:
    """Reply to the state of all locks: ``closed`` maps lock number to True/False,
    as the raw bits say (bit = 1 means closed on a board of normal polarity)."""

    board: int
    bits: int

    def closed(self, lock: int) -> bool:
        return bool(self.bits >> (lock - 1) & 1)


def encode_lock_reply(request: Request, feedback: int) -> bytes:
    return _frame(request.header, request.board, request.lock, feedback)


def encode_state_reply(board: int, bits: int) -> bytes:
    s1, s2, s3 = bits & 0xFF, bits >> 8 & 0xFF, bits >> 16 & 0xFF
    return _frame(STATE_HEADER, board, s3, s2, s1, STATE_FUNC)


def decode_reply(buffer: bytes, request: Request) -> tuple[LockReply | StateReply | bytes | None, int]:
    """Find the reply to ``request`` at the front of ``buffer``.

    Returns ``(reply, consumed)``: ``(None, 0)`` when more bytes are needed,
    ``(None, n)`` when n bytes of garbage or of frames that are not the reply
    (unsolicited reports, echoes of other boards) were skipped. A candidate must
    match length, header, board and lock, not only the XOR, because a truncated
    frame can pass a one-byte XOR by chance. For "open all" the reply is the echo
    of the request, returned as bytes.
    """
    length = request.expected_reply_length()
    skipped = 0
    while skipped < len(buffer):
        if buffer[skipped] != request.header:
            skipped += 1
            continue
        frame = buffer[skipped:skipped + length]
        if len(frame) < length:
            # A prefix that could still become the reply: wait for the rest.
            if _prefix_matches(frame, request):
                return None, skipped
            skipped += 1
            continue
        if not _frame_matches(frame, request):
            skipped += 1
            continue
        consumed = skipped + length
        if request.is_state_all:
            s3, s2, s1 = frame[2], frame[3], frame[4]
            return StateReply(request.board, s1 | s2 << 8 | s3 << 16), consumed
        if request.is_open_all:
            return bytes(frame), consumed
        return LockReply(request.board, request.lock, frame[3]), consumed
    return None, skipped


def _prefix_matches(prefix: bytes, request: Request) -> bool:
    if len(prefix) >= 2 and prefix[1] != request.board:
        return False
    if not request.is_state_all and len(prefix) >= 3 and prefix[2] != request.lock:
        return False
    return True


def _frame_matches(frame: bytes, request: Request) -> bool:
    if bcc(frame[:-1]) != frame[-1]:
        return False
    if frame[0] != request.header or frame[1] != request.board:
        return False
    if request.is_state_all:
        return frame[5] == STATE_FUNC
    if frame[2] != request.lock:
        return False
    if request.is_open_all:
        return frame[3] == request.func
    return True


def wire_seconds(frame_length: int, baudrate: int = 9600) -> float:
    """Time a frame takes on the line at 8N1 (10 bits a byte)."""
    return frame_length * 10 / baudrate
