"""The booking path in Debian's chromium, driven by Playwright: on a phone-sized screen and
with the keyboard only."""
import os
from pathlib import Path

import pytest

from tests.axe import violations
from tests.conftest import no_sideways_scrolling  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE",
                                  has_touch=True, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


def test_reserve_with_the_keyboard_on_a_phone(live_server, phone, tmp_path):
    page = phone
    page.goto(live_server)
    assert no_sideways_scrolling(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Zum Inhalt springen"
    # Tab on to the first offer's link and follow it with Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if "Rollator reservieren" in page.evaluate("document.activeElement.textContent"):
            break
    else:
        pytest.fail("the reserve link cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/s/stadtpark/reserve/rollator")
    assert no_sideways_scrolling(page)
    # The suggested window is filled in; a name is all that is needed.
    assert "Rollatoren leihen Sie bis zu" in page.content()  # the rules before the form
    page.get_by_label("Ihr Name oder ein Spitzname").focus()
    page.keyboard.type("Erika")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Bitte prüfen Sie Ihre Angaben"
    assert violations(page) == []
    assert no_sideways_scrolling(page)
    page.get_by_role("button", name="Jetzt reservieren").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/r/*")
    assert page.get_by_role("heading", name="Reserviert").is_visible()
    assert violations(page) == []
    assert page.locator(".state strong").inner_text() == "Reserviert"
    qr = page.locator(".qr-image svg")
    assert qr.is_visible()
    box = qr.bounding_box()
    assert box["width"] >= 200 and box["x"] + box["width"] <= 360
    assert no_sideways_scrolling(page)
    page.screenshot(path=os.environ.get("LOCKER_SCREENSHOT", str(Path(tmp_path) / "reservation.png")),
                    full_page=True)
    # Booked for now: the door opens at once, so there is nothing to cancel online; the page
    # says whom to call instead, and the ticket is a page of its own (no script needed).
    assert "Die Abholzeit hat begonnen" in page.content()
    assert page.get_by_role("link", name="0123 4567890").first.is_visible()
    page.get_by_role("link", name="Ticket zum Drucken").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ticket")
    assert page.locator(".ticket .qr-image svg").bounding_box()["width"] >= 113  # >= 3 cm at 96 dpi


def test_cancel_with_confirmation_by_keyboard(live_server, phone):
    from tests.axe import violations
    from tests.test_end_to_end import book
    page = phone
    page.goto(book(live_server, minutes_from_now=120))
    assert violations(page) == []
    page.get_by_role("link", name="Reservierung stornieren").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/cancel")
    assert page.get_by_role("heading", level=1).inner_text() == "Reservierung stornieren?"
    assert violations(page) == []
    assert no_sideways_scrolling(page)
    page.get_by_role("button", name="Reservierung stornieren").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".state-cancelled")
    assert page.locator(".state strong").inner_text() == "Storniert"
    assert page.get_by_role("link", name="Neu reservieren").is_visible()
    assert violations(page) == []


def test_errors_are_announced_next_to_the_field(live_server, phone):
    page = phone
    page.goto(f"{live_server}/s/stadtpark/reserve/bollerwagen")
    page.get_by_role("button", name="Weiter").click()
    name = page.get_by_label("Ihr Name oder ein Spitzname")
    assert name.get_attribute("aria-invalid") == "true"
    described = name.get_attribute("aria-describedby")
    assert "Bitte geben Sie einen Namen" in page.locator(f"#{described.split()[-1]}").inner_text()


def test_english_on_request(live_server, phone):
    page = phone
    page.goto(live_server)
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Borrow a rollator or a handcart for free"


def test_emulated_locker_page_works_with_the_keyboard(browser):
    from hardware.emulator import BoardEmulator, EmulatedBoard, ScannerEmulator
    from hardware.emulator_web import EmulatorPage
    board = BoardEmulator([EmulatedBoard(1, 8)], pulse_seconds=0).start()
    scanner = ScannerEmulator()
    page_server = EmulatorPage(board, scanner, port=0).start()
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto(page_server.url)
        page.get_by_role("button", name="Aufbrechen").first.wait_for()
        page.get_by_role("button", name="Aufbrechen").first.focus()
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Tür schließen").first.wait_for()
        assert board.door_closed(1) is False
        # Focus stays on the same door's button after the page refreshes itself.
        assert page.evaluate("document.activeElement.dataset.key") == "1-1-door"
        page.get_by_label("Scanner: Inhalt des QR-Codes (die Adresse der Reservierungsseite)").fill("hello")
        page.keyboard.press("Enter")
        page.get_by_text("Gescannt.").wait_for()
        assert page.locator("html").get_attribute("lang") == "de"
        assert not page.locator("#keys").is_visible()  # no keypad on this one
        assert no_sideways_scrolling(page)
    finally:
        context.close()
        page_server.stop()
        board.stop()
        scanner.close()


def test_buttons_that_need_javascript_stay_hidden_without_it(browser, live_server, app):
    """On main "Nummer kopieren" and "Drucken" showed without JavaScript and did nothing: the
    button's display rule beat the hidden attribute (issue 32)."""
    from tests.test_end_to_end import book
    url = book(live_server, "rollator", minutes_from_now=60)
    for scripts in (False, True):
        context = browser.new_context(java_script_enabled=scripts, locale="de-DE")
        page = context.new_page()
        page.goto(url)
        assert page.get_by_role("button", name="Nummer kopieren").is_visible() is scripts
        page.goto(url + "/ticket")
        assert page.get_by_role("button", name="Drucken").is_visible() is scripts
        context.close()


def test_the_check_step_offers_to_change_each_answer(live_server, phone):
    """"Wechsel" (a change of money or of players) is not what the button does: "Ändern"."""
    phone.goto(live_server + "/s/stadtpark/reserve/rollator")
    phone.get_by_label("Ihr Name oder ein Spitzname").fill("Erika")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Weiter").click()
    assert phone.get_by_role("button", name="Ändern Abholung").is_visible()
    assert "Wechsel" not in phone.content()


def test_buttons_and_links_that_look_like_buttons_share_one_type(browser, live_server, app):
    """A <button> took the browser's own small font while a link styled as a button took
    the page's: they differed in face, size and line height (issue 32). Long German words
    break with a hyphen in the page's language."""
    from tests.test_end_to_end import book
    url = book(live_server, "rollator", minutes_from_now=60)
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    try:
        page.goto(url)
        styles = page.eval_on_selector_all(".button:not([hidden])", """buttons => buttons.map(b => {
            const s = getComputedStyle(b);
            return [b.tagName, s.fontFamily, s.fontSize, s.lineHeight, s.fontWeight]; })""")
        kinds = {tag for tag, *_ in styles}
        assert kinds == {"A", "BUTTON"}, styles
        assert len({tuple(rest) for _, *rest in styles}) == 1, styles
        assert page.evaluate("getComputedStyle(document.body).hyphens") == "auto"
        assert page.locator("html").get_attribute("lang") == "de"
    finally:
        context.close()
