"""Settings. Every value can come from the environment (prefix ``LOCKER_``)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LOCKER_{name}", default)


def _flag(name: str, default: str) -> bool:
    return (_env(name, default) or "").strip().lower() in ("1", "true", "yes", "on")


# Secrets written in this repository (the example settings, the tests): never accepted.
# tests/test_staff_access.py finds every value written next to SECRET_KEY and checks it
# is refused, so a new one has to be added here or be weak by the rules of security.py.
KNOWN_SECRETS = frozenset({"dev-only-change-me", "change-me-to-a-long-random-string", "test"})


class Config:
    # Required outside the tests: create_app refuses to start without a real one.
    SECRET_KEY = _env("SECRET_KEY")
    # The largest request body (bytes): a controller's 200 events fit many times over.
    MAX_CONTENT_LENGTH = int(_env("MAX_CONTENT_LENGTH", str(1024 * 1024)))
    MAX_FORM_MEMORY_SIZE = 64 * 1024
    # Staff sessions: the cookie only over HTTPS (LOCKER_COOKIE_SECURE=0 for a plain-HTTP
    # demo), never readable by scripts, not sent along from other sites' forms.
    SESSION_COOKIE_SECURE = _flag("COOKIE_SECURE", "1")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # A staff session ends after this many minutes without a request.
    STAFF_IDLE_MINUTES = int(_env("STAFF_IDLE_MINUTES", "30"))
    # Failed logins within the window, per account and per client address, before refusing.
    LOGIN_MAX_FAILURES_PER_ACCOUNT = int(_env("LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"))
    LOGIN_MAX_FAILURES_PER_ADDRESS = int(_env("LOGIN_MAX_FAILURES_PER_ADDRESS", "20"))
    LOGIN_FAILURE_WINDOW_MINUTES = int(_env("LOGIN_FAILURE_WINDOW_MINUTES", "15"))
    # Administrators must set up a second factor (TOTP) before they may use any staff page.
    REQUIRE_2FA = _flag("REQUIRE_2FA", "0")
    # Reverse proxies in front of the site that set X-Forwarded-For (0: none).
    PROXY_COUNT = int(_env("PROXY_COUNT", "0"))
    # Their addresses (or networks): X-Forwarded-For is believed from these only.
    TRUSTED_PROXIES = _env("TRUSTED_PROXIES", "127.0.0.1,::1")
    # Rate limits (Flask-Limiter): storage shared by all web processes; memory:// for one.
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URL", "memory://")
    # Retry-After on a 429 only (locker_app/limits.py): Flask-Limiter's headers put one,
    # with the window's reset, on every answer of a limited page, a 503's included.
    RATELIMIT_HEADERS_ENABLED = False
    # Redis gone: log it and count in memory until it is back, rather than refuse everyone.
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_KEY_PREFIX = _env("RATELIMIT_KEY_PREFIX", "locker")
    # The longest wait for Redis (connect, and each answer): a Redis that takes the
    # connection and then says nothing is treated as gone (counted in memory meanwhile).
    REDIS_TIMEOUT_SECONDS = float(_env("REDIS_TIMEOUT_SECONDS", "0.5"))
    LIMIT_BOOKING_PER_ADDRESS = _env("LIMIT_BOOKING_PER_ADDRESS", "60 per hour")
    LIMIT_BOOKING_PER_PERSON = _env("LIMIT_BOOKING_PER_PERSON", "5 per hour;10 per day")
    LIMIT_LOGIN_PER_ADDRESS = _env("LIMIT_LOGIN_PER_ADDRESS", "30 per 15 minutes")
    LIMIT_CANCEL_PER_ADDRESS = _env("LIMIT_CANCEL_PER_ADDRESS", "30 per hour")
    LIMIT_REPORTS_PER_ADDRESS = _env("LIMIT_REPORTS_PER_ADDRESS", "10 per hour")
    LIMIT_LOOKUP_PER_ADDRESS = _env("LIMIT_LOOKUP_PER_ADDRESS", "10 per hour")
    LIMIT_LOOKUP_PER_EMAIL = _env("LIMIT_LOOKUP_PER_EMAIL", "3 per day")
    LIMIT_OPEN_DATA_PER_ADDRESS = _env("LIMIT_OPEN_DATA_PER_ADDRESS", "60 per hour")
    # Active reservations one client address may hold (many people may share one).
    ADDRESS_MAX_ACTIVE = int(_env("ADDRESS_MAX_ACTIVE", "10"))
    # A controller event timed further ahead of the server's clock is an anomaly.
    EVENT_CLOCK_AHEAD_MINUTES = int(_env("EVENT_CLOCK_AHEAD_MINUTES", "10"))
    # A cabinet not heard from this long raises an alert.
    CABINET_SILENT_MINUTES = int(_env("CABINET_SILENT_MINUTES", "10"))
    # The message broker for remote commands and the controllers' presence (docs/MQTT.md);
    # empty: none, the controllers' long poll carries the commands.
    MQTT_URL = _env("MQTT_URL", "")  # mqtt://127.0.0.1:1883
    # Controllers' long polls one process holds at once; the others are answered at once
    # and ask again a little later, so the public pages keep threads: one of a process's
    # two (config/gunicorn.conf.py), the other serves pages.
    LONG_POLLS_PER_PROCESS = int(_env("LONG_POLLS_PER_PROCESS", "1"))
    MQTT_TOPIC_PREFIX = _env("MQTT_TOPIC_PREFIX", "locker")
    MQTT_USERNAME = _env("MQTT_USERNAME", "")
    MQTT_PASSWORD = _env("MQTT_PASSWORD", "")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'instance' / 'locker.sqlite'}")
    # No pool_pre_ping: a connection idle a while is asked before use (see
    # locker_app._ping_idle_connections), one in steady use is not. The pool's time-out and
    # PostgreSQL's connect time-out come from DATABASE_TIMEOUT_SECONDS (create_app).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # The longest a visitor's request waits for the database: a connection from the pool,
    # the connect, a lock, one statement. Past it the visitor is told to try again in a
    # minute (503). The scheduler and the flask commands wait longer (their own work).
    DATABASE_TIMEOUT_SECONDS = float(_env("DATABASE_TIMEOUT_SECONDS", "3"))
    # Prometheus metrics at /metrics for this bearer token; without one the path is 404.
    # "json": one JSON object per log line and one line per request (docs/monitoring.md).
    LOG_FORMAT = _env("LOG_FORMAT", "text")
    METRICS_TOKEN = _env("METRICS_TOKEN", "")
    # The scheduler's health and metrics on 127.0.0.1:<port> (0: none).
    SCHEDULER_PORT = int(_env("SCHEDULER_PORT", "0"))
    # Private Ed25519 keys that sign the codes in the QR, one file per key id.
    SIGNING_KEY_DIR = _env("SIGNING_KEY_DIR", str(PROJECT_ROOT / "instance" / "signing-keys"))
    # Base of the links in the QR codes (what the phone camera opens).
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "")
    TIMEZONE = _env("TIMEZONE", "Europe/Berlin")
    BABEL_DEFAULT_LOCALE = "de"
    BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
    LANGUAGES = ("de", "en")
    # How far in the past a pickup time may lie when booking (the visitor is standing there).
    PICKUP_GRACE_MINUTES = 15
    SYNC_PAGE_SIZE = 500
    # Mail: "smtp" in production; "console" prints mails to the log (the demo).
    MAIL_BACKEND = _env("MAIL_BACKEND", "console")
    MAIL_FROM = _env("MAIL_FROM", "Stadtpark-Schliessfach <locker@localhost>")
    SMTP_HOST = _env("SMTP_HOST", "localhost")
    SMTP_PORT = int(_env("SMTP_PORT", "25"))
    SMTP_USER = _env("SMTP_USER", "")
    SMTP_PASSWORD = _env("SMTP_PASSWORD", "")
    SMTP_STARTTLS = _env("SMTP_STARTTLS", "0") in ("1", "true", "yes")
    SMTP_TIMEOUT = float(_env("SMTP_TIMEOUT", "20"))
    PICKUP_REMINDER_MINUTES = int(_env("PICKUP_REMINDER_MINUTES", "60"))
    # Name and e-mail address are erased this many days after a reservation ends.
    ERASE_AFTER_DAYS = int(_env("ERASE_AFTER_DAYS", "30"))
    # The open-data export's licence (Datenlizenz Deutschland - Namensnennung 2.0).
    OPEN_DATA_LICENCE = _env("OPEN_DATA_LICENCE", "dl-de/by-2-0")
    OPEN_DATA_LICENCE_URL = _env("OPEN_DATA_LICENCE_URL", "https://www.govdata.de/dl-de/by-2-0")
    # Who runs the service, for the Impressum, the privacy and the accessibility pages.
    # Empty ones show as "not filled in" on those pages; the demo fills in example values.
    OPERATOR_NAME = _env("OPERATOR_NAME", "")
    OPERATOR_ADDRESS = _env("OPERATOR_ADDRESS", "")  # lines separated by ";"
    OPERATOR_REPRESENTATIVE = _env("OPERATOR_REPRESENTATIVE", "")
    OPERATOR_EMAIL = _env("OPERATOR_EMAIL", "")
    OPERATOR_PHONE = _env("OPERATOR_PHONE", "")
    PRIVACY_OFFICER = _env("PRIVACY_OFFICER", "")  # the data protection officer's contact
    SUPERVISORY_AUTHORITY = _env(
        "SUPERVISORY_AUTHORITY", "Unabhängiges Landeszentrum für Datenschutz Schleswig-Holstein "
        "(ULD), Holstenstraße 98, 24103 Kiel, https://www.datenschutzzentrum.de")
    ACCESSIBILITY_ENFORCEMENT = _env(
        "ACCESSIBILITY_ENFORCEMENT", "Beschwerdestelle für barrierefreie Informationstechnik "
        "bei der Landesbeauftragten für Menschen mit Behinderung Schleswig-Holstein, "
        "Karolinenweg 1, 24105 Kiel")


class TestConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False
    SECRET_KEY = "test"
    SESSION_COOKIE_SECURE = False
