"""Prometheus metrics for the town's monitoring, at ``/metrics`` with a bearer token
(LOCKER_METRICS_TOKEN; without one the path does not exist).

What a process counts (requests, bookings, refusals, limit hits, the scheduler's jobs) is
kept by prometheus_client; under gunicorn each worker writes it to files in
PROMETHEUS_MULTIPROC_DIR (config/gunicorn.conf.py makes one) and any worker answers for all.
What the database knows (the mail queue, the cabinets as their controllers reported them,
refused scans) is read when Prometheus asks, in a few short statements.
"""
from __future__ import annotations

import hmac
import json
import os
import time
from functools import wraps

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from sqlalchemy import func, select

from locker_app.extensions import db
from locker_app.limits import limiter
from locker_app.logs import request_seconds
from locker_app.models import (Cabinet, Controller, DailyEvents, OutgoingMail, Reservation,
                               ReservationState, utcnow)
from locker_app.services.timeutil import to_local

REQUESTS = Counter("locker_http_requests", "Requests answered, by endpoint, method and status.",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("locker_http_request_duration_seconds", "Time to answer a request.",
                    ["endpoint"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
BOOKINGS = Counter("locker_bookings", "Reservations made, by who made them.", ["actor"])
REFUSALS = Counter("locker_booking_refusals", "Bookings refused, by reason.", ["reason"])
LIMIT_HITS = Counter("locker_rate_limit_hits", "Requests refused by a rate limit.", ["limit"])
JOB_RUNS = Counter("locker_job_runs", "Scheduled job runs, by job and outcome.",
                   ["job", "outcome"])
JOB_DURATION = Histogram("locker_job_duration_seconds", "Time a scheduled job took.", ["job"],
                         buckets=(.01, .05, .1, .5, 1, 5, 10, 30, 60, 300))
JOB_LAST_SUCCESS = Gauge("locker_job_last_success_timestamp_seconds",
                         "When a scheduled job last ended well (Unix time).", ["job"],
                         multiprocess_mode="max")

# Whether this process's metrics live in files (gunicorn's workers), as prometheus_client
# decided when they were made above.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

bp = Blueprint("metrics", __name__)
limiter.exempt(bp)


def _registry() -> CollectorRegistry:
    """A registry for one answer: this process's metrics (or every worker's, under
    gunicorn) and what the database knows."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return registry


class _ThisProcess:
    def collect(self):
        yield from REGISTRY.collect()


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("A metrics token is needed.\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'})
    response = Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


class DatabaseCollector:
    """The mail queue, the cabinets and refused scans, read when Prometheus asks."""

    def collect(self):
        now = utcnow()
        session = db.session
        queued = GaugeMetricFamily("locker_mails_queued", "Mails not sent yet.")
        failing = GaugeMetricFamily("locker_mails_failing",
                                    "Mails not sent yet after at least one failed attempt.")
        oldest = GaugeMetricFamily("locker_mail_oldest_queued_seconds",
                                   "Age of the oldest mail not sent yet.")
        row = session.execute(select(
            func.count(), func.count(OutgoingMail.last_error), func.min(OutgoingMail.created_at))
            .where(OutgoingMail.sent_at.is_(None))).one()
        queued.add_metric([], row[0])
        failing.add_metric([], row[1])
        oldest.add_metric([], (now - row[2]).total_seconds() if row[2] else 0)
        yield from (queued, failing, oldest)

        active = GaugeMetricFamily("locker_reservations_active",
                                   "Reservations holding an item, by state.", labels=["state"])
        counts = dict(session.execute(select(Reservation.state, func.count()).where(
            Reservation.state.in_(ReservationState.ACTIVE)).group_by(Reservation.state)).all())
        for state in ReservationState.ACTIVE:
            active.add_metric([state], counts.get(state, 0))
        yield active

        yield from self._fleet(session, now)

    def _fleet(self, session, now):
        labels = ["cabinet", "controller"]
        seen = GaugeMetricFamily("locker_controller_last_seen_seconds",
                                 "Seconds since the controller was last heard of.", labels=labels)
        doors = GaugeMetricFamily("locker_controller_doors_open",
                                  "Doors open, as the controller last reported.", labels=labels)
        outbox = GaugeMetricFamily("locker_controller_outbox",
                                   "Events waiting in the controller's outbox.", labels=labels)
        boards = GaugeMetricFamily("locker_controller_boards_offline",
                                   "Lock boards the controller cannot reach.", labels=labels)
        errors = GaugeMetricFamily("locker_controller_board_errors",
                                   "Failed board exchanges since the controller started.",
                                   labels=labels)
        info = GaugeMetricFamily("locker_controller_info", "The controller's software version.",
                                 labels=labels + ["version"])
        latency = SummaryMetricFamily(
            "locker_controller_scan_to_unlock_seconds",
            "From a code read at the cabinet to its door's pulse, since the controller started.",
            labels=labels)
        controllers = session.execute(
            select(Controller, Cabinet.name).join(Cabinet, Controller.cabinet_id == Cabinet.id)
            .where(Controller.retired_at.is_(None), Cabinet.retired_at.is_(None))).all()
        for controller, cabinet in controllers:
            names = [cabinet, controller.name]
            if controller.last_seen_at:
                seen.add_metric(names, (now - controller.last_seen_at).total_seconds())
            try:
                reported = json.loads(controller.reported_status or "{}")
            except ValueError:
                reported = {}
            if not isinstance(reported, dict):
                reported = {}
            doors.add_metric(names, len(reported.get("doors_open") or []))
            boards.add_metric(names, len(reported.get("boards_offline") or []))
            for family, key in ((outbox, "outbox"), (errors, "board_errors")):
                if isinstance(reported.get(key), (int, float)):
                    family.add_metric(names, reported[key])
            info.add_metric(names + [str(reported.get("version") or "unknown")], 1)
            timed = reported.get("scan_to_unlock")
            if isinstance(timed, dict) and all(isinstance(timed.get(k), (int, float))
                                               for k in ("count", "sum")):
                latency.add_metric(names, count_value=timed["count"], sum_value=timed["sum"])
        yield from (seen, doors, outbox, boards, errors, info, latency)

        # From the statistics' daily aggregates (kept current by the scheduler every 10
        # minutes): one indexed read, however long the history.
        refused = GaugeMetricFamily(
            "locker_scans_refused_today", "Scans refused at the cabinet today, by reason.",
            labels=["cabinet", "reason"])
        for cabinet, reason, count in session.execute(
                select(Cabinet.name, DailyEvents.reason, func.sum(DailyEvents.count))
                .join(Cabinet, DailyEvents.cabinet_id == Cabinet.id)
                .where(DailyEvents.day == to_local(now).date(),
                       DailyEvents.kind == "scan_refused")
                .group_by(Cabinet.name, DailyEvents.reason)):
            refused.add_metric([cabinet, reason or "unknown"], count)
        yield refused


def count_requests(app: Flask) -> None:
    """Every request counted by its endpoint (the route's name: a bounded set), method and
    status, and timed from the start the request's log line takes (locker_app/logs.py)."""

    @app.after_request
    def counted(response):
        endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        if response.status_code == 429:
            LIMIT_HITS.labels(endpoint).inc()
        seconds = request_seconds()
        if seconds is not None:
            LATENCY.labels(endpoint).observe(seconds)
        return response


def counts_bookings(create):
    """For the booking service: each reservation made, by its actor, and each refusal,
    sold out or by a rule (a refusal from the sold-out memo is counted by the memo)."""
    from locker_app.services.errors import DomainError, SoldOut

    @wraps(create)
    def counted(*args, **kwargs):
        try:
            reservation = create(*args, **kwargs)
        except SoldOut:
            REFUSALS.labels("sold_out").inc()
            raise
        except DomainError:
            REFUSALS.labels("rules").inc()
            raise
        BOOKINGS.labels(kwargs.get("actor", "visitor")).inc()
        return reservation
    return counted


def timed_job(name: str):
    """A context for one run of a scheduled job: its time, its outcome."""
    return _JobRun(name)


class _JobRun:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind, error, trace):
        JOB_DURATION.labels(self.name).observe(time.perf_counter() - self.started)
        JOB_RUNS.labels(self.name, "failed" if kind else "done").inc()
        if kind is None:
            JOB_LAST_SUCCESS.labels(self.name).set(time.time())
        return False
