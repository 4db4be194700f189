"""Driver for family B: Kerong KR-CU16 (boards 0-15, 16 locks, item sensors)."""
from __future__ import annotations

from hardware import family_b as codec
from hardware.drivers.base import (BoardDriver, BoardState, LinkError, NoResponseError,
                                   UnlockResult, register)


@register("B")
class FamilyBDriver(BoardDriver):
    baudrate = 19200
    addresses = range(0, 16)

    def __init__(self, port, timing, *, inverted_polarity: bool = False,
                 pulse_seconds: float = 0.5) -> None:
        super().__init__(port, timing, inverted_polarity=inverted_polarity)
        # After an unlock nobody answers, the board is busy with its pulse this long.
        self.pulse_seconds = pulse_seconds
        # Some boards answer an unlock with a state frame, others say nothing. None means
        # not known yet; after one silent unlock we stop waiting for an answer.
        self.unlock_replies: bool | None = None

    def _state(self, reply: codec.StateReply) -> BoardState:
        return BoardState(reply.board,
                          {lock: self._closed(reply.closed(lock)) for lock in range(1, 17)},
                          {lock: reply.item_present(lock) for lock in range(1, 17)})

    def read_board(self, board: int) -> BoardState:
        try:
            reply = self._transact(codec.encode_state(board),
                                   lambda buf: codec.decode_state_reply(buf, board))
        except NoResponseError as error:
            raise NoResponseError(f"no reply from board {board}") from error
        return self._state(reply)

    def unlock(self, board: int, lock: int) -> UnlockResult:
        frame = codec.encode_unlock(board, lock)
        if self.unlock_replies is False:
            self._transact(frame, None, settle=self.pulse_seconds)
            return UnlockResult(False)
        try:
            reply = self._transact(frame, lambda buf: codec.decode_state_reply(buf, board))
        except NoResponseError:
            self.unlock_replies = False
            return UnlockResult(False)  # sent; the next state read tells what happened
        except LinkError:
            return UnlockResult(False)
        self.unlock_replies = True
        return UnlockResult(True, self._state(reply).doors.get(lock))
