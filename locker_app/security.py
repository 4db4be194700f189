"""What every response and every start-up must get right: a real secret, safe cookies,
security headers, and redirects that stay on this site."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from locker_app.config import KNOWN_SECRETS

# No inline script or style anywhere: our pages load their own files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class ConfigurationError(RuntimeError):
    """A setting that must be fixed before the site may start; the message says how."""


# A secret shorter than this, or made of fewer different characters, is too easy to guess.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARACTERS = 8


def secret_weakness(secret: object) -> str | None:
    """Why ``secret`` must not sign sessions, in a sentence; None when it may."""
    if not secret:
        return "LOCKER_SECRET_KEY is missing."
    secret = str(secret)
    if secret.strip() in KNOWN_SECRETS:
        return "LOCKER_SECRET_KEY is a published example value."
    if any(ch.isspace() for ch in secret):
        return "LOCKER_SECRET_KEY contains spaces or line breaks (a copying mistake?)."
    if len(secret) < MIN_SECRET_LENGTH:
        return f"LOCKER_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters."
    if len(set(secret)) < MIN_SECRET_DISTINCT_CHARACTERS:
        return "LOCKER_SECRET_KEY repeats a few characters only."
    return None


def check_secret(app: Flask) -> None:
    """Refuse to start with a secret that a stranger could guess: staff sessions signed
    with it could be forged."""
    if app.config.get("TESTING"):
        return
    weakness = secret_weakness(app.config.get("SECRET_KEY"))
    if weakness:
        raise ConfigurationError(
            f"{weakness} Staff sessions signed with it could be forged. Set it to a long "
            "random value, for example the output of: "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'")


class TrustedProxyFix:
    """Werkzeug's ProxyFix, for requests that come from one of the trusted proxies only.
    A client that reaches the site past the proxy (gunicorn's port open on the network)
    and sends its own X-Forwarded-For is taken at its own address: on main it was
    believed, so every booking could come from a made-up address and no limit applied."""

    def __init__(self, app, count: int, trusted: str) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=count, x_proto=count, x_host=count)
        self.trusted = [ipaddress.ip_network(part.strip(), strict=False)
                        for part in trusted.split(",") if part.strip()]

    def from_a_proxy(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, environ, start_response):
        if self.from_a_proxy(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def add_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None. Browsers drop tabs and
    newlines and read a backslash as a slash, so ``/\\t/evil`` would leave the site."""
    if not target or len(target) > 2000:
        return None
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
