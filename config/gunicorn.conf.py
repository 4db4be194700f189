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
# Longer than the controllers' long poll for remote commands (command_wait, 20 s), so a
# restart lets those requests end instead of killing them.
graceful_timeout = int(os.environ.get("LOCKER_GRACEFUL_TIMEOUT", "30"))
accesslog = os.environ.get("LOCKER_ACCESS_LOG") or None
loglevel = "warning"
