"""Settings. Every value can come from the environment (prefix ``LOCKER_``)."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LOCKER_{name}", default)


class Config:
    SECRET_KEY = _env("SECRET_KEY", "dev-only-change-me")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'instance' / 'locker.sqlite'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
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


class TestConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False
    SECRET_KEY = "test"
