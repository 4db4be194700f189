"""Issue 33, backup and restore: ``flask backup create|verify|restore``, one file with the
database and the signing keys, on SQLite and on PostgreSQL."""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from locker_app import create_app
from locker_app.config import TestConfig
from locker_app.extensions import db
from locker_app.models import ItemType, Reservation, Site
from locker_app.services import booking, reservations
from tests.conftest import PG_URL, close_app, require_postgres, wait_until

NOW = datetime(2030, 5, 1, 7)


def _new_postgres_database(request) -> str:
    """A database of this test's own on the test server, dropped after it."""
    import psycopg
    require_postgres()
    name = f"locker_restore_{uuid.uuid4().hex[:8]}"
    admin = PG_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    request.addfinalizer(drop)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def _empty_app(request, tmp_path: Path, engine: str, name: str = "restored"):
    """An app on a new, empty database of ``engine`` with an empty key folder."""
    url = (_new_postgres_database(request) if engine == "postgresql"
           else f"sqlite:///{tmp_path / (name + '.sqlite')}")
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url,
                                  "SIGNING_KEY_DIR": str(tmp_path / f"{name}-keys")})
    request.addfinalizer(lambda: close_app(app))
    return app


def _flask(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert "Traceback" not in result.output, result.output
    return result


def _bookings(app, count: int, first: int = 0) -> list[int]:
    with app.app_context():
        site = db.session.scalars(select(Site)).one()
        kinds = db.session.scalars(select(ItemType)).all()
        made = []
        for n in range(first, first + count):
            start = datetime(2030, 5, 2 + n // 96, 8) + timedelta(minutes=30 * (n // 8 % 12))
            made.append(booking.create_reservation(
                db.session, site=site, item_type=kinds[n % 2], start=start,
                end=start + timedelta(minutes=30), name=f"Gast {n}", email=None, now=NOW).id)
        return made


def test_a_backup_made_while_bookings_run_restores_every_booking(any_app, tmp_path, request):
    """The backup is taken while another thread books; restored into a new database (and
    an empty key folder), it holds every booking committed before it began, and their codes
    open their pages."""
    app = any_app
    engine = "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"
    committed: list[int] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def book_on():
        try:
            n = 0
            while not stop.is_set() and n < 600:
                committed.extend(_bookings(app, 1, n))
                n += 1
        except BaseException as error:  # seen by the test, not lost in the thread
            failures.append(error)
    worker = threading.Thread(target=book_on)
    worker.start()
    try:
        wait_until(lambda: len(committed) >= 20, message="bookings did not start")
        before = list(committed)
        file = tmp_path / "backup.tar.gz"
        made = _flask(app, "backup", "create", str(file))
        wait_until(lambda: len(committed) >= len(before) + 5 or failures or not worker.is_alive(),
                   message="bookings stopped")
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not failures, failures
    assert made.exit_code == 0 and "Backup written to" in made.output, made.output
    assert stat.S_IMODE(file.stat().st_mode) == 0o600

    checked = _flask(app, "backup", "verify", str(file))
    assert checked.exit_code == 0 and "is a complete backup" in checked.output, checked.output

    restored = _empty_app(request, tmp_path, engine)
    done = _flask(restored, "backup", "restore", str(file))
    assert done.exit_code == 0 and "Restored" in done.output, done.output
    key_files = list(Path(restored.config["SIGNING_KEY_DIR"]).glob("key-*.pem"))
    assert key_files and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in key_files)
    with app.app_context():
        codes = dict(db.session.execute(select(Reservation.id, Reservation.code).where(
            Reservation.id.in_(before))).all())
    with restored.app_context():
        found = set(db.session.scalars(select(Reservation.id)))
        assert set(before) <= found, sorted(set(before) - found)
        last = reservations.find_by_code(db.session, codes[before[-1]])
        assert last.id == before[-1]
    page = restored.test_client().get(f"/r/{codes[before[-1]]}")
    assert page.status_code == 200


def test_a_damaged_truncated_or_foreign_file_is_refused_in_words(app, tmp_path):
    file = tmp_path / "backup.tar.gz"
    assert _flask(app, "backup", "create", str(file)).exit_code == 0
    data = file.read_bytes()

    def refused(name: str, content: bytes, words: str):
        bad = tmp_path / name
        bad.write_bytes(content)
        result = _flask(app, "backup", "verify", str(bad))
        assert result.exit_code != 0 and words in result.output, (name, result.output)

    refused("truncated.tar.gz", data[: len(data) // 2], "damaged or incomplete")
    middle = len(data) // 2
    refused("damaged.tar.gz", data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:],
            "damaged")
    refused("foreign.tar.gz", b"Hello, this is a letter.\n", "not a backup")
    # A tidy archive of something else.
    other = io.BytesIO()
    with tarfile.open(fileobj=other, mode="w:gz") as archive:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"notes"))
    refused("other.tar.gz", other.getvalue(), "not a backup of the Stadtpark locker")
    # Repacked by hand with the database changed: its checksum tells.
    changed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as source, \
            tarfile.open(fileobj=changed, mode="w:gz") as target:
        for member in source.getmembers():
            content = source.extractfile(member).read()
            if member.name == "database.sqlite":
                content = content[:-1] + b"\x01"
            target.addfile(member, io.BytesIO(content))
    refused("changed.tar.gz", changed.getvalue(), "database.sqlite is not what was written")
    missing = _flask(app, "backup", "verify", str(tmp_path / "nothing.tar.gz"))
    assert missing.exit_code != 0 and "There is no file" in missing.output


