"""What the visitor reads and hears at the cabinet: the controller's character display
(through a real pty, read by the display emulator) and the page for the cabinet's screen."""
import io
import re
import textwrap
import wave
from datetime import datetime, timedelta, timezone

import pytest
import requests

from controller.display import Display, display_rows, tone_wav
from controller.display_text import LANGUAGES, REFUSAL_MESSAGES, TEXTS, Message, common_params
from hardware.emulator import DisplayEmulator, ScannerEmulator
from locker_app.extensions import db
from locker_app.models import Reservation
from locker_app.services.timeutil import to_local
from tests.conftest import wait_until
from tests.test_end_to_end import book, reservation_id_of

SAMPLE = {"compartment": 12, "time": "09:00", **common_params("040 123 456 78", True)}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_message_has_both_languages_and_its_title_fits_two_display_rows(key):
    for language in LANGUAGES:
        title, hint = Message(key, params=SAMPLE).text(language)
        assert title and hint
        assert len(textwrap.wrap(title, 20)) <= 2, (language, title)


def test_every_refusal_has_a_message():
    assert set(REFUSAL_MESSAGES.values()) <= set(TEXTS)


def test_german_only_fills_the_rows_with_the_hint_and_english_gets_its_own_rows():
    german = display_rows(Message("cancelled"), 20, 4, SAMPLE)
    assert german == ["Diese Reservierung", "ist storniert", "Bitte reservieren", "Sie neu."]
    both = display_rows(Message("too_early", "en", params={"time": "09:00"}), 20, 4, SAMPLE)
    assert both == ["Zu früh: Abholung ab", "09:00 Uhr", "Too early: pickup", "from 09:00"]


def test_the_tones_are_short_valid_wave_files_and_differ():
    yes, no = tone_wav("yes"), tone_wav("no")
    for data in (yes, no):
        with wave.open(io.BytesIO(data)) as sound:
            assert sound.getframerate() == 8000
            assert 0.2 < sound.getnframes() / 8000 < 0.6
    assert yes != no


# Through the controller -----------------------------------------------------------------------

@pytest.fixture
def screen():
    display = DisplayEmulator()
    yield display
    display.close()


def shows(screen, words: str, timeout: float = 6.0) -> bool:
    return screen.wait_for(lambda d: words in " ".join(r for r in d.rows if r), timeout)


