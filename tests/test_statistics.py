"""Statistics from a hand-built history: known loans, a no-show, a late return, a loan across
midnight and one across the autumn clock change; CSV read back in the German dialect; the
open-data export merges small cells and carries nothing personal."""
import csv
import io
import json
from datetime import date, datetime, time, timedelta

import pytest

from locker_app.extensions import db
from locker_app.models import (Controller, ControllerEvent, DailyUsage, Item, OpeningHours,
                               Reservation, ReservationEvent)
from locker_app.services import open_data, statistics, usage
from locker_app.services.lifecycle import erase_personal_data
from locker_app.services.timeutil import local_to_utc


def at(day: str, clock: str) -> datetime:
    """A local (Berlin) wall-clock time as naive UTC."""
    return local_to_utc(date.fromisoformat(day), time.fromisoformat(clock))


def make(item_id: int, start: datetime, end: datetime, *, created: datetime, picked=None,
         returned=None, final=None, cancelled=None, actor="visitor", email=None, name="Gast"):
    item = db.session.get(Item, item_id)
    r = Reservation(item=item, compartment=item.compartment, start_at=start, end_at=end,
                    pickup_until=min(end, start + timedelta(hours=1)), created_at=created, visitor_name=name, email=email,
                    booked_with_email=email is not None, state="booked")
    db.session.add(r)
    db.session.flush()
    db.session.add(ReservationEvent(reservation=r, from_state=None, to_state="booked", actor=actor,
                                    cause="test", at=created))
    steps = [("picked_up", picked), ("returned", returned), ("cancelled", cancelled)]
    for state, moment in steps:
        if moment is not None:
            db.session.add(ReservationEvent(reservation=r, from_state=r.state, to_state=state,
                                            actor="controller", cause="test", at=moment))
            r.state = state
    if final:
        r.state = final
    return r


@pytest.fixture
def history(app):
    """Rollators are items 1-4, handcarts 5-8; the locker is open 08:00-20:00."""
    with app.app_context():
        for row in db.session.scalars(db.select(OpeningHours)):
            row.opens, row.closes = time(8), time(20)
        booked = at("2026-11-10", "09:00")
        # Monday 16 November: a loan of 1:45 h and one overnight, back 30 minutes late.
        make(1, at("2026-11-16", "10:00"), at("2026-11-16", "12:00"), created=booked,
             picked=at("2026-11-16", "10:05"), returned=at("2026-11-16", "11:50"))
        make(1, at("2026-11-16", "19:00"), at("2026-11-17", "09:00"), created=booked,
             picked=at("2026-11-16", "19:00"), returned=at("2026-11-17", "09:30"), email="a@example.org")
        # Tuesday: nobody came.
        make(2, at("2026-11-17", "10:00"), at("2026-11-17", "11:00"), created=booked, final="no_show")
        # A handcart booked by phone on Saturday, cancelled on Sunday a day ahead.
        make(5, at("2026-11-16", "12:00"), at("2026-11-16", "13:00"), created=at("2026-11-14", "10:00"),
             cancelled=at("2026-11-15", "12:00"), actor="staff")
        # Across the clock change (25 October 2026: the night has 25 hours).
        make(6, at("2026-10-24", "20:00"), at("2026-10-25", "10:00"), created=at("2026-10-20", "10:00"),
             picked=at("2026-10-24", "20:00"), returned=at("2026-10-25", "08:00"))
        controller = db.session.scalars(db.select(Controller)).first()
        for n, (kind, detail) in enumerate([("scan_refused", {"reason": "too_early"}),
                                            ("scan_refused", {"reason": "too_early"}),
                                            ("scan_refused", {"reason": "not_a_code"}),
                                            ("door_forced", {})]):
            db.session.add(ControllerEvent(controller=controller, idempotency_key=f"k{n:08d}",
                                           kind=kind, occurred_at=at("2026-11-16", "15:00"),
                                           detail=json.dumps(detail)))
        db.session.commit()
        usage.rebuild(db.session, date(2026, 10, 20), date(2026, 11, 20), now=at("2026-11-21", "12:00"))
    return app


