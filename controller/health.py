"""The controller's health for the monitoring and systemd's neighbours, on a small HTTP
server of its own (``health_http`` in controller.toml; empty: none), as the web site
answers: ``/healthz`` (the process answers) and ``/readyz`` (the lock boards answer its
polls and the server its calls; 503 and the failing check named otherwise)."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Callable

from hardware.http_thread import ServerThread


class HealthServer(ServerThread):
    def __init__(self, host: str, port: int, checks: Callable[[], dict[str, str]]) -> None:
        """``checks``: each check's name and "ok" or what is wrong."""
        self.checks = checks
        super().__init__(host, port, self._handler(), "health")

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == "/healthz":
                    self._answer(200, {"status": "ok"})
                elif self.path == "/readyz":
                    checks = owner.checks()
                    ready = all(result == "ok" for result in checks.values())
                    self._answer(200 if ready else 503, {"ready": ready, "checks": checks})
                else:
                    self._answer(404, {"error": "no such page"})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # asked every few seconds: not worth a log line
                pass
        return Handler
