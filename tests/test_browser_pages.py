"""In Debian's Chromium on a 360 px phone: the pages a town must have, the feedback form
without JavaScript, a defect report by keyboard; axe (WCAG 2.2 AA) on each."""
import pytest

from tests.axe import violations
from tests.conftest import no_sideways_scrolling, screenshot
from tests.test_end_to_end import book, reservation_id_of
from tests.test_visitor_reports import picked_up

PAGES = ["/impressum", "/datenschutz", "/barrierefreiheit", "/leichte-sprache", "/open-data/"]


@pytest.fixture
def no_script_phone(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE",
                                  java_script_enabled=False)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_footer_pages_pass_axe_in_both_languages(browser, live_server, language):
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  locale="de-DE" if language == "de" else "en-GB")
    try:
        page = context.new_page()
        page.goto(live_server)
        for path in PAGES:
            page.get_by_role("contentinfo").get_by_role("link", name={
                "/impressum": "Impressum",
                "/datenschutz": "Datenschutz" if language == "de" else "Privacy",
                "/barrierefreiheit": "Barrierefreiheit" if language == "de" else "Accessibility",
                "/leichte-sprache": "Leichte Sprache",
                "/open-data/": "Offene Daten" if language == "de" else "Open data"}[path],
                exact=True).focus()
            page.keyboard.press("Enter")
            page.wait_for_url(f"**{path}")
            assert violations(page) == [], path
            assert no_sideways_scrolling(page), path
            screenshot(page, f"page{path.replace('/', '-')}-{language}")
    finally:
        context.close()


def test_feedback_without_javascript_by_keyboard(no_script_phone, live_server, app):
    page = no_script_phone
    page.goto(f"{live_server}/barrierefreiheit")
    page.get_by_role("button", name="Senden").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # empty: the error summary, the title says so
    assert page.title().startswith("Fehler:")
    assert page.locator(".error-box a[href='#message']").is_visible()
    page.get_by_label("Ihre Nachricht").focus()
    page.keyboard.type("Der Knopf Reservieren ist mit 200 % Schrift abgeschnitten.")
    page.keyboard.press("Tab")
    page.keyboard.type("0171 5550000")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/barrierefreiheit?sent=1*")
    assert "Ihre Nachricht ist beim Personal des Parks angekommen" in page.content()
    screenshot(page, "feedback-sent")  # axe needs script: the same states are checked below


def test_the_feedback_states_pass_axe(phone_page, live_server):
    page = phone_page
    page.goto(f"{live_server}/barrierefreiheit")
    page.get_by_role("button", name="Senden").click()
    page.wait_for_selector(".error-box")
    assert page.evaluate("document.activeElement.classList.contains('error-box')")
    assert violations(page) == []
    page.get_by_label("Ihre Nachricht").fill("Gut lesbar, danke.")
    page.get_by_role("button", name="Senden").click()
    page.wait_for_url("**/barrierefreiheit?sent=1*")
    assert violations(page) == []


def test_report_a_defect_by_keyboard(phone_page, live_server, app):
    page = phone_page
    url = book(live_server, "rollator")
    picked_up(app, reservation_id_of(app, url))
    page.goto(url)
    page.get_by_role("link", name="Defekt melden").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/defect")
    assert violations(page) == []
    page.get_by_label("Was ist daran kaputt?").focus()
    page.keyboard.type("Die Bremsen ziehen nach links.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(url)
    assert "Das Personal prüft den Gegenstand" in page.content()
    assert violations(page) == []
    screenshot(page, "defect-reported")


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE",
                                  has_touch=True, is_mobile=True)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("language", ["de", "en"])
def test_find_the_reservation_again_by_number_and_name(browser, live_server, app, language):
    from tests.test_find_again import number_of
    url = book(live_server, "rollator", minutes_from_now=60)
    number = number_of(app, url.rsplit("/r/", 1)[1])
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  locale="de-DE" if language == "de" else "en-GB",
                                  java_script_enabled=language == "de")  # English: no script
    try:
        page = context.new_page()
        page.goto(live_server)
        page.get_by_role("main").get_by_role("link", name={
            "de": "Reservierung wiederfinden", "en": "Find your reservation"}[language]).focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/wiederfinden")
        if language == "de":
            assert violations(page) == []
        page.get_by_label({"de": "Ihre 8-stellige Nummer", "en": "Your 8-digit number"}[language]).focus()
        page.keyboard.type(f"{number[:4]} {number[4:]}")
        page.keyboard.press("Tab")
        page.keyboard.type("Erika")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == url
        screenshot(page, f"found-again-{language}")
    finally:
        context.close()


def test_the_find_page_error_and_mail_states_pass_axe(phone_page, live_server):
    page = phone_page
    page.goto(f"{live_server}/wiederfinden")
    page.get_by_label("Ihre 8-stellige Nummer").fill("12345678")
    page.get_by_label("Der Name, den Sie angegeben haben").fill("Niemand")
    page.get_by_role("button", name="Reservierung finden").click()
    page.wait_for_selector(".error-box")
    assert page.title().startswith("Fehler:")
    assert violations(page) == []
    page.get_by_label("Ihre E-Mail-Adresse").fill("erika@example.org")
    page.get_by_role("button", name="Links zusenden").click()
    page.get_by_text("Bitte sehen Sie in Ihr Postfach").wait_for()
    assert violations(page) == []
    assert no_sideways_scrolling(page)
    screenshot(page, "find-mail-sent")


def test_book_and_print_in_english_without_javascript_by_keyboard(browser, live_server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB",
                                  java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server}/s/stadtpark/reserve/bollerwagen")
        assert "Handcarts can be borrowed for up to" in page.content()
        page.get_by_label("Your name or a nickname").focus()
        page.keyboard.type("Erika")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("heading", level=1).inner_text() == "Check your answers"
        screenshot(page, "check-en-no-script")
        page.get_by_role("button", name="Change name").focus()  # the hidden words name it
        with page.expect_navigation():
            page.keyboard.press("Enter")
        # autofocus, no script (applied at the first rendering after load)
        page.wait_for_function("document.activeElement && document.activeElement.id === 'name'",
                               polling=50, timeout=5000)
        page.keyboard.press("End")
        page.keyboard.type(" M.")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "<dd>Erika M.</dd>" in page.content()
        page.get_by_role("button", name="Reserve now").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("heading", name="Reserved").is_visible()
        assert "You gave no e-mail address" in page.content()
        screenshot(page, "confirmation-en-no-script")
        page.get_by_role("link", name="Ticket to print").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/ticket")
        screenshot(page, "ticket-en-no-script")
    finally:
        context.close()
