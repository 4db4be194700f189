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
    MAX_DAYS_AHEAD = int(_env("MAX_DAYS_AHEAD", "30"))
    SYNC_PAGE_SIZE = 500


class TestConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False
    SECRET_KEY = "test"