def book_in(server: str, language: str, minutes_from_now: int = -1) -> str:
    start = to_local(datetime.now(timezone.utc) + timedelta(minutes=minutes_from_now))
    end = start + timedelta(hours=1)
    response = requests.post(f"{server}/s/stadtpark/reserve/bollerwagen", data={
        "date": start.strftime("%Y-%m-%d"), "start": start.strftime("%H:%M"),
        "end_date": end.strftime("%Y-%m-%d"), "end": end.strftime("%H:%M"), "name": "Erika"},
        headers={"Accept-Language": language}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return server + response.headers["Location"]


def synced(controller, rid):
    controller.sync_now()
    wait_until(lambda: controller.store.reservation(rid), message="reservation synced")


def test_the_display_says_what_happens_from_scan_to_closed_door(app, live_server, emulator,
                                                                 scanner, screen, make_controller):
    controller = make_controller(display_port=screen.port)
    assert shows(screen, "Bitte Code scannen"), screen.rows
    url = book(live_server, "bollerwagen")
    synced(controller, reservation_id_of(app, url))
    scanner.scan(url)
    assert shows(screen, "Fach 5 öffnet sich"), screen.rows
    assert screen.tones == ["yes"]
    assert emulator.wait_for(lambda e: not e.door_closed(5), timeout=5)
    assert shows(screen, "Bitte Tür schließen"), screen.rows
    emulator.close_door(5)
    assert shows(screen, "Danke! Viel Freude"), screen.rows


def test_refusals_are_told_in_words_with_the_low_tone(app, live_server, emulator, scanner, screen,
                                                      make_controller):
    controller = make_controller(display_port=screen.port)
    early = book(live_server, "bollerwagen", minutes_from_now=120)
    rid = reservation_id_of(app, early)
    synced(controller, rid)
    with app.app_context():
        start = to_local(db.session.get(Reservation, rid).start_at.replace(tzinfo=timezone.utc))
    scanner.scan(early)
    assert shows(screen, f"Zu früh: Abholung ab {start:%H:%M} Uhr"), screen.rows
    assert screen.tones == ["no"]

    requests.post(early + "/cancel", data={}, timeout=10)  # CSRF is off in the test app
    wait_until(lambda: (controller.sync_now(), controller.store.reservation(rid).server_state)[1]
               == "cancelled", message="cancellation synced")
    scanner.scan(early.replace("http://", "HTTP://"))  # another line: not debounced
    assert shows(screen, "Diese Reservierung ist storniert"), screen.rows

    scanner.scan("https://example.org/not-ours")
    assert shows(screen, "Code nicht lesbar, bitte noch einmal"), screen.rows
    assert screen.tones == ["no", "no", "no"]
    assert emulator.unlocks_received() == []


def test_a_reservation_made_in_english_is_told_in_german_and_english(app, live_server, emulator,
                                                                       scanner, screen, make_controller):
    controller = make_controller(display_port=screen.port)
    url = book_in(live_server, "en")
    rid = reservation_id_of(app, url)
    with app.app_context():
        assert db.session.get(Reservation, rid).locale == "en"
    synced(controller, rid)
    assert controller.store.reservation(rid).locale == "en"
    scanner.scan(url)
    assert screen.wait_for(lambda d: d.rows[:2] == ["Fach 5 öffnet sich", "Compartment 5 is"], 6), \
        screen.rows


def test_the_message_returns_to_the_idle_text_after_its_time(app, live_server, emulator, scanner,
                                                              screen, make_controller):
    make_controller(display_port=screen.port, display_seconds=0.3, display_page_seconds=0.1)
    scanner.scan("nonsense")
    assert shows(screen, "Code nicht lesbar")
    assert shows(screen, "Bitte Code scannen")


def test_an_ascii_display_gets_umlauts_spelled_out(app, live_server, emulator, scanner, screen,
                                                   make_controller):
    make_controller(display_port=screen.port, display_charset="ascii")
    scanner.scan("nonsense")
    assert shows(screen, "Halten Sie den Code"), screen.rows
    assert all(row.isascii() for row in screen.rows)
    scanner.scan("https://example.org/x")
    assert shows(screen, "Code nicht lesbar")


def test_the_screen_page_updates_without_javascript_and_plays_each_tone_once(
        app, live_server, emulator, scanner, make_controller):
    controller = make_controller(display_http="127.0.0.1:0")
    page_url = controller.display.page.url
    first = requests.get(page_url + "/", timeout=5).text
    assert 'lang="de"' in first and "Bitte Code scannen" in first
    assert '<meta http-equiv="refresh" content="1; url=/?seen=' in first
    assert "<script" not in first and "<audio" not in first
    seen = first.split("?seen=")[1].split('"')[0]

    scanner.scan("not a code")
    wait_until(lambda: "Code nicht lesbar" in requests.get(page_url + "/", timeout=5).text)
    fresh = requests.get(f"{page_url}/?seen={seen}", timeout=5).text
    assert '<audio src="/tone/no.wav" autoplay>' in fresh
    now_seen = fresh.split("?seen=")[1].split('"')[0]
    again = requests.get(f"{page_url}/?seen={now_seen}", timeout=5).text
    assert "<audio" not in again  # the same message: no second tone
    tone = requests.get(page_url + "/tone/no.wav", timeout=5)
    assert tone.headers["Content-Type"] == "audio/wav" and tone.content == tone_wav("no")
    assert requests.get(page_url + "/nothing", timeout=5).status_code == 404


def test_an_english_reservation_on_the_screen_page_is_marked_english(tmp_path):
    from controller.settings import Settings

    class Fake:
        settings = Settings(keypad_port="")

        class store:
            @staticmethod
            def setting(name, default=None):
                return {"hotline": "040 123"}.get(name, default)

    display = Display(Fake)
    display.show("door_failed", locale="en", tone="no", compartment=3)
    from controller.display import DisplayPage
    page = DisplayPage(display, "127.0.0.1", 0)
    html = page.render(None)
    page.server.server_close()
    assert "<h1>Fach 3 öffnet nicht</h1>" in html
    assert '<div class="other" lang="en"><h2>Compartment 3 did not open</h2>' in html
    assert "Please call us: 040 123." in html


def test_the_d_key_after_a_return_reports_a_defect_that_reaches_staff(app, live_server, emulator,
                                                                      scanner, screen, make_controller):
    from locker_app.models import Item, VisitorReport
    keypad = ScannerEmulator()
    try:
        controller = make_controller(display_port=screen.port, keypad_port=keypad.port)
        url = book(live_server, "bollerwagen")
        rid = reservation_id_of(app, url)
        synced(controller, rid)
        keypad.scan("D")  # no return yet: how it works, with the low tone
        assert shows(screen, "Defekt: bitte nach Rückgabe"), screen.rows
        scanner.scan(url)
        assert shows(screen, "Bitte Tür schließen"), screen.messages
        emulator.close_door(5)
        assert shows(screen, "Danke! Viel Freude"), screen.messages
        scanner.scan(url.replace("http://", "HTTP://"))  # the return
        assert screen.wait_for(lambda d: d.messages.count("Bitte Tür schließen Fach 5 ist offen. "
                                                          "Bitte schließen Sie die Tür, wenn Sie") == 2
                               or "Bitte Tür" in d.rows[0] and len(d.messages) > 6, 6), screen.messages
        emulator.close_door(5)
        assert shows(screen, "Danke für die Rückgabe!"), screen.rows
        assert screen.rows[:3] == ["Danke für die", "Rückgabe!", "Kaputt? Dann Taste D"]
        keypad.scan("D")
        assert shows(screen, "Danke! Defekt gemeldet"), screen.rows
        assert screen.tones[-1] == "yes"

        def reported():
            with app.app_context():
                report = db.session.scalars(db.select(VisitorReport)).first()
                item = db.session.get(Reservation, rid).item
                return report is not None and item.check_needed and not item.in_service and report
        wait_until(reported, message="the defect on the server")
        with app.app_context():
            report = db.session.scalars(db.select(VisitorReport)).one()
            assert (report.kind, report.page, report.reservation_id) == ("defect", "keypad", rid)
            assert db.session.get(Item, report.item_id).service_reason.startswith("Defekt gemeldet")
        keypad.scan("D")  # once per return
        assert shows(screen, "Defekt: bitte nach Rückgabe")
    finally:
        keypad.close()


def test_a_second_scan_while_the_pickup_door_is_open_is_no_return(app, live_server, emulator,
                                                                  scanner, screen,
                                                                  make_controller):
    """On main a second scan of the same code while the pickup door was still open (a
    scanner reading the phone held in front of it twice) sent a second unlock and was
    recorded as a return when the door shut: the visitor held the rollator, the server said
    "returned". A return begins only after the pickup's door was shut."""
    from tests.test_end_to_end import kinds_seen, state_of
    controller = make_controller(display_port=screen.port)
    url = book(live_server, "bollerwagen")
    rid = reservation_id_of(app, url)
    synced(controller, rid)
    scanner.scan(url)
    assert emulator.wait_for(lambda e: not e.door_closed(5), timeout=5)
    wait_until(lambda: "pickup" in kinds_seen(controller), message="pickup seen")
    scanner.scan(url.replace("http://", "HTTP://"))  # another line: past the debounce
    wait_until(lambda: any(e.kind == "scan_refused" and e.detail.get("reason") == "door_still_open"
                           for e in controller.store.all_events()),
               message="the second scan answered 'the door is open'")
    assert shows(screen, "Bitte Tür schließen"), screen.rows
    assert len(emulator.unlocks_received()) == 1  # no second unlock
    emulator.close_door(5)
    wait_until(lambda: "door_closed" in kinds_seen(controller), message="door seen shut")
    wait_until(lambda: controller.store.outbox_length() == 0, message="events delivered")
    assert state_of(app, rid) == "picked_up"
    # Later, with the pickup's door shut, the same code opens for the return.
    scanner.scan(url)
    assert emulator.wait_for(lambda e: len(e.unlocks_received()) == 2, timeout=5)
    # The return's message opens it (its hint is the next screen, which the door's own
    # "Bitte Tür schließen" may come before).
    assert screen.wait_for(lambda d: sum("Fach 5 öffnet sich" in m for m in d.messages) >= 2,
                           6), screen.messages


def test_a_too_early_code_not_yet_synced_says_from_when_offline(app, live_server, emulator,
                                                                scanner, screen, make_controller):
    """On main the display said "Der Schrank startet noch" for a too-early code the
    controller had not synced yet; the signed code carries its valid-from."""
    controller = make_controller(display_port=screen.port, sync_interval=3600)
    early = book(live_server, "bollerwagen", minutes_from_now=120)
    rid = reservation_id_of(app, early)
    assert controller.store.reservation(rid) is None  # not synced: decided from the code
    with app.app_context():
        start = to_local(db.session.get(Reservation, rid).start_at.replace(tzinfo=timezone.utc))
    scanner.scan(early)
    assert shows(screen, f"Zu früh: Abholung ab {start:%H:%M} Uhr"), screen.rows
    assert emulator.unlocks_received() == []


def _letters(text: str) -> str:
    return "".join(text.replace("\u00a0", " ").split())


@pytest.mark.parametrize("size", [(20, 4), (16, 2)], ids=["20x4", "16x2"])
@pytest.mark.parametrize("locale", LANGUAGES)
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_message_fits_whole_on_both_displays_screen_by_screen(key, locale, size):
    """The 20 x 4 display cut hints mid-sentence ("Bitte tippen Sie die / 8 Ziffern und
    dann"). Each message is now a few screens: no row longer than the display, no screen
    with more rows, every character of the titles and hints shown in order, and a sentence
    that fits one screen on one screen."""
    from controller.display import display_screens
    columns, rows = size
    message = Message(key, locale, params=SAMPLE)
    screens = display_screens(message, columns, rows, {})
    for screen in screens:
        assert 1 <= len(screen) <= rows, screen
        for row in screen:
            assert len(row) <= columns, (row, len(row))
    languages = message.languages()
    expected = [message.text(language)[0] for language in languages] + [
        message.text(language)[1] for language in reversed(languages)]
    assert _letters(" ".join(row for screen in screens for row in screen)) == \
        _letters(" ".join(expected))
    on_screens = [_letters(" ".join(screen)) for screen in screens]
    for language in languages:
        for sentence in re.split(r"(?<=[.!])\s+", message.text(language)[1].strip()):
            if len(textwrap.wrap(sentence, columns, break_long_words=False)) <= rows:
                assert any(_letters(sentence) in shown for shown in on_screens), (
                    sentence, screens)


def test_a_long_message_pages_through_its_screens_on_the_display(app, live_server, emulator,
                                                                  scanner, screen,
                                                                  make_controller):
    """Through a real pty: a message longer than the 16 x 2 display shows its screens one
    after the other, its tone once."""
    controller = make_controller(display_port=screen.port, display_columns=16, display_rows=2,
                                 display_page_seconds=0.5)
    assert shows(screen, "Bitte Code")
    controller.display.show("unknown_code", tone="no")
    screens = controller.display.screens(Message("unknown_code", tone="no"))
    assert len(screens) >= 3
    for rows in screens[:3]:
        assert screen.wait_for(lambda d: [r for r in d.rows if r] == rows, timeout=10), (
            rows, screen.rows)
    assert screen.tones == ["no"]
