"""The scheduler's own small HTTP server on 127.0.0.1 (LOCKER_SCHEDULER_PORT; 0: none), for
the monitoring on its host: ``/healthz`` (the process answers), ``/readyz`` (the database
answers and the scheduler runs; 503 naming what does not) and ``/metrics`` (its jobs' runs,
times and failures, locker_app/metrics.py)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import Flask
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from locker_app.extensions import db


def _database(app: Flask) -> str:
    with app.app_context():
        try:
            db.session.execute(text("SELECT 1"))
            return "ok"
        except Exception as error:  # any failure is the answer here
            return f"not answering: {error.__class__.__name__}"
        finally:
            db.session.remove()


def serve(app: Flask, port: int, running) -> ThreadingHTTPServer:
    """Start the server in a thread; ``running()`` says whether the scheduler runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._json(200, {"status": "ok"})
            elif self.path == "/readyz":
                checks = {"database": _database(app),
                          "scheduler": "ok" if running() else "not running"}
                ready = all(result == "ok" for result in checks.values())
                self._json(200 if ready else 503, {"ready": ready, "checks": checks})
            else:
                self._json(404, {"error": "no such page"})

        def _json(self, status: int, body: dict) -> None:
            self._answer(status, json.dumps(body).encode(), "application/json")

        def _answer(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # asked every few seconds: not worth a log line
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="scheduler-http", daemon=True).start()
    return server