def test_a_restore_never_writes_over_data_unless_told(app, tmp_path):
    first = _bookings(app, 3)
    file = tmp_path / "backup.tar.gz"
    assert _flask(app, "backup", "create", str(file)).exit_code == 0
    later = _bookings(app, 2, 3)
    refused = _flask(app, "backup", "restore", str(file))
    assert refused.exit_code != 0 and "holds data already" in refused.output
    with app.app_context():
        assert set(db.session.scalars(select(Reservation.id))) == set(first + later)
    forced = _flask(app, "backup", "restore", "--force", str(file))
    assert forced.exit_code == 0, forced.output
    with app.app_context():
        db.session.remove()
        assert set(db.session.scalars(select(Reservation.id))) == set(first)
    again = _flask(app, "backup", "create", str(file))
    assert again.exit_code != 0 and "exists already" in again.output


def test_a_failed_restore_on_postgresql_leaves_the_database_as_it_was(app, tmp_path, request):
    """pg_restore runs in one transaction. Here the target refuses indexes (an event
    trigger), which come after the tables and their rows: the restore stops there, and the
    tables and rows it had written are gone again; no key is written either."""
    from sqlalchemy import text
    file = tmp_path / "backup.tar.gz"
    source = _empty_app(request, tmp_path, "postgresql", "source")
    with source.app_context():
        from flask_migrate import upgrade
        from locker_app.demo_data import seed
        upgrade()
        seed(db.session, "token-" + "x" * 30)
    assert _flask(source, "backup", "create", str(file)).exit_code == 0
    target = _empty_app(request, tmp_path, "postgresql", "target")
    with target.app_context():
        db.session.execute(text(
            "CREATE FUNCTION refuse_indexes() RETURNS event_trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no indexes here'; END $$"))
        db.session.execute(text("CREATE EVENT TRIGGER refuse_indexes ON ddl_command_end "
                                "WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION refuse_indexes()"))
        db.session.commit()
    failed = _flask(target, "backup", "restore", str(file))
    assert failed.exit_code != 0 and "failed and was undone" in failed.output, failed.output
    assert "no indexes here" in failed.output
    with target.app_context():
        db.session.remove()
        assert db.inspect(db.engine).get_table_names() == []
    assert not list(Path(target.config["SIGNING_KEY_DIR"]).glob("key-*.pem"))


def test_a_backup_restores_into_its_own_kind_of_database_only(app, tmp_path, request):
    file = tmp_path / "backup.tar.gz"
    assert _flask(app, "backup", "create", str(file)).exit_code == 0
    other = _empty_app(request, tmp_path, "postgresql")
    refused = _flask(other, "backup", "restore", str(file))
    assert refused.exit_code != 0 and "backup of a sqlite database" in refused.output


def test_a_backup_of_a_newer_version_is_not_restored(app, tmp_path, request):
    """Its schema comes from a migration this version does not have: restored, the site
    would fail on its first page; refused in words instead."""
    import json
    file = tmp_path / "backup.tar.gz"
    assert _flask(app, "backup", "create", str(file)).exit_code == 0
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(file) as source, tarfile.open(newer, mode="w:gz") as target:
        for member in source.getmembers():
            content = source.extractfile(member).read()
            if member.name == "manifest.json":
                content = json.dumps({**json.loads(content), "revision": "0042"}).encode()
                member.size = len(content)
            target.addfile(member, io.BytesIO(content))
    other = _empty_app(request, tmp_path, "sqlite")
    refused = _flask(other, "backup", "restore", str(newer))
    assert refused.exit_code != 0 and "newer version" in refused.output, refused.output
    assert _flask(other, "backup", "restore", str(file)).exit_code == 0
