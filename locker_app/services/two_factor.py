"""The staff accounts' optional second factor: a six-digit code from an authenticator app
(TOTP, RFC 6238, pyotp). A code is good for its 30 seconds and one step either side (a
phone's clock a little off), and only once."""
from __future__ import annotations

import io
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg

from locker_app.models import StaffUser, utcnow
from locker_app.services.timeutil import aware_utc

ISSUER = "Stadtpark-Schließfach"


def new_secret() -> str:
    return pyotp.random_base32()


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[at:at + 4] for at in range(0, len(secret), 4))


def setup_qr_svg(user: StaffUser, secret: str) -> str:
    """The QR code an authenticator app scans to learn the secret."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode("utf-8")


def matching_step(secret: str, code: str | None, now: datetime | None = None) -> int | None:
    """The time step whose code ``code`` is (this one or one either side); None if none."""
    code = "".join((code or "").split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    moment = aware_utc(now or utcnow())
    step = totp.timecode(moment)
    for candidate in (step, step - 1, step + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None


def check_code(user: StaffUser, code: str | None, now: datetime | None = None) -> bool:
    """Whether ``code`` is the account's current code, not used before; notes it as used."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True
