"""Reading codes from a serial QR scanner (or a keypad): one code per CR or CR LF line."""
from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


class LineAssembler:
    """Turns raw bytes into accepted lines: empty lines and lines that are too long or not
    printable ASCII are dropped; the same code twice within ``debounce`` seconds counts once.

    A scanner sends a code in one burst. Bytes that stop for ``quiet_gap`` seconds without
    a CR (a half-read code, a line too long) are dropped, so the next scan starts clean;
    before, a 600-byte line without CR swallowed the next real scan. Every dropped line's
    reason waits in ``refused`` for the caller to report."""

    def __init__(self, max_length: int = 512, debounce: float = 1.0, clock=time.monotonic,
                 quiet_gap: float = 0.5) -> None:
        self.max_length = max_length
        self.debounce = debounce
        self.clock = clock
        self.quiet_gap = quiet_gap
        self._buffer = bytearray()
        self._overlong = False
        self._last: tuple[str, float] | None = None
        self._last_byte_at: float | None = None
        self.refused: list[str] = []

    def take_refused(self) -> list[str]:
        refused, self.refused = self.refused, []
        return refused

    def feed(self, data: bytes) -> list[str]:
        """Call it also with b"" when the port is quiet: that is when a stale partial
        line is dropped."""
        now = self.clock()
        if (self._buffer or self._overlong) and self._last_byte_at is not None \
                and now - self._last_byte_at >= self.quiet_gap:
            self.refused.append("too_long" if self._overlong else "incomplete")
            logger.warning("scanner bytes without an end of line dropped after %.1f s quiet",
                           now - self._last_byte_at)
            self._buffer.clear()
            self._overlong = False
        if data:
            self._last_byte_at = now
        lines = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                line = self._finish()
                if line is not None:
                    lines.append(line)
            elif self._overlong:
                continue
            elif len(self._buffer) >= self.max_length:
                self._overlong = True
                self._buffer.clear()
                logger.warning("scanner line longer than %d bytes ignored", self.max_length)
            else:
                self._buffer.append(byte)
        return lines

    def _finish(self) -> str | None:
        raw, overlong = bytes(self._buffer), self._overlong
        self._buffer.clear()
        self._overlong = False
        if overlong:
            self.refused.append("too_long")
            return None
        if not raw:
            return None
        if any(b < 0x20 or b > 0x7E for b in raw):
            logger.warning("scanner line with non-printable bytes ignored (%d bytes)", len(raw))
            self.refused.append("not_printable")
            return None
        line = raw.decode("ascii").strip()
        if not line:
            return None
        now = self.clock()
        if self._last and self._last[0] == line and now - self._last[1] < self.debounce:
            return None
        self._last = (line, now)
        return line
