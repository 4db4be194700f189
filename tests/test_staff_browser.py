"""The staff desk in Debian's chromium: log in, build a site with a cabinet and items, book
for a caller, open a compartment remotely through the emulated locker, acknowledge the
alert it raises; axe (WCAG 2.2 AA) on every staff page; one flow by keyboard at 360 px;
with JavaScript off. Screenshots land in test-results/staff/."""
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hardware import family_a
from locker_app.extensions import db
from locker_app.models import Cabinet, ControllerEvent, Item, Reservation, Site
from tests.axe import violations
from tests.conftest import STAFF_PASSWORD, make_account, wait_until
from tests.conftest import no_sideways_scrolling

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "staff"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def check(page, name: str) -> None:
    """Every staff page: no axe violations, no sideways scrolling, a screenshot."""
    found = violations(page)
    assert found == [], f"{name}: " + "\n".join(found)
    assert no_sideways_scrolling(page), f"{name} scrolls sideways"
    shot(page, name)


@pytest.fixture
def desk(app):
    app.config["WTF_CSRF_ENABLED"] = True  # as in production
    make_account(app, "admin", "admin")
    return app


def log_in(page, base: str) -> None:
    page.goto(f"{base}/staff/login")
    page.get_by_label("Benutzername").fill("admin")
    page.get_by_label("Passwort").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{base}/staff/")


