"""The scheduled jobs, run by one dedicated process: ``python -m locker_app.scheduler``.

Why one process and not a scheduler in every gunicorn worker: web workers come and go and
would each run every job. The jobs are also safe to run twice (conditional updates,
unique mails, leased sending), so a second scheduler started by mistake does no harm.
"""
from __future__ import annotations

import logging
import signal
import sys
from datetime import timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from locker_app.extensions import db
from locker_app.metrics import timed_job
from locker_app.models import utcnow
from locker_app.services import alerts, lifecycle, mail, reports, usage

logger = logging.getLogger(__name__)


def run_jobs(app: Flask, names: tuple[str, ...] | None = None) -> dict[str, int]:
    """Run the named jobs (all by default) once, now; return what each changed."""
    results = {}
    for name, job in JOBS.items():
        if names and name not in names:
            continue
        with app.app_context():
            try:
                with timed_job(name):
                    results[name] = job(app)
            except Exception:  # a job boundary: log it, the next run tries again
                logger.exception("job %s failed", name)
                db.session.rollback()
                results[name] = -1
            finally:
                db.session.remove()
    return results


JOBS = {
    "expire_no_shows": lambda app: lifecycle.expire_no_shows(db.session, utcnow()),
    "mark_overdue": lambda app: lifecycle.mark_overdue(db.session, utcnow()),
    "pickup_reminders": lambda app: lifecycle.queue_pickup_reminders(
        db.session, utcnow(), timedelta(minutes=app.config["PICKUP_REMINDER_MINUTES"])),
    "send_mails": lambda app: mail.send_due_mails(db.session, mail.mailer_from_config(app.config),
                                                  utcnow()),
    "erase_personal_data": lambda app: lifecycle.erase_personal_data(
        db.session, utcnow(), app.config["ERASE_AFTER_DAYS"]) + reports.erase_contacts(
        db.session, utcnow(), app.config["ERASE_AFTER_DAYS"]),
    "silent_cabinets": lambda app: alerts.raise_silent_cabinets(
        db.session, utcnow(), timedelta(minutes=app.config["CABINET_SILENT_MINUTES"])),
    # The statistics' daily aggregates of yesterday and today.
    "daily_statistics": lambda app: usage.keep_current(db.session, utcnow()),
}
INTERVALS = {"expire_no_shows": 60, "mark_overdue": 60, "pickup_reminders": 60,
             "send_mails": 10, "erase_personal_data": 3600, "silent_cabinets": 60,
             "daily_statistics": 600}


def build_scheduler(app: Flask) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    for name, seconds in INTERVALS.items():
        scheduler.add_job(run_jobs, "interval", seconds=seconds, args=(app, (name,)), id=name,
                          max_instances=1, coalesce=True, next_run_time=utcnow())
    return scheduler


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    from locker_app import create_app
    from locker_app.security import ConfigurationError
    try:
        app = create_app()
    except ConfigurationError as error:
        print(f"The scheduler cannot start: {error}", file=sys.stderr)
        return 2
    scheduler = build_scheduler(app)
    if app.config["SCHEDULER_PORT"]:
        # Its health and its jobs' metrics, for the monitoring on this host only.
        from locker_app.scheduler_http import serve
        serve(app, app.config["SCHEDULER_PORT"], lambda: scheduler.running)
    presence = None
    if app.config.get("MQTT_URL"):
        from locker_app.services.broker import PresenceListener
        presence = PresenceListener(app).start()  # the controllers' presence, from the broker
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: scheduler.shutdown(wait=False))
    logger.info("scheduler started: %s", ", ".join(INTERVALS))
    try:
        scheduler.start()
    except KeyboardInterrupt:
        pass
    finally:
        if presence is not None:
            presence.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