def figures(app, first, last, item_type_id=None):
    with app.test_request_context():
        return statistics.compute(db.session, statistics.Period(date.fromisoformat(first),
                                                                date.fromisoformat(last),
                                                                item_type_id=item_type_id))


def test_loans_minutes_no_shows_and_late_returns_from_the_hand_built_history(history):
    f = figures(history, "2026-11-16", "2026-11-17", item_type_id=1)
    assert f.per_day == [(date(2026, 11, 16), 2), (date(2026, 11, 17), 0)]
    assert (f.loans, f.loan_minutes, f.loan_minutes_max) == (2, 105 + 870, 870)
    assert f.median_loan_minutes == 7 * 15 + 7  # the lower of two: the 1:45 h bucket
    # Minutes lent per day: the overnight loan counts 5 h on Monday, 9:30 h on Tuesday.
    with history.app_context():
        lent = dict(db.session.execute(db.select(DailyUsage.day, DailyUsage.minutes_lent)
                                       .where(DailyUsage.item_id == 1, DailyUsage.minutes_lent > 0)).all())
    assert lent == {date(2026, 11, 16): 105 + 300, date(2026, 11, 17): 570}
    assert (f.starts, f.no_shows) == (3, 1)
    assert (f.due, f.overdue, f.late_minutes, f.late_minutes_max) == (2, 1, 30, 30)
    # Open 12 h a day, 4 rollators, 2 days.
    assert f.minutes_open == 720 * 4 * 2
    assert f.utilisation == pytest.approx(975 / 5760)
    assert f.per_item[0] == ("Rollator 1", 975, pytest.approx(975 / 1440))


def test_the_clock_change_night_counts_its_25_hours(history):
    with history.app_context():
        lent = dict(db.session.execute(db.select(DailyUsage.day, DailyUsage.minutes_lent)
                                       .where(DailyUsage.item_id == 6, DailyUsage.minutes_lent > 0)).all())
    assert lent == {date(2026, 10, 24): 4 * 60, date(2026, 10, 25): 9 * 60}  # to 08:00, an hour more
    f = figures(history, "2026-10-24", "2026-10-25")
    assert f.loan_minutes == 13 * 60


def test_bookings_by_phone_without_e_mail_and_cancellations(history):
    f = figures(history, "2026-11-10", "2026-11-16")
    assert (f.bookings, f.bookings_phone, f.bookings_without_email) == (4, 1, 3)
    assert (f.cancellations, f.mean_cancel_lead_minutes) == (1, 24 * 60)
    assert dict(f.refused) == {"too_early": 2, "not_a_code": 1}
    assert f.events_per_cabinet == [("Schrank am Haupteingang", "door_forced", 1)]


def test_an_erased_e_mail_still_counts_as_given(history):
    with history.app_context():
        erase_personal_data(db.session, at("2027-01-01", "00:00"), 30)
        usage.rebuild(db.session, date(2026, 11, 10), date(2026, 11, 10), now=at("2027-01-01", "00:00"))
    assert figures(history, "2026-11-10", "2026-11-10").bookings_without_email == 2


