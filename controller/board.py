"""Drivers for lock-control boards: one small interface, one class per board family.

A driver owns nothing but the serial port it is given (anything ``serial_for_url``
opened) and knows bytes only through the pure codecs in ``hardware``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from hardware import family_a

logger = logging.getLogger(__name__)
wire_log = logging.getLogger("controller.wire")


class LinkError(Exception):
    """The board did not answer as the protocol says."""


class NoResponseError(LinkError):
    pass


class FramingError(LinkError):
    """Bytes arrived, but not the reply asked for (bad checksum, wrong length or address)."""


@dataclass(frozen=True)
class Timing:
    response_timeout: float = 1.5
    quiet_time: float = 0.025
    transaction_gap: float = 0.005


class BoardDriver(Protocol):
    def unlock(self, board: int, lock: int) -> bool | None:
        """Pulse one lock. Returns whether the door reads closed afterwards, when known."""

    def read_doors(self, board: int) -> dict[int, bool]:
        """Lock number -> door closed, for every lock the board reports."""


class FamilyADriver:
    def __init__(self, port, timing: Timing = Timing(), *, inverted_polarity: bool = False,
                 channels: int = 24) -> None:
        self.port = port
        self.port.timeout = timing.quiet_time
        self.timing = timing
        self.inverted_polarity = inverted_polarity
        self.channels = channels
        self._last_transaction_end = 0.0

    def unlock(self, board: int, lock: int) -> bool | None:
        request = family_a.Request(family_a.UNLOCK_HEADER, board, lock, family_a.UNLOCK_FUNC)
        reply = self._transact(request)
        return self._closed_from_feedback(reply.feedback)

    def read_doors(self, board: int) -> dict[int, bool]:
        request = family_a.Request(family_a.STATE_HEADER, board, 0, family_a.STATE_FUNC)
        reply = self._transact(request)
        return {lock: reply.closed(lock) != self.inverted_polarity
                for lock in range(1, self.channels + 1)}

    def _closed_from_feedback(self, feedback: int) -> bool:
        return (feedback == family_a.FEEDBACK_CLOSED) != self.inverted_polarity

    def _transact(self, request: family_a.Request):
        wait = self._last_transaction_end + self.timing.transaction_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the protocol's minimum gap between transactions
        frame = request.encode()
        try:
            self.port.reset_input_buffer()
            self.port.write(frame)
            wire_log.debug(">>> %s", frame.hex(" "))
            return self._read_reply(request)
        except LinkError:
            self._drain()
            raise
        finally:
            self._last_transaction_end = time.monotonic()

    def _read_reply(self, request: family_a.Request):
        deadline = time.monotonic() + self.timing.response_timeout
        buffer = b""
        skipped = b""
        while True:
            chunk = self.port.read(1)
            if chunk:
                if self.port.in_waiting:
                    chunk += self.port.read(self.port.in_waiting)
                buffer += chunk
                wire_log.debug("<<< %s", chunk.hex(" "))
                reply, consumed = family_a.decode_reply(buffer, request)
                if reply is not None:
                    return reply
                skipped, buffer = skipped + buffer[:consumed], buffer[consumed:]
            elif buffer:
                # A quiet gap after bytes that are not the reply: that frame is over and was
                # not for us (an unsolicited report, a corrupted frame). Keep waiting.
                skipped, buffer = skipped + buffer, b""
            if time.monotonic() > deadline:
                if skipped or buffer:
                    raise FramingError(f"no valid reply for {request}; got {(skipped + buffer).hex(' ')}")
                raise NoResponseError(f"no reply from board {request.board}")

    def _drain(self) -> None:
        """Wait until the line has been quiet for the quiet time, then drop the input."""
        deadline = time.monotonic() + self.timing.response_timeout
        while time.monotonic() < deadline and self.port.read(64):
            pass
        self.port.reset_input_buffer()


def make_driver(family: str, port, timing: Timing, *, inverted_polarity: bool = False) -> BoardDriver:
    if family.upper() == "A":
        return FamilyADriver(port, timing, inverted_polarity=inverted_polarity)
    raise ValueError(f"board family {family!r} is not supported yet")
