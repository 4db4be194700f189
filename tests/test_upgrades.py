"""Issue 33, upgrades: a database at every earlier migration, with rows in every table,
upgrades to the newest with its rows kept; and one step down works with rows in it."""
from __future__ import annotations

import shutil
from datetime import date, datetime, time, timedelta

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, select

from locker_app import create_app, migrations_dir
from locker_app.config import TestConfig
from locker_app.demo_data import seed
from locker_app.extensions import db
from locker_app.models import (AuditEntry, Cabinet, ControllerEvent, Controller, DailyEvents,
                               DailyUsage, Item, ItemType, LoginAttempt, OutgoingMail,
                               RemoteCommand, Site, SpecialDay, StaffSession, StaffUser,
                               VisitorReport)
from locker_app.services import booking
from tests.conftest import PG_URL, _reset_postgres, close_app, require_postgres

NOW = datetime(2030, 5, 1, 7)
REVISIONS = [script.revision for script in
             reversed(list(ScriptDirectory(str(migrations_dir())).walk_revisions()))]


def _fill_every_table() -> None:
    """At the newest schema: the demo data, then a row in each table it leaves empty."""
    seed(db.session, "upgrade-token-" + "x" * 20)
    site = db.session.scalars(select(Site)).one()
    cabinet = db.session.scalars(select(Cabinet)).one()
    rollator = db.session.scalars(select(ItemType).filter_by(code="rollator")).one()
    item = db.session.scalars(select(Item)).first()
    controller = db.session.scalars(select(Controller)).one()
    start = datetime(2030, 5, 2, 8)
    reservation = booking.create_reservation(
        db.session, site=site, item_type=rollator, start=start,
        end=start + timedelta(hours=1), name="Erika", email="erika@example.org", now=NOW)
    staff = StaffUser(username="anna", display_name="Anna", password_hash="x", role="admin")
    alert = ControllerEvent(controller=controller, idempotency_key="k1", kind="door_forced",
                            occurred_at=NOW, reservation_id=reservation.id, compartment=1,
                            detail='{"seconds": 30}')
    db.session.add_all([
        SpecialDay(site_id=site.id, day=date(2030, 12, 24), opens=time(8), closes=time(12),
                   note="Heiligabend"),
        staff, alert,
        RemoteCommand(uuid="0" * 36, cabinet_id=cabinet.id, compartment=1,
                      requested_by="anna", reason="stuck", expires_at=NOW),
        LoginAttempt(username="anna", address="10.0.0.1"),
        AuditEntry(actor="anna", action="item_retired", target="item 1"),
        VisitorReport(kind="defect", reservation_id=reservation.id, item_id=item.id,
                      message="Bremse lose"),
        DailyUsage(day=date(2030, 5, 2), item_id=item.id, site_id=site.id,
                   item_type_id=rollator.id, cabinet_id=cabinet.id, compartment=1, bookings=1),
        DailyEvents(day=date(2030, 5, 2), cabinet_id=cabinet.id, site_id=site.id,
                    kind="scan_refused", reason="too_early", count=2),
    ])
    db.session.flush()
    db.session.add_all([StaffSession(token_hash="t" * 64, staff_user_id=staff.id),
                        OutgoingMail(controller_event_id=alert.id, kind="alert",
                                     to_address="duty@example.org")])
    db.session.commit()


def _rows() -> dict[str, dict[tuple, dict]]:
    """Every row of every table (but alembic's), by primary key."""
    metadata = MetaData()
    metadata.reflect(db.engine)
    found = {}
    with db.engine.connect() as connection:
        for name, table in metadata.tables.items():
            if name == "alembic_version":
                continue
            key = [c.name for c in table.primary_key.columns]
            found[name] = {tuple(row[k] for k in key): dict(row)
                           for row in connection.execute(table.select()).mappings()}
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def filled(request, tmp_path):
    """A way to get a database at the newest migration with a row in every table."""
    backend = request.param
    if backend == "postgresql":
        require_postgres()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'upgrade.sqlite'}"
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SIGNING_KEY_DIR": str(tmp_path / "keys")})
    template = tmp_path / "filled.sqlite"

    def fresh():
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
            if backend == "postgresql":
                _reset_postgres()
            elif template.exists():
                shutil.copy(template, tmp_path / "upgrade.sqlite")
                return
            upgrade()
            _fill_every_table()
            if backend == "sqlite":
                db.engine.dispose()
                shutil.copy(tmp_path / "upgrade.sqlite", template)
    yield app, fresh
    close_app(app)


def test_every_earlier_migration_upgrades_with_its_rows(filled):
    """From each earlier migration (reached by going down from a filled database, so that
    each holds rows in every table it has), up to the newest: every row is still there
    with the values it had."""
    app, fresh = filled
    fresh()
    with app.app_context():
        newest = _rows()
    assert all(newest.values()), [name for name, rows in newest.items() if not rows]
    for revision in REVISIONS[:-1]:
        fresh()
        with app.app_context():
            downgrade(revision=revision)
            db.session.remove()
            before = _rows()
            assert all(before.values()), (revision, [n for n, r in before.items() if not r])
            upgrade()
            db.session.remove()
            after = _rows()
        for name, rows in before.items():
            assert set(after[name]) == set(rows), (revision, name)
            for key, row in rows.items():
                kept = {column: after[name][key][column] for column in row}
                assert kept == row, (revision, name, key)


def test_one_step_down_and_up_again_keeps_the_rows(filled):
    """``flask db downgrade`` one step, as after an upgrade gone wrong: every table the
    older schema has keeps its rows (what the newest migration added goes with it), and
    the upgrade after it works again."""
    app, fresh = filled
    fresh()
    with app.app_context():
        before = _rows()
        downgrade(revision="-1")
        db.session.remove()
        down = _rows()
        upgrade()
        db.session.remove()
        after = _rows()
    assert down and all(set(rows) == set(before[name]) for name, rows in down.items())
    assert set(after) == set(before)
    assert all(set(after[name]) == set(rows) for name, rows in down.items())