def test_staff_desk_end_to_end(desk, live_server, emulator, make_controller, browser):
    app = desk
    make_controller(door_open_alert=1.0)  # a door left open a second raises the alert
    context = browser.new_context(viewport={"width": 1024, "height": 900}, locale="de-DE")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/staff/")
        page.wait_for_url("**/staff/login?next=*")
        check(page, "login")
        page.get_by_label("Benutzername").fill("admin")
        page.get_by_label("Passwort").fill("wrong password!")
        page.get_by_role("button", name="Anmelden").click()
        assert page.get_by_role("alert").inner_text().count("Benutzername oder Passwort stimmt nicht.") == 1
        assert page.title().startswith("Fehler:")
        check(page, "login-error")
        log_in(page, live_server)
        check(page, "today")

        # A new site with its hours, a cabinet, a compartment, an item.
        page.goto(f"{live_server}/staff/admin/sites/new")
        check(page, "site-new")
        page.get_by_label("Name", exact=True).fill("Rosengarten")
        page.get_by_label("Kurzname in Webadressen").fill("rosengarten")
        page.get_by_label("Telefonnummer für Besucherinnen und Besucher").fill("0351 0000")
        page.get_by_role("button", name="Speichern").click()
        page.get_by_text("Gespeichert.").wait_for()
        check(page, "site")
        page.get_by_label("Öffnet").first.fill("09:00")
        page.get_by_label("Schließt").first.fill("18:00")
        page.get_by_role("button", name="Öffnungszeiten speichern").click()
        page.get_by_text("Gespeichert.").wait_for()
        page.goto(f"{live_server}/staff/admin/cabinets/new")
        check(page, "cabinet-new")
        page.get_by_label("Standort", exact=True).select_option(label="Rosengarten")
        page.get_by_label("Name", exact=True).fill("Schrank am Teich")
        page.get_by_label("Bauart der Schlossplatine").select_option("B")
        page.get_by_role("button", name="Speichern").click()
        page.wait_for_url(re.compile(r".*/staff/cabinets/\d+$"))
        check(page, "cabinet-new-saved")
        page.get_by_role("link", name="Fach hinzufügen").click()
        page.get_by_label("Nummer an der Tür").fill("1")
        page.get_by_label("Platinenadresse").fill("0")
        page.get_by_label("Schlossnummer auf der Platine").fill("1")
        page.get_by_label("Hat einen Belegt-Sensor").check()
        page.get_by_role("button", name="Speichern").click()
        page.wait_for_url(re.compile(r".*/staff/cabinets/\d+$"))
        page.goto(f"{live_server}/staff/items/new")
        check(page, "item-new")
        page.get_by_label("Bezeichnung (steht auf dem Gegenstand)").fill("Rollator R1")
        page.get_by_label("Fach").select_option(label="Rosengarten, Schrank am Teich, Fach 1")
        page.get_by_role("button", name="Speichern").click()
        page.wait_for_url("**/staff/items")
        check(page, "items")
        with app.app_context():
            site = db.session.scalars(db.select(Site).where(Site.slug == "rosengarten")).one()
            assert db.session.scalars(db.select(Cabinet).where(Cabinet.site_id == site.id)).one().board_family == "B"
            assert db.session.scalars(db.select(Item).where(Item.label == "Rollator R1")).one().compartment_id

        # A caller books a rollator at the Stadtpark.
        page.goto(f"{live_server}/staff/book")
        check(page, "book-for-caller")
        page.get_by_label("Standort").select_option(label="Stadtpark")
        # Tomorrow: today's 23:00 has passed in the last hour of the day (in Berlin).
        tomorrow = (datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()
                    + timedelta(days=1)).isoformat()
        page.get_by_label("Abholtag").fill(tomorrow)
        page.get_by_label("Rückgabetag").fill(tomorrow)
        page.get_by_label("Abholzeit").fill("23:00")
        page.get_by_label("Rückgabezeit").fill("23:45")
        page.get_by_label("Name der anrufenden Person").fill("Herr Krause")
        page.get_by_label("Telefonnummer der anrufenden Person").fill("0351 1234567")
        page.get_by_role("button", name="Buchen").click()
        page.wait_for_url(re.compile(r".*/staff/reservations/\d+$"))
        page.get_by_text("Gebucht. Lesen Sie der anrufenden Person die Nummer vor").wait_for()
        check(page, "reservation")
        with app.app_context():
            reservation = db.session.scalars(db.select(Reservation)).one()
            assert reservation.phone == "0351 1234567"
        page.get_by_role("link", name="Ticket zum Drucken").click()
        check(page, "ticket")
        page.goto(f"{live_server}/staff/reservations?q=krause")
        check(page, "reservations")

        # Remote open through the emulated locker: the page follows the locker's report.
        page.goto(f"{live_server}/staff/cabinets/1")
        check(page, "cabinet")
        form = page.locator("form", has=page.get_by_role("button", name="Fach öffnen"))
        form.get_by_label("Fach").fill("5")
        form.get_by_label("Grund").fill("Wartung der Tür")
        form.get_by_role("button", name="Fach öffnen").click()
        # It asks once more, on a page of its own (nothing is sent to the locker yet).
        page.get_by_role("heading", name=re.compile("Fach 5 .* aus der Ferne öffnen")).wait_for()
        assert emulator.unlocks_received() == []
        check(page, "confirm-open")
        page.get_by_role("button", name="Ja, Tür öffnen").click()
        page.wait_for_url(re.compile(r".*/staff/commands/\d+$"))
        page.get_by_text("Das Schließfach hat entriegelt.").wait_for(timeout=10000)
        assert emulator.unlocks_received() == [family_a.encode_unlock(1, 5)]
        check(page, "command")

        # The door stays open: the alert arrives; staff acknowledge it.
        with app.app_context():
            wait_until(lambda: db.session.scalar(db.select(ControllerEvent.id).where(
                ControllerEvent.kind == "door_left_open")) or db.session.expire_all(),
                message="door_left_open on the server")
        page.goto(f"{live_server}/staff/alerts")
        assert page.get_by_role("heading", name="Tür steht offen").is_visible()
        check(page, "alerts")
        page.get_by_label("Notiz (was Sie getan haben)").fill("Tür zugemacht")
        page.get_by_role("button", name="Bestätigen").click()
        page.get_by_text("Meldung bestätigt.").wait_for()
        emulator.close_door(5)

        for name, url in (("cabinets", "/staff/cabinets"), ("item-types", "/staff/admin/item-types"),
                          ("rules", "/staff/admin/rules/1/1"), ("accounts", "/staff/admin/accounts"),
                          ("account", "/staff/admin/accounts/1"), ("audit", "/staff/admin/audit"),
                          ("sites", "/staff/admin/sites"), ("password", "/staff/password"),
                          ("alerts-acknowledged", "/staff/alerts?show=acknowledged"),
                          ("item-type", "/staff/admin/item-types/1"), ("compartment", "/staff/admin/compartments/1"),
                          ("controller-new", "/staff/admin/cabinets/1/controllers/new")):
            page.goto(live_server + url)
            check(page, name)
        page.goto(f"{live_server}/staff/admin/audit?action=remote_open")
        assert "Wartung der Tür" in page.content()
    finally:
        context.close()


