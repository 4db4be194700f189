"""A small HTTP server answering on a thread of its own: the emulated locker's page, the
cabinet screen's page and the controller's health (controller/display.py, health.py)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ServerThread:
    """``handler`` served on ``host:port`` (0: a free one, then in ``url``) once started."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler],
                 name: str) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=name,
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
