"""A TCP relay that can be told to fail the way a helper fails: ``stall`` (connections are
taken and bytes stop flowing both ways, as from a host that froze) and ``cut`` (every
connection is closed, new ones too, as from a host that went away). Used by bench.faults
and the tests of stalled helpers, in front of a database they created."""
from __future__ import annotations

import socket
import threading

POLL = 0.05  # how often a waiting relay thread looks at its stop flag


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.stalled = threading.Event()
        self.cutting = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, name="fault-proxy", daemon=True)]
        self._threads[0].start()

    def stall(self) -> None:
        self.stalled.set()

    def cut(self) -> None:
        """Close every connection now, and each new one until ``heal``."""
        self.cutting.set()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def heal(self) -> None:
        self.cutting.clear()
        self.stalled.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            if self.cutting.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pipe, args=(source, sink),
                                          name="fault-proxy-pipe", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(POLL)
        while not self._stop.is_set():
            if self.stalled.is_set():  # bytes wait where they are: a frozen host
                self._stop.wait(POLL)
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(sink)
        _close(source)

    def close(self) -> None:
        self._stop.set()
        self.heal()
        for thread in self._threads:
            thread.join(2)
        with self._lock:
            for sock in self._sockets:
                _close(sock)
        self.listener.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
