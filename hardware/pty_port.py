"""A pseudo-terminal pair that pyserial opens like a real serial port."""
from __future__ import annotations

import os
import tty


class PtyPort:
    """Owns both ends of a pty. Other processes open ``path`` (the slave side);
    we read and write ``master_fd``. We keep the slave open ourselves so the master
    never sees EIO while the other side closes and reopens the port."""

    def __init__(self) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        self.path = os.ttyname(self._slave_fd)
        os.set_blocking(self.master_fd, False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master_fd, view)
            except BlockingIOError:
                import select
                select.select([], [self.master_fd], [], 0.1)
                continue
            view = view[written:]

    def read_available(self) -> bytes:
        try:
            return os.read(self.master_fd, 4096)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass
