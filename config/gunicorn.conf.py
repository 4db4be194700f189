# gunicorn settings for the web site: gunicorn -c config/gunicorn.conf.py wsgi:app
# LOCKER_BIND and LOCKER_WORKERS override the defaults.
import os

bind = os.environ.get("LOCKER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("LOCKER_WORKERS", "2"))
worker_class = "gthread"
threads = 4
# Longer than the controllers' sync interval, so a kept-alive connection is not closed
# just as a controller reuses it.
keepalive = 75
graceful_timeout = 5
accesslog = os.environ.get("LOCKER_ACCESS_LOG") or None
loglevel = "warning"
