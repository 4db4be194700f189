"""Reading codes from a serial QR scanner (or a keypad): one code per CR or CR LF line."""
from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


class LineAssembler:
    """Turns raw bytes into accepted lines: empty lines and lines that are too long or not
    printable ASCII are dropped; the same code twice within ``debounce`` seconds counts once."""

    def __init__(self, max_length: int = 512, debounce: float = 1.0, clock=time.monotonic) -> None:
        self.max_length = max_length
        self.debounce = debounce
        self.clock = clock
        self._buffer = bytearray()
        self._overlong = False
        self._last: tuple[str, float] | None = None

    def feed(self, data: bytes) -> list[str]:
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
        if overlong or not raw:
            return None
        if any(b < 0x20 or b > 0x7E for b in raw):
            logger.warning("scanner line with non-printable bytes ignored (%d bytes)", len(raw))
            return None
        line = raw.decode("ascii").strip()
        if not line:
            return None
        now = self.clock()
        if self._last and self._last[0] == line and now - self._last[1] < self.debounce:
            return None
        self._last = (line, now)
        return line
