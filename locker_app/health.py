"""Health and readiness for the town's IT (nginx, systemd, monitoring): cheap enough to ask
every few seconds, without a session and without rate limits.

``/healthz``: the process lives and answers (nothing else is asked).
``/readyz``: the database answers, and Redis and the broker where they are configured;
a JSON body names each check, 503 when one fails."""
from __future__ import annotations

import socket

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from locker_app.extensions import db
from locker_app.limits import limiter

bp = Blueprint("health", __name__)
limiter.exempt(bp)  # asked every few seconds by the monitoring, never refused
# How long a readiness check waits for the broker to take a connection.
BROKER_CHECK_SECONDS = 1.0


@bp.get("/healthz")
def healthz():
    return _uncached(jsonify(status="ok"))


@bp.get("/readyz")
def readyz():
    checks = {"database": _database()}
    config = current_app.config
    if config["RATELIMIT_STORAGE_URI"].startswith(("redis", "rediss")):
        checks["redis"] = _redis()
    if config.get("MQTT_URL"):
        checks["broker"] = _broker(config["MQTT_URL"])
    ready = all(result == "ok" for result in checks.values())
    response = jsonify(ready=ready, checks=checks)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "10"
    return _uncached(response)


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as error:  # any failure is the answer here, said in the body
        db.session.rollback()
        return f"not answering: {error.__class__.__name__}"


def _redis() -> str:
    try:  # limits' own health check, with the client's time-outs (LOCKER_REDIS_TIMEOUT_SECONDS)
        return "ok" if limiter.storage.check() else "not answering"
    except Exception as error:  # any failure is the answer here
        return f"not answering: {error.__class__.__name__}"


def _broker(url: str) -> str:
    from signed_code.remote import broker_address
    try:
        socket.create_connection(broker_address(url), timeout=BROKER_CHECK_SECONDS).close()
        return "ok"
    except OSError as error:
        return f"not reachable: {error.__class__.__name__}"


def _uncached(response):
    response.headers["Cache-Control"] = "no-store"
    return response
