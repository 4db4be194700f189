"""Driver for family A "8A/80" XOR boards (addresses 1-31, up to 24 locks read at once)."""
from __future__ import annotations

from hardware import family_a as codec
from hardware.drivers.base import BoardDriver, BoardState, NoResponseError, UnlockResult, register


@register("A")
class FamilyADriver(BoardDriver):
    baudrate = 9600
    addresses = range(1, 32)

    def __init__(self, port, timing, *, inverted_polarity: bool = False, channels: int = 24) -> None:
        super().__init__(port, timing, inverted_polarity=inverted_polarity)
        self.channels = channels

    def _ask(self, request: codec.Request, board: int, timeout: float | None = None):
        try:
            return self._transact(request.encode(), lambda buf: codec.decode_reply(buf, request),
                                  timeout=timeout)
        except NoResponseError as error:
            raise NoResponseError(f"no reply from board {board}") from error

    def unlock(self, board: int, lock: int) -> UnlockResult:
        reply = self._ask(codec.Request(codec.UNLOCK_HEADER, board, lock, codec.UNLOCK_FUNC), board)
        return UnlockResult(True, self._closed(reply.feedback == codec.FEEDBACK_CLOSED))

    def read_board(self, board: int) -> BoardState:
        reply = self._ask(codec.Request(codec.STATE_HEADER, board, 0, codec.STATE_FUNC), board)
        return BoardState(board, {lock: self._closed(reply.closed(lock))
                                  for lock in range(1, self.channels + 1)})

    def read_lock(self, board: int, lock: int) -> bool:
        """State of one lock: True when the door reads closed."""
        reply = self._ask(codec.Request(codec.STATE_HEADER, board, lock, codec.STATE_FUNC), board)
        return self._closed(reply.feedback == codec.FEEDBACK_CLOSED)

    def open_all(self, board: int) -> None:
        """Service only: the board pulses every lock in turn, which takes seconds."""
        request = codec.Request(codec.UNLOCK_HEADER, board, 0, codec.UNLOCK_FUNC)
        self._ask(request, board, timeout=self.timing.response_timeout + 0.6 * self.channels)