def test_csv_opens_in_a_german_excel(history, admin_client):
    response = admin_client.get("/staff/statistics/loans-per-day.csv?from=2026-11-16&to=2026-11-17&type=1")
    body = response.data
    assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 with the mark
    assert response.headers["Content-Disposition"].startswith('attachment; filename="loans-per-day-2026-11-16')
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows == [["Tag", "Ausleihen"], ["16.11.2026", "2"], ["17.11.2026", "0"]]
    items = list(csv.reader(io.StringIO(admin_client.get(
        "/staff/statistics/utilisation-per-item.csv?from=2026-11-16&to=2026-11-17&type=1")
        .data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert items[1] == ["Rollator 1", "975", "0,68"]  # decimal comma


def test_the_reservation_list_with_names_is_for_administrators_only(history, staff_client, admin_client):
    assert staff_client.get("/staff/statistics/reservations.csv?from=2026-11-01&to=2026-11-30").status_code == 403
    text = admin_client.get("/staff/statistics/reservations.csv?from=2026-11-01&to=2026-11-30").data.decode("utf-8-sig")
    assert "a@example.org" in text and "Telefon" in text
    with history.app_context():
        erase_personal_data(db.session, at("2027-01-01", "00:00"), 30)
    text = admin_client.get("/staff/statistics/reservations.csv?from=2026-11-01&to=2026-11-30").data.decode("utf-8-sig")
    assert "a@example.org" not in text and "Gast" not in text  # erased stays erased


def test_the_statistics_page_draws_charts_with_their_words_and_numbers(history, staff_client):
    html = staff_client.get("/staff/statistics?from=2026-11-16&to=2026-11-17&type=1").get_data(as_text=True)
    # Drawn on the server by pygal: an SVG image, no script on the page, beside its table.
    assert 'id="loans-day-chart" src="data:image/svg+xml;base64,' in html
    assert 'alt="Ausleihen pro Tag" aria-describedby="loans-day-summary"' in html
    import base64
    import re as regex
    source = regex.search(r'id="items-chart" src="data:image/svg\+xml;base64,([^"]+)"', html)
    drawn = base64.b64decode(source.group(1)).decode("utf-8")
    assert 'class="pygal-chart"' in drawn and "67,7\u00a0%" in drawn  # Rollator 1's share
    assert "2 Ausleihen in 2 Tagen" in html
    assert "<caption class=\"visually-hidden\">Ausleihen pro Tag</caption>" in html
    assert "16,9\u00a0%" in html  # utilisation (no break between number and sign)
    report = staff_client.get("/staff/report?from=2026-11-16&to=2026-11-17").get_data(as_text=True)
    assert "Pilotbericht" in report and "Zeitraum davor" in report and "<details class=\"numbers\" open>" in report


def test_open_data_merges_days_with_fewer_than_three_loans(app):
    with app.app_context():
        loans = {1: 1, 2: 1, 3: 2, 4: 5, 5: 1}
        for day, count in loans.items():
            db.session.add(DailyUsage(day=date(2026, 11, day), item_id=1, site_id=1, item_type_id=1,
                                      cabinet_id=1, compartment=1, loans=count,
                                      minutes_lent=60 * count, no_shows=0))
        db.session.commit()
    with app.test_request_context():
        rows = open_data.rows(db.session, date(2026, 11, 1), date(2026, 11, 5))
        document = json.loads(open_data.as_json(db.session, date(2026, 11, 1), date(2026, 11, 5)))
    assert [(r["from"], r["to"], r["loans"]) for r in rows] == [
        ("2026-11-01", "2026-11-03", 4), ("2026-11-04", "2026-11-05", 6)]
    assert all(r["loans"] >= 3 for r in rows)
    assert document["licence"]["id"] == "dl-de/by-2-0"
    assert set(document["rows"][0]) == {"site", "item_type", "from", "to", "days", "loans",
                                        "hours_lent", "no_shows"}


def test_open_data_at_its_stable_address_and_as_a_command(history, client):
    response = client.get("/open-data/nutzung.csv?from=2026-11-01&to=2026-11-30")
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    text = response.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {row["licence"] for row in rows} == {"dl-de/by-2-0"}
    for needle in ("Gast", "a@example.org", "@"):
        assert needle not in text
    # Too few loans in the whole month for a type: its counts are withheld, not published.
    handcarts = [row for row in rows if row["item_type"] == "bollerwagen"]
    assert handcarts and all(row["loans"] == "" for row in handcarts)
    result = history.test_cli_runner().invoke(args=["open-data", "--format", "json", "--from",
                                                    "2026-11-01", "--to", "2026-11-30"])
    assert result.exit_code == 0 and json.loads(result.output)["period"]["to"] == "2026-11-30"
    assert client.get("/open-data/nutzung.xml").status_code == 404


def test_the_rebuild_command_shows_its_progress(history):
    result = history.test_cli_runner().invoke(args=["statistics", "rebuild", "--from", "2026-09-01",
                                                    "--to", "2026-11-20"])
    assert result.exit_code == 0
    assert "81/81 days" in result.output


def test_statistics_and_report_pages_pass_axe_at_360_px(history, live_server, browser):
    from tests.axe import violations
    from tests.conftest import make_account, no_sideways_scrolling, screenshot
    from tests.test_staff_browser import log_in
    make_account(history, "admin", "admin")
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="de-DE")
    page = context.new_page()
    try:
        log_in(page, live_server)
        for name, path in (("statistics", "/staff/statistics?from=2026-11-16&to=2026-11-17"),
                           ("statistics-year", "/staff/statistics?from=2025-11-21&to=2026-11-20"),
                           ("report", "/staff/report?from=2026-11-16&to=2026-11-17")):
            page.goto(live_server + path)
            page.locator("details.numbers summary").first.click()  # a table opened, too
            assert violations(page) == [], name
            assert no_sideways_scrolling(page), name
            screenshot(page, f"staff-{name}")
        assert page.locator("img.chart-image").count() >= 3
        charts = page.eval_on_selector_all("img.chart-image", "images => images.map(i => i.src)")
        page.emulate_media(media="print")
        assert not page.locator(".staff-nav").is_visible()  # the report prints without the menu
        # No two words of a chart overlap, nor run out of it (they were cut: "0,0").
        for source in charts:
            page.goto(source)
            boxes = page.evaluate("""() => [...document.querySelectorAll('text')]
                .filter(t => t.textContent.trim() && getComputedStyle(t).display !== 'none'
                             && getComputedStyle(t).visibility !== 'hidden'
                             && !t.closest('.tooltip, desc, title'))
                .map(t => { const b = t.getBoundingClientRect();
                            return [t.textContent.trim(), b.left, b.top, b.right, b.bottom]; })""")
            width, height = page.evaluate("[innerWidth, innerHeight]")
            assert boxes
            for n, (text, left, top, right, bottom) in enumerate(boxes):
                assert left >= -1 and top >= -1 and right <= width + 1, (text, left, right)
                for other, l2, t2, r2, b2 in boxes[n + 1:]:
                    apart = right <= l2 or r2 <= left or bottom <= t2 or b2 <= top
                    assert apart, (text, other)
    finally:
        context.close()


def test_a_cell_a_spreadsheet_would_run_is_written_as_text():
    from locker_app.services.csv_export import to_csv
    text = to_csv(["Name", "Wert"], [["=HYPERLINK(\"http://x\")", -1.5], ["@SUM(A1)", "-3"]]).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "-1,50"]
    assert rows[2] == ["'@SUM(A1)", "-3"]


def test_the_pilot_report_as_pdf(history, staff_client):
    response = staff_client.get("/staff/report.pdf?from=2026-11-16&to=2026-11-17")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-") and len(response.data) > 5000
    assert 'filename="pilotbericht-2026-11-16-2026-11-17.pdf"' in response.headers["Content-Disposition"]


def test_aggregates_and_figures_on_sqlite_and_postgresql(any_app):
    with any_app.app_context():
        booked = at("2026-11-10", "09:00")
        make(1, at("2026-11-16", "19:00"), at("2026-11-17", "09:00"), created=booked,
             picked=at("2026-11-16", "19:00"), returned=at("2026-11-17", "09:30"))
        db.session.commit()
        assert usage.rebuild(db.session, date(2026, 11, 10), date(2026, 11, 20),
                             now=at("2026-11-21", "12:00")) >= 2
    f = figures(any_app, "2026-11-16", "2026-11-17")
    assert (f.loans, f.loan_minutes, f.overdue, f.late_minutes) == (1, 870, 1, 30)
    with any_app.test_request_context():
        rows = open_data.rows(db.session, date(2026, 11, 16), date(2026, 11, 17))
    assert rows[0]["loans"] is None  # one loan: withheld


def test_the_open_data_are_linked_from_every_page_with_their_licence(client):
    """The files were linked from nowhere (issue 32): every page's footer leads to a page
    that says what they hold, under which licence, and links both."""
    home = client.get("/").get_data(as_text=True)
    assert '<a href="/open-data/">Offene Daten</a>' in home
    page = client.get("/open-data/").get_data(as_text=True)
    assert "Keine personenbezogenen Daten" in page
    assert '<a href="https://www.govdata.de/dl-de/by-2-0">dl-de/by-2-0</a>' in page
    for kind in ("csv", "json"):
        assert f'href="/open-data/nutzung.{kind}"' in page
        assert client.get(f"/open-data/nutzung.{kind}").status_code == 200
    client.get("/lang/en")
    assert "<h1>Open data</h1>" in client.get("/open-data/").get_data(as_text=True)


def test_every_compartment_shows_and_the_median_never_exceeds_the_longest(history):
    """Compartments nobody used were missing from "Utilisation per compartment", the point
    of that chart; the median loan (the middle of its quarter hour) could exceed the
    longest."""
    from locker_app.models import Compartment
    with history.app_context():
        numbers = db.session.scalars(db.select(Compartment.number).where(
            Compartment.cabinet_id == 1).order_by(Compartment.number)).all()
    every = figures(history, "2026-11-16", "2026-11-17")
    assert [label for label, _, _ in every.per_compartment] == [
        f"Schrank am Haupteingang, {n}" for n in numbers]
    assert any(minutes == 0 for _, minutes, _ in every.per_compartment)
    assert any(minutes > 0 for _, minutes, _ in every.per_compartment)
    # With an item type: the compartments holding that type only.
    rollators = figures(history, "2026-11-16", "2026-11-17", item_type_id=1)
    assert 0 < len(rollators.per_compartment) < len(every.per_compartment)
    # The one loan over the clock change took 13 h (780 min); the middle of its quarter
    # hour, 787 min, was told as its median, longer than the loan itself.
    night = figures(history, "2026-10-24", "2026-10-25")
    assert night.loan_minutes_max == 780
    assert night.median_loan_minutes == 780


def test_the_council_report_of_a_quiet_month_is_three_tagged_pages(history, staff_client):
    """Seven pages for a quiet month, one with only a heading, one with only the footer.
    Now at most three, each with its share of text, and a tagged PDF (PDF/UA-1) with the
    document's language and title; the pages are drawn as PNG for a look."""
    import io

    import pikepdf
    import pypdfium2
    from tests.conftest import ARTEFACTS
    response = staff_client.get("/staff/report.pdf?from=2026-11-01&to=2026-11-30")
    assert response.status_code == 200
    pdf = pikepdf.open(io.BytesIO(response.data))
    assert 1 <= len(pdf.pages) <= 3
    assert str(pdf.Root.Lang) == "de"
    assert pdf.Root.MarkInfo.Marked is True
    tree = pdf.Root.StructTreeRoot
    assert len(tree.K) >= 1 if isinstance(tree.K, pikepdf.Array) else tree.K is not None
    with pdf.open_metadata() as meta:
        assert meta.get("pdfuaid:part") == "1"
        assert "Pilotbericht" in meta.get("dc:title")
    drawn = pypdfium2.PdfDocument(response.data)
    folder = ARTEFACTS / "report"
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(len(drawn)):
        page = drawn[number]
        text = page.get_textpage().get_text_range()
        # No page with a heading alone, nor with the footer alone (12 words).
        assert len(text.split()) > 14, (number, text)
        page.render(scale=1).to_pil().save(folder / f"pilot-report-page-{number + 1}.png")
