"""Backups: one file with the database and the signing keys, readable by its owner only.

The file is a gzipped tar archive: ``manifest.json`` (what it is, when and from which
database it was made, the schema's migration, the rows of each table and a SHA-256 of each
member), the database (SQLite through its online backup API, PostgreSQL through
``pg_dump --format=custom``) and ``keys/key-<id>.pem``. Without the keys, no code in a
visitor's QR would open a door after a restore; with them, the file is as secret as the
keys themselves.

``verify`` reads a file back without restoring it; ``restore`` verifies first, refuses a
database that holds data unless told to write over it, and never leaves a half-restored
one: SQLite takes the copy in one step of its backup API, PostgreSQL in one transaction.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, func, inspect, select, table
from sqlalchemy.engine import Engine

import signed_code
from locker_app.services import signing

FORMAT = "stadtpark-locker-backup"
VERSION = 1
DATABASE_MEMBER = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
# How long pg_dump and pg_restore may take before the command gives up and says so.
TOOL_SECONDS = 1800


class BackupError(Exception):
    """What is wrong with a backup or a restore, in one plain sentence."""


@dataclass(frozen=True)
class Manifest:
    created_at: str
    engine: str
    revision: str | None
    rows: dict[str, int]
    keys: list[int]
    sha256: dict[str, str]

    def as_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "version": VERSION, **self.__dict__},
                          indent=2, sort_keys=True).encode()

    def summary(self) -> str:
        return (f"{self.engine} database at migration {self.revision or 'none'}, made "
                f"{self.created_at}; {self.rows.get('reservation', 0):,} reservations, "
                f"{sum(self.rows.values()):,} rows in {len(self.rows)} tables, "
                f"{len(self.keys)} signing key(s)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _engine_name(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in DATABASE_MEMBER:
        raise BackupError(f"Backups know SQLite and PostgreSQL, not {name}.")
    return name


def _counted(engine: Engine) -> tuple[dict[str, int], str | None]:
    """The rows of each table and the schema's migration."""
    with engine.connect() as connection:
        return _row_counts(connection), _revision(connection)


def _row_counts(connection) -> dict[str, int]:
    names = [n for n in inspect(connection).get_table_names() if n != "alembic_version"]
    return {name: connection.scalar(select(func.count()).select_from(table(name)))
            for name in sorted(names)}


def _revision(connection) -> str | None:
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _pg_environment(engine: Engine) -> dict[str, str]:
    """libpq's variables for pg_dump and pg_restore: the password stays out of the process
    list, and a server that does not answer is given up on."""
    url = engine.url
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGDATABASE": url.database or ""}
    for variable, value in (("PGHOST", url.host), ("PGPORT", url.port),
                            ("PGUSER", url.username), ("PGPASSWORD", url.password)):
        if value:
            env[variable] = str(value)
    return env


def _run_tool(command: list[str], engine: Engine, failed: str) -> None:
    """Run pg_dump or pg_restore; ``failed`` begins the sentence when it fails."""
    what = command[0]
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed; it comes with PostgreSQL's client "
                          f"package (Debian: postgresql-client).")
    try:
        done = subprocess.run(command, env=_pg_environment(engine), capture_output=True,
                              text=True, timeout=TOOL_SECONDS)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {TOOL_SECONDS // 60} minutes and was "
                          f"stopped.") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        errors = [line.split("ERROR:", 1)[1].strip() for line in lines if "ERROR:" in line]
        raise BackupError(f"{failed}: {errors[0] if errors else lines[-1]}")


def _copy_sqlite(source: str, target: Path, seconds: float) -> None:
    """SQLite's online backup: a consistent copy while bookings go on."""
    with sqlite3.connect(source, timeout=seconds) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    origin.close()
    copy.close()


