"""The controller's local SQLite database: outbox, reservation cache, compartments, keys.

Written with WAL and synchronous=FULL: an event is on disk before anything else happens,
and survives a crash or a power cut.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    reservation_id INTEGER,
    compartment INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS reservation (
    id INTEGER PRIMARY KEY,
    server_state TEXT,
    local_state TEXT,
    compartment INTEGER,
    valid_from TEXT,
    valid_until TEXT,
    code_hash TEXT,
    early_from TEXT,
    locale TEXT
);
CREATE INDEX IF NOT EXISTS reservation_code ON reservation(code_hash);
CREATE TABLE IF NOT EXISTS compartment (
    number INTEGER PRIMARY KEY,
    board INTEGER NOT NULL,
    lock INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS door (
    compartment INTEGER PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS remote_command (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_key (key_id INTEGER PRIMARY KEY, public_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class LocalReservation:
    id: int
    server_state: str | None
    local_state: str | None
    compartment: int | None
    valid_from: str | None = None
    valid_until: str | None = None
    early_from: str | None = None  # a pickup may start here when nobody else has the item
    locale: str | None = None  # the language the visitor booked in: the display speaks it too


@dataclass(frozen=True)
class OutboxEvent:
    seq: int
    idempotency_key: str
    kind: str
    occurred_at: str
    reservation_id: int | None
    compartment: int | None
    detail: dict

    def as_json(self) -> dict:
        return {"idempotency_key": self.idempotency_key, "kind": self.kind,
                "occurred_at": self.occurred_at, "reservation_id": self.reservation_id,
                "compartment": self.compartment, "detail": self.detail}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(reservation)")}
        for column in ("early_from", "locale"):  # a database from before these columns
            if column not in columns:
                self._db.execute(f"ALTER TABLE reservation ADD COLUMN {column} TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Outbox ---------------------------------------------------------------------------
    def add_event(self, kind: str, *, occurred_at: datetime, reservation_id: int | None = None,
                  compartment: int | None = None, detail: dict | None = None,
                  door: dict | None = None, local_state: str | None = None) -> str:
        """Append an event; in the same transaction store the compartment's door state and
        the reservation's local state when given, so a crash never splits them."""
        key = uuid.uuid4().hex
        with self._transaction():
            self._db.execute(
                "INSERT INTO outbox (idempotency_key, kind, occurred_at, reservation_id,"
                " compartment, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, _iso(occurred_at), reservation_id, compartment,
                 json.dumps(detail or {}, sort_keys=True)))
            if door is not None:
                self._save_door(compartment, door)
            if local_state is not None and reservation_id is not None:
                self._set_local_state(reservation_id, local_state)
        return key

    @contextmanager
    def _transaction(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _save_door(self, compartment: int, door: dict) -> None:
        self._db.execute("INSERT INTO door (compartment, state) VALUES (?, ?) ON CONFLICT"
                         "(compartment) DO UPDATE SET state = excluded.state",
                         (compartment, json.dumps(door, sort_keys=True)))

    def doors(self) -> dict[int, dict]:
        with self._lock:
            rows = self._db.execute("SELECT compartment, state FROM door").fetchall()
        return {compartment: json.loads(state) for compartment, state in rows}

    # Remote commands: carried out at most once, whatever restarts happen ---------------------
    def claim_command(self, command_id: str, seq: int, at: datetime, outcome: str) -> bool:
        """Record a command before acting on it. False when it was seen before."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO remote_command (id, seq, received_at, outcome) VALUES (?, ?, ?, ?)",
                (command_id, seq, _iso(at), outcome))
            return cursor.rowcount == 1

    def last_command_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM remote_command").fetchone()
        return row[0] or 0

    def unsent_events(self, limit: int = 100) -> list[OutboxEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, idempotency_key, kind, occurred_at, reservation_id, compartment,"
                " detail FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [OutboxEvent(*row[:6], json.loads(row[6])) for row in rows]

    def mark_sent(self, keys: list[str], at: datetime) -> None:
        with self._lock:
            self._db.executemany("UPDATE outbox SET sent_at = ? WHERE idempotency_key = ?",
                                 [(_iso(at), key) for key in keys])

    def outbox_length(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def all_events(self) -> list[OutboxEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, idempotency_key, kind, occurred_at, reservation_id, compartment,"
                " detail FROM outbox ORDER BY seq").fetchall()
        return [OutboxEvent(*row[:6], json.loads(row[6])) for row in rows]

    # What the server told us ------------------------------------------------------------
    def apply_sync(self, document: dict) -> int:
        """Store one page of the server's sync answer in one transaction; return the cursor."""
        cabinet = document["cabinet"]
        with self._transaction():
            self._db.execute("DELETE FROM compartment")
            self._db.executemany("INSERT INTO compartment (number, board, lock) VALUES (?, ?, ?)",
                                 [(c["number"], c["board"], c["lock"]) for c in cabinet["compartments"]])
            self._db.execute("DELETE FROM signing_key")
            self._db.executemany("INSERT INTO signing_key (key_id, public_key) VALUES (?, ?)",
                                 [(int(k), v) for k, v in document["keys"].items()])
            for r in document["reservations"]:
                self._db.execute(
                    "INSERT INTO reservation (id, server_state, compartment, valid_from, valid_until,"
                    " code_hash, early_from, locale) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE"
                    " SET server_state = excluded.server_state, compartment = excluded.compartment,"
                    " valid_from = excluded.valid_from, valid_until = excluded.valid_until,"
                    " code_hash = excluded.code_hash, early_from = excluded.early_from,"
                    " locale = excluded.locale",
                    (r["id"], r["state"], r["compartment"], r["valid_from"], r["valid_until"],
                     r.get("code_hash"), r.get("early_from"), r.get("locale")))
            self._set("cabinet_id", str(cabinet["id"]))
            self._set("inverted_polarity", "1" if cabinet.get("inverted_polarity") else "0")
            if cabinet.get("board_family"):
                self._set("board_family", str(cabinet["board_family"]))
            for name in ("hotline", "timezone"):  # for what the display says
                if cabinet.get(name) is not None:
                    self._set(name, str(cabinet[name]))
            if document.get("code_salt"):
                self._set("code_salt", document["code_salt"])
            self._set("sync_cursor", str(document["cursor"]))
            self._set("last_sync", _iso(datetime.now(timezone.utc)))
        return int(document["cursor"])

    def _set(self, name: str, value: str) -> None:
        self._db.execute("INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT(name)"
                         " DO UPDATE SET value = excluded.value", (name, value))

    def set_setting(self, name: str, value: str) -> None:
        with self._lock:
            self._set(name, value)

    def setting(self, name: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def sync_cursor(self) -> int:
        return int(self.setting("sync_cursor", "0"))

    def cabinet_id(self) -> int | None:
        value = self.setting("cabinet_id")
        return int(value) if value is not None else None

    def public_keys(self) -> dict[int, str]:
        with self._lock:
            return dict(self._db.execute("SELECT key_id, public_key FROM signing_key").fetchall())

    def compartments(self) -> dict[int, tuple[int, int]]:
        """Compartment number -> (board address, lock number)."""
        with self._lock:
            rows = self._db.execute("SELECT number, board, lock FROM compartment").fetchall()
        return {number: (board, lock) for number, board, lock in rows}

    # Reservations as this controller knows them -------------------------------------------
    def reservation(self, reservation_id: int) -> LocalReservation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, server_state, local_state, compartment, valid_from, valid_until,"
                " early_from, locale FROM reservation WHERE id = ?", (reservation_id,)).fetchone()
        return LocalReservation(*row) if row else None

    def reservation_by_code_hash(self, code_hash: str) -> LocalReservation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, server_state, local_state, compartment, valid_from, valid_until,"
                " early_from, locale FROM reservation WHERE code_hash = ? ORDER BY id DESC", (code_hash,)).fetchone()
        return LocalReservation(*row) if row else None

    def compartment_taken(self, compartment: int, reservation_id: int, now: datetime) -> bool:
        """Whether another reservation has this compartment's item now: out with a visitor,
        or in its own pickup window. An early pickup is allowed only when it is not."""
        with self._lock:
            rows = self._db.execute(
                "SELECT server_state, local_state, valid_from, valid_until FROM reservation"
                " WHERE compartment = ? AND id != ?"
                " AND coalesce(server_state, '') NOT IN ('returned', 'cancelled', 'no_show')"
                " AND coalesce(local_state, '') != 'returned'",
                (compartment, reservation_id)).fetchall()
        for server_state, local_state, valid_from, valid_until in rows:
            if {server_state, local_state} & {"picked_up", "overdue"}:
                return True  # out with a visitor
            if valid_from and valid_until and _parse(valid_from) <= now < _parse(valid_until):
                return True  # someone else's pickup window runs
        return False

    def save_status(self, status: dict) -> None:
        with self._lock:
            self._set("status", json.dumps(status, sort_keys=True))

    def _set_local_state(self, reservation_id: int, state: str) -> None:
        self._db.execute(
            "INSERT INTO reservation (id, local_state) VALUES (?, ?) ON CONFLICT(id)"
            " DO UPDATE SET local_state = excluded.local_state", (reservation_id, state))
