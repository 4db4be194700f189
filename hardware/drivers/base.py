"""What every board driver shares: the error tree, timing, and one request/reply
transaction on a half-duplex line with framing by quiet time."""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

logger = logging.getLogger(__name__)
wire_log = logging.getLogger("hardware.wire")
REGISTRY: dict[str, type["BoardDriver"]] = {}


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
    # After a timeout or a bad frame the line must be quiet this long before the next
    # request, so a reply that comes late is not taken for the answer to the next one.
    recovery_quiet: float = 0.25


@dataclass(frozen=True)
class BoardState:
    board: int
    doors: dict[int, bool]  # lock -> door closed
    items: dict[int, bool] | None = None  # compartment -> item present, where sensors exist


@dataclass(frozen=True)
class UnlockResult:
    replied: bool
    door_closed: bool | None = None  # what the reply said, where it says anything


@dataclass
class LinkStats:
    """Counts for the bench: every transaction ends as ok, timeout or framing error."""

    transactions: int = 0
    ok: int = 0
    timeouts: int = 0
    framing_errors: int = 0
    durations: list[float] = field(default_factory=list)

    def record(self, outcome: str, seconds: float) -> None:
        self.transactions += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if len(self.durations) < 100_000:
            self.durations.append(seconds)

    def summary(self) -> dict[str, float]:
        ms = sorted(d * 1000 for d in self.durations) or [0.0]
        return {"median_ms": statistics.median(ms), "p95_ms": ms[int(len(ms) * 0.95) - 1 if len(ms) > 1 else 0],
                "max_ms": ms[-1]}


def register(family: str):
    def decorate(cls):
        cls.family = family
        REGISTRY[family] = cls
        return cls
    return decorate


class BoardDriver:
    """One bus of boards of one family on one serial port (anything ``serial_for_url``
    opened). Subclasses build frames with their codec and call ``_transact``."""

    family = "?"
    baudrate = 9600
    addresses = range(0)

    def __init__(self, port, timing: Timing, *, inverted_polarity: bool = False) -> None:
        self.port = port
        self.port.timeout = timing.quiet_time
        self.timing = timing
        self.inverted_polarity = inverted_polarity
        self.stats = LinkStats()
        self._last_transaction_end = 0.0

    def unlock(self, board: int, lock: int) -> UnlockResult:
        raise NotImplementedError

    def read_board(self, board: int) -> BoardState:
        raise NotImplementedError

    def find_boards(self, addresses=None) -> list[int]:
        """Boards that answer a state request, for the bench."""
        found = []
        for address in addresses if addresses is not None else self.addresses:
            try:
                self.read_board(address)
            except LinkError:
                continue
            found.append(address)
        return found

    def _closed(self, raw_closed: bool) -> bool:
        return raw_closed != self.inverted_polarity

    def _transact(self, frame: bytes, decode: Callable[[bytes], tuple[object, int]] | None,
                  *, settle: float = 0.0, timeout: float | None = None):
        """Send ``frame`` and return the decoded reply. With ``decode`` None nothing is
        awaited (a board that never answers this request); ``settle`` is how long the board
        stays busy afterwards (its pulse); ``timeout`` replaces the response timeout for a
        request that takes longer."""
        wait = self._last_transaction_end + self.timing.transaction_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the protocol's minimum gap between transactions
        started = time.monotonic()
        try:
            self.port.reset_input_buffer()
            self.port.write(frame)
            self.port.flush()
            wire_log.debug(">>> %s", frame.hex(" "))
            reply = self._read_reply(decode, timeout) if decode is not None else None
        except NoResponseError:
            self.stats.record("timeouts", time.monotonic() - started)
            self._drain()
            raise
        except FramingError:
            self.stats.record("framing_errors", time.monotonic() - started)
            self._drain()
            raise
        finally:
            self._last_transaction_end = time.monotonic() + settle
        self.stats.record("ok", time.monotonic() - started)
        return reply

    def _read_reply(self, decode, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.timing.response_timeout)
        buffer = b""
        skipped = b""
        while True:
            chunk = self.port.read(1)
            if chunk:
                if self.port.in_waiting:
                    chunk += self.port.read(self.port.in_waiting)
                buffer += chunk
                wire_log.debug("<<< %s", chunk.hex(" "))
                reply, consumed = decode(buffer)
                if reply is not None:
                    return reply
                skipped, buffer = skipped + buffer[:consumed], buffer[consumed:]
            elif buffer:
                # A quiet gap after bytes that are not the reply: that frame is over and
                # was not for us (an unsolicited report, a corrupted frame). Keep waiting.
                skipped, buffer = skipped + buffer, b""
            if time.monotonic() > deadline:
                if skipped or buffer:
                    raise FramingError(f"no valid reply; got {(skipped + buffer).hex(' ')}")
                raise NoResponseError("no reply")

    def _drain(self) -> None:
        """Rule 2: wait until the line has been quiet, then drop the input."""
        now = time.monotonic()
        deadline = now + self.timing.response_timeout + self.timing.recovery_quiet
        quiet_since = now
        while now < deadline and now - quiet_since < self.timing.recovery_quiet:
            if self.port.read(64):
                quiet_since = time.monotonic()
            now = time.monotonic()
        self.port.reset_input_buffer()
