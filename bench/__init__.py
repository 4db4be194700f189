"""Benchmarks: each prints its figures; run them as ``python -m bench.<name>``."""
from __future__ import annotations

import atexit
import os
import uuid
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# The PostgreSQL server a bench makes its own databases on (a user that may create them).
ADMIN_URL = os.environ.get("LOCKER_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def record(title: str, command: str, text: str) -> None:
    """Append a run's figures to bench/RESULTS.md (``--record``): a dated heading, the
    command that made them, and what it printed."""
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(f"\n## {title}, {datetime.now():%Y-%m-%d %H:%M}\n\n"
                     f"`{command}`\n\n```\n{text}\n```\n")


def create_database(prefix: str = "locker_bench") -> tuple[str, str]:
    """A new, empty PostgreSQL database of this run's own on ADMIN_URL's server; (its URL,
    its name). A bench never empties a schema someone else may be using; the database is
    dropped when the bench's process ends, or earlier by ``drop_database``."""
    import psycopg
    from sqlalchemy import make_url
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL.replace("+psycopg", ""), autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    atexit.register(drop_database, name)
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False), name


def drop_database(name: str) -> None:
    """Drop a database ``create_database`` made (its connections ended first)."""
    import psycopg
    with psycopg.connect(ADMIN_URL.replace("+psycopg", ""), autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def copy_database(url: str, prefix: str = "locker_bench") -> str:
    """A copy of the bench's database at ``url`` (nobody connected to it), so that two
    versions of the code each start from the same data; its URL. PostgreSQL copies it as a
    template into a database of the run's own (dropped at the end), SQLite copies the file."""
    import shutil

    from sqlalchemy import make_url
    source = make_url(url)
    if source.get_backend_name() == "sqlite":
        target = Path(source.database).with_name(f"{prefix}-{uuid.uuid4().hex[:6]}.sqlite")
        shutil.copyfile(source.database, target)
        return source.set(database=str(target)).render_as_string(hide_password=False)
    import psycopg
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL.replace("+psycopg", ""), autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"')
    atexit.register(drop_database, name)
    return source.set(database=name).render_as_string(hide_password=False)


def remove_copy(url: str) -> None:
    """Remove a copy ``copy_database`` made, once its run is over (a copy at 1M past
    reservations takes most of a gigabyte)."""
    from sqlalchemy import make_url
    copy = make_url(url)
    if copy.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(copy.database + suffix).unlink(missing_ok=True)
    else:
        drop_database(copy.database)
