"""Mails to visitors: composed from templates in the visitor's language, sent by the mail
job (never inside a visitor's request), retried with back-off."""
from __future__ import annotations

import io
import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import icalendar
import qrcode
import qrcode.image.pure
from flask import current_app, render_template
from flask_babel import force_locale, gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from locker_app.models import ControllerEvent, OutgoingMail, Reservation
from locker_app.services.timeutil import aware_utc, to_local

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=6)


def reservation_url(reservation: Reservation, fallback_base: str = "http://localhost:5000") -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or fallback_base
    return f"{base.rstrip('/')}/r/{reservation.code}"


def qr_png(data: str) -> bytes:
    image = qrcode.make(data, image_factory=qrcode.image.pure.PyPNGImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def calendar_entry(reservation: Reservation, url: str) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Stadtpark locker//DE")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"reservation-{reservation.id}@stadtpark-locker")
    event.add("dtstamp", aware_utc(reservation.created_at))
    event.add("dtstart", aware_utc(reservation.start_at))
    event.add("dtend", aware_utc(reservation.end_at))
    event.add("summary", _("%(item)s from the %(site)s locker",
                           item=reservation.item.item_type.name(reservation.locale),
                           site=reservation.compartment.cabinet.site.name))
    event.add("location", f"{reservation.compartment.cabinet.site.name}, "
                          f"{reservation.compartment.cabinet.name}")
    event.add("url", url)
    event.add("description", url)
    calendar.add_component(event)
    return calendar.to_ical()


SUBJECTS = {
    "confirmation": lambda: _("Your reservation at the Stadtpark locker"),
    "reminder": lambda: _("Reminder: your pickup at the Stadtpark locker"),
    "overdue": lambda: _("Please bring back what you borrowed"),
    "cancelled_by_staff": lambda: _("Your reservation had to be cancelled"),
    "links": lambda: _("The links to your reservations"),
}


def _links(reservation: Reservation) -> list[dict]:
    """Every active reservation of the same person, for the mail a visitor asked for."""
    from sqlalchemy.orm import object_session

    from locker_app.services.lookup import active_for_address
    return [{"item": r.item.item_type.name(reservation.locale), "start": to_local(r.start_at),
             "pickup_until": to_local(r.pickup_until), "url": reservation_url(r),
             "number": r.numeric_code}
            for r in active_for_address(object_session(reservation), reservation.email)]


def compose(reservation: Reservation, kind: str) -> EmailMessage:
    from locker_app.services.reservations import can_cancel
    url = reservation_url(reservation)
    with force_locale(reservation.locale):
        body = render_template(f"mail/{kind}.txt", reservation=reservation, url=url,
                               start=to_local(reservation.start_at), end=to_local(reservation.end_at),
                               pickup_until=to_local(reservation.pickup_until),
                               item=reservation.item.item_type.name(reservation.locale),
                               links=_links(reservation) if kind == "links" else [],
                               # (A window begun when the mail goes out can no longer be
                               # cancelled: the mail does not say to.)
                               can_cancel=can_cancel(reservation))
        subject = SUBJECTS[kind]()
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = current_app.config["MAIL_FROM"]
        message["To"] = reservation.email
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="stadtpark-locker")
        message.set_content(body)
        if kind == "confirmation":
            message.add_attachment(qr_png(url), maintype="image", subtype="png",
                                   filename="qr-code.png")
            message.add_attachment(calendar_entry(reservation, url), maintype="text",
                                   subtype="calendar", filename="reservierung.ics")
    return message


def compose_alert(mail: OutgoingMail, event: ControllerEvent) -> EmailMessage:
    """An alert for the staff on duty, in German (the staff's language)."""
    from locker_app.services.alerts import alert_title
    controller = event.controller
    base = (current_app.config.get("PUBLIC_BASE_URL") or "http://localhost:5000").rstrip("/")
    with force_locale("de"):
        title = alert_title(event.kind)
        cabinet = controller.cabinet
        body = render_template("mail/alert.txt", title=title, event=event, cabinet=cabinet,
                               at=to_local(event.occurred_at), url=f"{base}/staff/alerts")
        message = EmailMessage()
        message["Subject"] = f"{title}: {cabinet.site.name}, {cabinet.name}"
        message["From"] = current_app.config["MAIL_FROM"]
        message["To"] = mail.to_address
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="stadtpark-locker")
        message.set_content(body)
    return message


class SmtpMailer:
    def __init__(self, config) -> None:
        self.config = config

    def send(self, message: EmailMessage) -> None:
        c = self.config
        with smtplib.SMTP(c["SMTP_HOST"], c["SMTP_PORT"], timeout=c["SMTP_TIMEOUT"]) as smtp:
            if c["SMTP_STARTTLS"]:
                smtp.starttls()
            if c["SMTP_USER"]:
                smtp.login(c["SMTP_USER"], c["SMTP_PASSWORD"])
            smtp.send_message(message)


class ConsoleMailer:
    """For the demo: the mail goes to the log instead of a mail server."""

    def send(self, message: EmailMessage) -> None:
        body = message.get_body(("plain",))
        logger.warning("mail to %s: %s\n%s", message["To"], message["Subject"],
                       body.get_content() if body else "")


def mailer_from_config(config):
    return SmtpMailer(config) if config["MAIL_BACKEND"] == "smtp" else ConsoleMailer()


# The mail server could not be reached, or took the connection and stopped answering: the
# other mails of this run would only wait the same SMTP_TIMEOUT each.
SERVER_UNREACHABLE = (TimeoutError, ConnectionError, smtplib.SMTPConnectError,
                      smtplib.SMTPServerDisconnected)


def send_due_mails(session: Session, mailer, now: datetime, limit: int = 50) -> int:
    """Send what is due. A mail is leased before sending, so two senders never both take
    it; a failure is retried later with a growing pause."""
    due = session.scalars(select(OutgoingMail.id).where(
        OutgoingMail.sent_at.is_(None), OutgoingMail.next_attempt_at <= now)
        .order_by(OutgoingMail.id).limit(limit)).all()
    sent = 0
    for mail_id in due:
        leased = session.execute(update(OutgoingMail).where(
            OutgoingMail.id == mail_id, OutgoingMail.sent_at.is_(None),
            OutgoingMail.next_attempt_at <= now).values(next_attempt_at=now + LEASE))
        session.commit()
        if leased.rowcount != 1:
            continue
        mail = session.get(OutgoingMail, mail_id)
        try:
            if mail.controller_event_id is not None:
                mailer.send(compose_alert(mail, session.get(ControllerEvent,
                                                            mail.controller_event_id)))
            else:
                reservation = session.get(Reservation, mail.reservation_id)
                if not reservation.email:
                    raise ValueError("the reservation has no e-mail address (any more)")
                mailer.send(compose(reservation, mail.kind))
        except Exception as error:  # any failure of composing or sending: retry later
            mail.attempts += 1
            mail.last_error = f"{error.__class__.__name__}: {error}"[:300]
            mail.next_attempt_at = now + min(timedelta(minutes=2 ** mail.attempts), MAX_BACKOFF)
            logger.warning("mail %s (%s) failed, attempt %d: %s", mail.id, mail.kind,
                           mail.attempts, mail.last_error)
            if isinstance(error, SERVER_UNREACHABLE):
                session.commit()
                break  # the rest waits for the next run, not SMTP_TIMEOUT each
        else:
            mail.sent_at = now
            sent += 1
        session.commit()
    return sent
