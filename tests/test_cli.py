"""The flask commands staff use until the staff pages exist."""
from datetime import date, time

from locker_app.extensions import db
from locker_app.models import BookingRule, OpeningHours, SpecialDay


def test_rules_and_hours_commands(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rules", "set", "stadtpark", "bollerwagen", "--max-loan-minutes", "600"])
    assert result.output.strip() == "saved"
    assert "bollerwagen: loan 30-600 min" in runner.invoke(args=["rules", "show", "stadtpark"]).output
    bad = runner.invoke(args=["rules", "set", "stadtpark", "bollerwagen", "--min-loan-minutes", "900"])
    assert bad.exit_code != 0 and "do not fit together" in bad.output
    assert runner.invoke(args=["hours", "stadtpark", "6"]).output.strip() == "saved"  # Sundays closed
    runner.invoke(args=["hours", "stadtpark", "2026-12-24", "08:00", "12:00", "--note", "Heiligabend"])
    assert runner.invoke(args=["hours", "stadtpark", "0", "20:00", "08:00"]).exit_code != 0
    assert runner.invoke(args=["hours", "stadtpark", "9", "08:00", "12:00"]).exit_code != 0
    with app.app_context():
        assert db.session.scalars(db.select(BookingRule.max_loan_minutes).where(
            BookingRule.item_type_id == 2)).one() == 600
        assert 6 not in db.session.scalars(db.select(OpeningHours.weekday)).all()
        special = db.session.scalars(db.select(SpecialDay)).one()
        assert (special.day, special.opens, special.closes) == (date(2026, 12, 24), time(8), time(12))


def test_item_and_job_commands(app):
    runner = app.test_cli_runner()
    assert "moved: []" in runner.invoke(args=["item", "out-of-service", "3"]).output
    assert "no item 99" in runner.invoke(args=["item", "out-of-service", "99"]).output
    assert "back in service" in runner.invoke(args=["item", "back-in-service", "3"]).output
    output = runner.invoke(args=["run-jobs"]).output
    assert "expire_no_shows: 0" in output and "send_mails: 0" in output
    assert "unknown job" in runner.invoke(args=["run-jobs", "nonsense"]).output