def test_remote_open_by_keyboard_on_a_phone(desk, live_server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE",
                                  has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/staff/login")
        page.keyboard.press("Tab")  # skip link
        page.keyboard.press("Tab")  # brand
        page.keyboard.press("Tab")  # language
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "username"
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(STAFF_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server}/staff/")
        assert no_sideways_scrolling(page)
        # Tab to the menu's group "Schränke und Gegenstände", open it with Enter, then Tab
        # to "Schränke" and follow it.
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == \
                    "Schränke und Gegenstände":
                break
        else:
            pytest.fail("the menu group cannot be reached with Tab")
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") != "Schränke":
            pytest.fail("the cabinets link does not follow its group")
        page.keyboard.press("Enter")
        page.wait_for_url("**/staff/cabinets")
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.tagName === 'A' && "
                             "document.activeElement.textContent.includes('Schrank am Haupteingang')"):
                break
        else:
            pytest.fail("the cabinet link cannot be reached with Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/staff/cabinets/1")
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "compartment":
                break
        else:
            pytest.fail("the compartment field cannot be reached with Tab")
        page.keyboard.type("2")
        page.keyboard.press("Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")  # without a reason: an error summary takes the focus
        page.locator("[role=alert]").wait_for()
        page.wait_for_function("document.activeElement.getAttribute('role') === 'alert'")
        assert page.evaluate("document.activeElement.getAttribute('role')") == "alert"
        assert page.title().startswith("Fehler:")
        assert "Grund: Bitte füllen Sie dieses Feld aus." in page.locator("[role=alert]").inner_text()
        check(page, "open-error-phone")
        page.get_by_label("Grund").focus()
        page.keyboard.type("Besucher am Telefon")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        # Asked once more: Tab to "Ja, Tür öffnen" and press it.
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == "Ja, Tür öffnen":
                break
        else:
            pytest.fail("the confirmation cannot be reached with Tab")
        check(page, "open-confirm-phone")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/staff/commands/\d+$"))
        # No controller runs here: the page says it waits, never that it is done.
        assert "Warte auf die Antwort" in page.locator("[role=status]").inner_text()
        check(page, "command-pending-phone")
    finally:
        context.close()


def test_staff_pages_work_without_javascript(desk, live_server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE",
                                  java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.goto(f"{live_server}/staff/cabinets/1")
        form = page.locator("form", has=page.get_by_role("button", name="Fach öffnen"))
        form.get_by_label("Fach").fill("3")
        form.get_by_label("Grund").fill("Wartung")
        form.get_by_role("button", name="Fach öffnen").click()
        page.get_by_role("button", name="Ja, Tür öffnen").click()  # asked once more
        page.wait_for_url(re.compile(r".*/staff/commands/\d+$"))
        assert page.get_by_role("link", name="Noch einmal prüfen").is_visible()
        page.locator(".staff-nav summary", has_text="admin").click()  # one's own account
        page.get_by_role("button", name=re.compile("Abmelden")).click()
        page.wait_for_url("**/staff/login")
        assert page.get_by_text("Sie sind abgemeldet.").is_visible()
    finally:
        context.close()


def test_the_menu_is_one_row_on_a_desktop_and_folds_on_a_phone(desk, live_server, browser):
    """Twelve links took three rows at 1280 px. Grouped (daily work, cabinets and items,
    figures, administration, one's own account) the menu is one row; a group opens with a
    click or Enter and closes with Escape; on a phone at 200 % text it folds and nothing
    scrolls sideways."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    page = context.new_page()
    try:
        log_in(page, live_server)
        tops = page.eval_on_selector_all(".staff-nav .menu > li",
                                         "items => items.map(i => i.getBoundingClientRect().top)")
        assert len(tops) == 5 and len(set(tops)) == 1, tops
        page.get_by_text("Zahlen", exact=True).click()
        page.get_by_role("link", name="Statistik").wait_for()
        check(page, "menu-open-desktop")
        page.keyboard.press("Escape")
        assert not page.get_by_role("link", name="Statistik").is_visible()
        page.get_by_text("Verwaltung", exact=True).click()
        page.get_by_text("Tagesgeschäft", exact=True).click()  # one group open at a time
        page.get_by_role("link", name="Protokoll").wait_for(state="hidden")
        assert page.get_by_role("link", name="Reservierungen").is_visible()
        page.get_by_role("link", name="Reservierungen").click()
        page.wait_for_url("**/staff/reservations")
        assert page.locator(".staff-nav summary.here").inner_text() == "Tagesgeschäft"

        page.goto(f"{live_server}/staff/")
        page.set_viewport_size({"width": 320, "height": 640})
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        page.get_by_text("Schränke und Gegenstände", exact=True).click()
        page.get_by_role("link", name="Gegenstände").wait_for()
        check(page, "menu-open-phone")
    finally:
        context.close()