def _private_file(path: Path):
    """A new file only its owner can read (never an existing one written over)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def create(engine: Engine, key_dir: Path, target: Path, say: Callable[[str], None] = print,
           wait_seconds: float = 30) -> Manifest:
    """Write the backup to ``target`` (a new file, mode 0600)."""
    engine_name = _engine_name(engine)
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name.")
    keys = signing.load_private_keys(key_dir)
    if not keys:
        raise BackupError(f"There is no signing key in {key_dir}; without it no code in a "
                          f"backup could be checked after a restore.")
    with tempfile.TemporaryDirectory(prefix="locker-backup-") as work:
        os.chmod(work, 0o700)
        folder = Path(work)
        database = folder / DATABASE_MEMBER[engine_name]
        say("Copying the database ...")
        if engine_name == "sqlite":
            _copy_sqlite(engine.url.database, database, wait_seconds)
            copy = create_engine(f"sqlite:///{database}")
            try:  # counted in the copy itself: what the file holds
                rows, revision = _counted(copy)
            finally:
                copy.dispose()
        else:
            # The counts and the dump see the same moment only roughly; the counts are
            # what verify compares a SQLite copy with, and a summary here.
            rows, revision = _counted(engine)
            _run_tool(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                       f"--file={database}"], engine, "pg_dump failed")
        say(f"  {database.stat().st_size / 1e6:.1f} MB")
        members = {DATABASE_MEMBER[engine_name]: database}
        for kid in sorted(keys):
            path = key_dir / f"key-{kid}.pem"
            members[f"keys/{path.name}"] = path
        manifest = Manifest(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            engine=engine_name, revision=revision, rows=rows,
                            keys=sorted(keys),
                            sha256={name: _sha256(path) for name, path in members.items()})
        say("Writing the file ...")
        partial = target.with_name(target.name + ".partial")
        try:
            with _private_file(partial) as handle, \
                    tarfile.open(fileobj=handle, mode="w:gz") as archive:
                data = manifest.as_json()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mode = len(data), 0o600
                archive.addfile(info, io.BytesIO(data))
                for name, path in members.items():
                    archive.add(path, arcname=name, recursive=False,
                                filter=lambda member: _private_member(member))
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return manifest


def _private_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.mode, member.uid, member.gid, member.uname, member.gname = 0o600, 0, 0, "", ""
    return member


def _read(path: Path, folder: Path) -> Manifest:
    """Unpack ``path`` into ``folder`` and check it; the manifest, or BackupError."""
    if not path.is_file():
        raise BackupError(f"There is no file {path}.")
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            names = archive.getnames()
            if "manifest.json" not in names:
                raise BackupError(f"{path} is not a backup of the Stadtpark locker.")
            raw = json.loads(archive.extractfile("manifest.json").read())
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise BackupError(f"{path} is not a backup of the Stadtpark locker.")
            if raw.get("version") != VERSION:
                raise BackupError(f"{path} is a backup in format {raw.get('version')}, which "
                                  f"this version does not read (it reads {VERSION}).")
            manifest = Manifest(**{field: raw[field] for field in Manifest.__dataclass_fields__})
            for name in manifest.sha256:
                if name not in names or ".." in Path(name).parts or Path(name).is_absolute():
                    raise BackupError(f"{path} is damaged: {name} is missing.")
                archive.extract(name, folder, filter="data")
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, json.JSONDecodeError,
            KeyError, TypeError):
        raise BackupError(f"{path} is damaged or incomplete, or not a backup of the "
                          f"Stadtpark locker.") from None
    for name, digest in manifest.sha256.items():
        if _sha256(folder / name) != digest:
            raise BackupError(f"{path} is damaged: {name} is not what was written.")
    return manifest


def _check_contents(manifest: Manifest, folder: Path) -> None:
    for kid in manifest.keys:
        try:
            signed_code.private_key_from_pem((folder / "keys" / f"key-{kid}.pem").read_bytes())
        except Exception:  # any parse failure: the key is unusable
            raise BackupError(f"Signing key {kid} in the backup cannot be read.") from None
    database = folder / DATABASE_MEMBER.get(manifest.engine, "?")
    if manifest.engine == "sqlite":
        copy = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("The database in the backup is damaged.")
            for name, count in manifest.rows.items():
                if copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] != count:
                    raise BackupError(f"The database in the backup lacks rows of {name}.")
        except sqlite3.DatabaseError:
            raise BackupError("The database in the backup is damaged.") from None
        finally:
            copy.close()
    elif manifest.engine == "postgresql":
        if shutil.which("pg_restore") is None:
            raise BackupError("pg_restore is not installed; it comes with PostgreSQL's "
                              "client package (Debian: postgresql-client).")
        listed = subprocess.run(["pg_restore", "--list", str(database)], capture_output=True,
                                timeout=TOOL_SECONDS)
        if listed.returncode != 0:
            raise BackupError("The database dump in the backup cannot be read.")
    else:
        raise BackupError(f"The backup holds a {manifest.engine} database, which this "
                          f"version does not know.")


def verify(path: Path) -> Manifest:
    """Read the backup back without restoring it: the manifest, or BackupError."""
    with tempfile.TemporaryDirectory(prefix="locker-verify-") as work:
        manifest = _read(path, Path(work))
        _check_contents(manifest, Path(work))
    return manifest


def holds_data(engine: Engine) -> bool:
    """Whether any table of the database (but the migrations' own) has a row."""
    with engine.connect() as connection:
        return any(_row_counts(connection).values())


def restore(engine: Engine, key_dir: Path, path: Path, *, force: bool = False,
            say: Callable[[str], None] = print, wait_seconds: float = 30,
            known_revisions: set[str] | None = None) -> Manifest:
    """Restore the backup at ``path`` into the database of ``engine`` and its keys into
    ``key_dir``. Refused when the database holds data, unless ``force``, and when its
    schema is from a migration this version does not know (``known_revisions``)."""
    engine_name = _engine_name(engine)
    with tempfile.TemporaryDirectory(prefix="locker-restore-") as work:
        folder = Path(work)
        say("Checking the backup ...")
        manifest = _read(path, folder)
        _check_contents(manifest, folder)
        if manifest.engine != engine_name:
            raise BackupError(f"This is a backup of a {manifest.engine} database; it restores "
                              f"into a {manifest.engine} database only, not {engine_name}.")
        if known_revisions is not None and manifest.revision not in known_revisions | {None}:
            raise BackupError(f"This backup was made by a newer version of the locker "
                              f"software (migration {manifest.revision}); install that "
                              f"version, or a later one, to restore it.")
        if not force and holds_data(engine):
            raise BackupError("The database holds data already. Restore into an empty "
                              "database, or add --force to replace what it holds.")
        clashing = [kid for kid in manifest.keys if (key_dir / f"key-{kid}.pem").exists()
                    and (key_dir / f"key-{kid}.pem").read_bytes()
                    != (folder / "keys" / f"key-{kid}.pem").read_bytes()]
        if clashing and not force:
            raise BackupError(f"{key_dir} holds other signing keys with the same numbers "
                              f"({', '.join(map(str, clashing))}). Restore into an empty "
                              f"folder, or add --force to replace them.")
        database = folder / DATABASE_MEMBER[engine_name]
        say("Restoring the database ...")
        engine.dispose()  # no connection of ours keeps an old state open
        if engine_name == "sqlite":
            # The backup API in the other direction: the target is replaced in one step,
            # its write-ahead log too, or left as it was.
            with sqlite3.connect(database) as origin, \
                    sqlite3.connect(engine.url.database, timeout=wait_seconds) as target:
                origin.backup(target)
            origin.close()
            target.close()
        else:
            _run_tool(["pg_restore", "--single-transaction", "--exit-on-error", "--clean",
                       "--if-exists", "--no-owner", "--no-privileges",
                       f"--dbname={engine.url.database}", str(database)], engine,
                      "The restore failed and was undone; the database is as it was")
        say("Restoring the signing keys ...")
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for kid in manifest.keys:
            name = f"key-{kid}.pem"
            partial = key_dir / (name + ".partial")
            partial.unlink(missing_ok=True)
            with _private_file(partial) as handle:
                handle.write((folder / "keys" / name).read_bytes())
            os.replace(partial, key_dir / name)
    return manifest


def default_name(now: datetime | None = None) -> str:
    now = now or datetime.now()
    return f"locker-backup-{now:%Y%m%d-%H%M%S}.tar.gz"
