# gunicorn settings for the web site: gunicorn -c config/gunicorn.conf.py wsgi:app
# LOCKER_BIND, LOCKER_WORKERS and LOCKER_THREADS override the defaults.
import glob
import os
import shutil
import tempfile

bind = os.environ.get("LOCKER_BIND", "127.0.0.1:8000")
# Two processes per CPU core with two threads each: a process's threads share one
# interpreter lock, and a booking holding its turn waited for it behind three others
# (bench.city_scale, 8 clients on 2 cores: 1/4.0 to 1/4.7 of the bare endpoint's rate
# against 1/4.9 to 1/5.4 with 2 processes of 4 threads).
workers = int(os.environ.get("LOCKER_WORKERS") or min(8, 2 * (os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("LOCKER_THREADS", "2"))
# Longer than the controllers' sync interval, so a kept-alive connection is not closed
# just as a controller reuses it.
keepalive = 75
# X-Forwarded-Proto is believed from the trusted proxies only (as the app does for -For).
forwarded_allow_ips = os.environ.get("LOCKER_TRUSTED_PROXIES", "127.0.0.1,::1")
# Longer than the controllers' long poll for remote commands (command_wait, 20 s), so a
# restart lets those requests end instead of killing them.
graceful_timeout = int(os.environ.get("LOCKER_GRACEFUL_TIMEOUT", "30"))
accesslog = os.environ.get("LOCKER_ACCESS_LOG") or None
loglevel = "warning"

# Prometheus (locker_app/metrics.py): each worker writes its counts to files in this folder
# and any worker answers /metrics for all of them (prometheus_client's multiprocess mode).
# A new, empty folder for every start unless PROMETHEUS_MULTIPROC_DIR names one; a named
# one is emptied at start, as the library asks. Done when the master starts, before it
# makes its workers (reading this file changes nothing: bench.many_cabinets reads it).
_made_metrics_dir = None


def on_starting(server):
    global _made_metrics_dir
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
        for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
            os.remove(stale)
    else:
        _made_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="locker-metrics-")


def child_exit(server, worker):
    """A worker that ended: its gauges no longer count (its counters still do)."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
