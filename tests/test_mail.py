"""Mail goes out through a real SMTP conversation (aiosmtpd as the sink) from the mail job,
never from the visitor's request; a mail server that is down loses nothing."""
import email
import socket
from datetime import datetime, timedelta
from email import policy

import icalendar
import pytest
from aiosmtpd.controller import Controller
from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import OutgoingMail
from locker_app.scheduler import run_jobs


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(app):
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port,
                      PUBLIC_BASE_URL="https://locker.example.org")
    yield sink
    controller.stop()


def book(client, **extra):
    data = {"date": "2026-06-10", "start": "10:30", "end_date": "2026-06-10", "end": "12:00",
            "name": "Erika", "email": "erika@example.org", **extra}
    response = client.post("/s/stadtpark/reserve/rollator", data=data)
    assert response.status_code == 302
    return response.headers["Location"]


@freeze_time("2026-06-10 06:00:00")
def test_confirmation_with_link_qr_and_calendar_entry(app, client, smtp):
    location = book(client)
    assert smtp.messages == []  # nothing was sent inside the request
    assert run_jobs(app, ("send_mails",)) == {"send_mails": 1}
    assert run_jobs(app, ("send_mails",)) == {"send_mails": 0}
    [message] = smtp.messages
    assert message["To"] == "erika@example.org"
    assert message["Subject"] == "Ihre Reservierung am Stadtpark-Schließfach"
    text = message.get_body(("plain",)).get_content()
    assert "Hallo Erika," in text and "https://locker.example.org" + location in text
    assert "10.06.2026 zwischen 10:30 und 11:30 Uhr" in text
    parts = {part.get_filename(): part for part in message.iter_attachments()}
    assert parts["qr-code.png"].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    calendar = icalendar.Calendar.from_ical(parts["reservierung.ics"].get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2026, 6, 10, 8, 30, tzinfo=event.decoded("dtstart").tzinfo)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=90)
    assert str(event["url"]).endswith(location)


@freeze_time("2026-06-10 06:00:00")
def test_english_visitors_get_english_mail(app, smtp):
    client = app.test_client()
    client.get("/lang/en")
    book(client)
    run_jobs(app, ("send_mails",))
    assert smtp.messages[0]["Subject"] == "Your reservation at the Stadtpark locker"
    assert "Hello Erika," in smtp.messages[0].get_body(("plain",)).get_content()


def test_a_mail_server_that_is_down_loses_nothing(app, client):
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(),
                      SMTP_TIMEOUT=2)
    with freeze_time("2026-06-10 06:00:00"):
        book(client)
        assert run_jobs(app, ("send_mails",)) == {"send_mails": 0}
    with app.app_context():
        mail = db.session.scalars(db.select(OutgoingMail)).one()
        assert mail.sent_at is None and mail.attempts == 1
        assert "Connection" in mail.last_error or "refused" in mail.last_error
        assert mail.next_attempt_at == datetime(2026, 6, 10, 6, 2)
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=app.config["SMTP_PORT"])
    controller.start()
    try:
        with freeze_time("2026-06-10 06:01:00"):  # not due yet
            assert run_jobs(app, ("send_mails",)) == {"send_mails": 0}
        with freeze_time("2026-06-10 06:02:00"):
            assert run_jobs(app, ("send_mails",)) == {"send_mails": 1}
    finally:
        controller.stop()
    assert len(sink.messages) == 1


@freeze_time("2026-06-10 08:31:00")  # 10:31 in Berlin: the window has begun
def test_a_confirmation_for_a_window_begun_does_not_say_to_cancel(app, client, smtp):
    """It said to cancel on the page also when that was no longer possible (issue 32)."""
    book(client)
    run_jobs(app, ("send_mails",))
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "stornieren" not in text
    assert ("Falls Sie doch nicht kommen, müssen Sie nichts tun: Der Rollator ist um 11:30 Uhr, "
            "wenn die Abholzeit endet, wieder für andere frei.") in text


@freeze_time("2026-06-10 06:00:00")
def test_a_confirmation_before_the_window_says_how_to_cancel(app, client, smtp):
    book(client)
    run_jobs(app, ("send_mails",))
    assert "stornieren" in smtp.messages[0].get_body(("plain",)).get_content()
