"""Issue 32: the staff pages and exports speak the staff's language. The reservation history
showed ``unlock_sent``, ``{"purpose": "pickup"}`` and "visitor / booked online"; alerts
``{"lockouts": 1, "seconds": 30.0}``; statistics ``unknown_code``; the audit log
``item_retired``. Every code is now a word in German (and English); the CSV keeps the code
in a column of its own for machines."""
import csv
import io
import re
from datetime import date, datetime

from freezegun import freeze_time

from locker_app.extensions import db
from locker_app.models import Item, Reservation
from locker_app.services import usage
from tests.conftest import DEMO_TOKEN, log_in, make_account
from tests.test_lifecycle import book

AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def _text(html: str) -> str:
    """What a reader sees: no tags, scripts or styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def codes_in(text: str) -> list[str]:
    """snake_case words and JSON braces: codes a person should not have to read."""
    return SNAKE.findall(text) + re.findall(r"\{\s*[\"']", text)


def _history(app):
    """A reservation that was unlocked, picked up, refused once and returned; a keypad
    lockout; an item taken out of service and retired; a remote opening; a cancelled
    booking; a visitor's feedback; the day's aggregates."""
    with freeze_time("2026-06-10 06:00:00"):
        rid = book(app, start=datetime(2026, 6, 10, 8))
        other = book(app, start=datetime(2026, 6, 11, 8), email="max@example.org")
    events = [
        {"kind": "scan_refused", "detail": {"reason": "too_early", "source": "scanner"},
         "at": "07:40"},
        {"kind": "scan_refused", "detail": {"reason": "unknown_code", "source": "keypad"},
         "at": "07:41", "no_reservation": True},
        {"kind": "keypad_locked", "detail": {"lockouts": 1, "seconds": 30.0}, "at": "07:42",
         "no_reservation": True},
        {"kind": "unlock_sent", "detail": {"purpose": "pickup"}, "at": "08:01"},
        {"kind": "door_opened", "at": "08:01"},
        {"kind": "pickup", "at": "08:02"},
        {"kind": "door_closed", "at": "08:02"},
        {"kind": "unlock_sent", "detail": {"purpose": "return"}, "at": "09:50"},
        {"kind": "return", "at": "09:51"},
    ]
    with app.app_context():
        compartment = db.session.get(Reservation, rid).compartment.number
    client = app.test_client()
    answer = client.post("/api/v1/controller/events", headers=AUTH, json={"events": [
        {"idempotency_key": f"words-event-{n:04d}", "kind": e["kind"],
         "compartment": None if e.get("no_reservation") else compartment,
         "occurred_at": f"2026-06-10T{e['at']}:00Z", "detail": e.get("detail", {}),
         **({} if e.get("no_reservation") else {"reservation_id": rid})}
        for n, e in enumerate(events)]})
    assert answer.status_code == 200, answer.get_json()
    return rid, other


def _administrator(app):
    """A client logged in as an administrator (every staff page, the audit log, the CSV)."""
    make_account(app, "chefin", "admin")
    admin = app.test_client()
    log_in(admin, "chefin")
    return admin


@freeze_time("2026-06-10 12:00:00")
def test_staff_pages_and_exports_in_german_show_no_codes(app):
    rid, other = _history(app)
    admin = _administrator(app)
    admin.post(f"/staff/reservations/{other}/cancel", data={"reason": "Bitte der Besucherin"})
    admin.post("/staff/cabinets/1/open",
               data={"compartment": "2", "reason": "Wartung", "confirmed": "yes"})
    with app.app_context():
        spare = db.session.scalars(db.select(Item).where(Item.id != db.session.get(
            Reservation, rid).item_id).order_by(Item.id.desc())).first().id
    admin.post(f"/staff/items/{spare}/out-of-service", data={"reason": "Bremse"})
    admin.post(f"/staff/items/{spare}/retire", data={"reason": "gestohlen", "confirmed": "yes"})
    app.test_client().post("/barrierefreiheit?page=/s/stadtpark/",
                           data={"message": "Die Schrift ist zu klein."})
    with app.app_context():
        usage.rebuild(db.session, date(2026, 6, 1), date(2026, 6, 10))
        db.session.commit()

    pages = [f"/staff/reservations/{rid}", f"/staff/reservations/{other}", "/staff/alerts",
             "/staff/admin/audit", "/staff/reports", "/staff/items",
             "/staff/statistics?from=2026-06-01&to=2026-06-10",
             "/staff/report?from=2026-06-01&to=2026-06-10", "/staff/cabinets/1", "/staff/",
             "/staff/reservations?from=2026-06-01&to=2026-06-30", "/staff/cabinets",
             "/staff/commands/1", "/staff/admin/sites", "/staff/admin/sites/1",
             "/staff/admin/item-types", "/staff/admin/rules/1/1", "/staff/admin/accounts",
             "/staff/sessions", "/staff/book"]
    found = {}
    for path in pages:
        response = admin.get(path)
        assert response.status_code == 200, path
        codes = codes_in(_text(response.get_data(as_text=True)))
        if codes:
            found[path] = sorted(set(codes))
    assert found == {}

    # What the history says, in words.
    history = _text(admin.get(f"/staff/reservations/{rid}").get_data(as_text=True))
    for words in ("Tür entriegelt", "zum Abholen", "zum Zurückgeben", "Code abgelehnt",
                  "zu früh", "Besucherin oder Besucher", "online reserviert", "abgeholt an Fach",
                  "der Schrank", "Bestätigung"):
        assert words in history, words
    alerts = _text(admin.get("/staff/alerts").get_data(as_text=True))
    assert "bisher 1-mal gesperrt; 30 Sekunden" in alerts
    audit = _text(admin.get("/staff/admin/audit").get_data(as_text=True))
    assert "Gegenstand stillgelegt" in audit and "Fach aus der Ferne geöffnet" in audit
    statistics = _text(admin.get("/staff/statistics?from=2026-06-01&to=2026-06-10")
                       .get_data(as_text=True))
    assert "unbekannter Code" in statistics and "zu früh" in statistics

    # The CSVs: words for people, the code in a column of its own for machines.
    refused = list(csv.reader(io.StringIO(admin.get(
        "/staff/statistics/refused-scans.csv?from=2026-06-01&to=2026-06-10")
        .get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert refused[0][:2] == ["Grund", "Code"]
    assert ["unbekannter Code", "unknown_code"] in [row[:2] for row in refused[1:]]
    export = list(csv.reader(io.StringIO(admin.get(
        "/staff/statistics/reservations.csv?from=2026-06-01&to=2026-06-30")
        .get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    state, code = export[0].index("Status"), export[0].index("Status (Code)")
    assert ("Zurückgegeben", "returned") in [(row[state], row[code]) for row in export[1:]]
    for row in export[1:]:
        assert codes_in(" ".join(v for n, v in enumerate(row) if n != code)) == [], row


@freeze_time("2026-06-10 12:00:00")
def test_the_history_in_english_says_it_in_english(app):
    rid, _ = _history(app)
    admin = _administrator(app)
    admin.get("/lang/en")
    history = _text(admin.get(f"/staff/reservations/{rid}").get_data(as_text=True))
    for words in ("Door unlocked", "to pick up", "Code refused", "too early", "booked online",
                  "the visitor", "picked up at compartment", "Confirmation"):
        assert words in history, words
    assert codes_in(history) == []


@freeze_time("2026-06-10 12:00:00")
def test_numbers_and_dates_follow_the_pages_language(app):
    """The English pages showed German dates (24.11.2026) and the report mixed "0,0 %" with
    "0.0%": each page now writes both as its language does."""
    rid, _ = _history(app)
    admin = _administrator(app)
    with app.app_context():
        usage.rebuild(db.session, date(2026, 6, 1), date(2026, 6, 10))
        db.session.commit()
    statistics = "/staff/statistics?from=2026-06-01&to=2026-06-10"
    german = _text(admin.get(statistics).get_data(as_text=True))
    assert "01.06.2026" in german and re.search(r"\d,\d\u00a0%", german), german[:3000]
    assert not re.search(r"\d\.\d\s?%", german)
    history = _text(admin.get(f"/staff/reservations/{rid}").get_data(as_text=True))
    assert "10.06.2026" in history
    admin.get("/lang/en")
    english = _text(admin.get(statistics).get_data(as_text=True))
    assert "1 Jun 2026" in english and re.search(r"\d\.\d%", english)
    assert not re.search(r"\d,\d\s?%", english) and "01.06.2026" not in english
    history = _text(admin.get(f"/staff/reservations/{rid}").get_data(as_text=True))
    assert "10 Jun 2026" in history and "10.06.2026" not in history
