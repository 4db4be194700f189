"""The Stadtpark locker web application: booking site, controller API."""
from __future__ import annotations

import logging
import math
import time
from functools import cache

from babel import Locale
from flask import Flask, has_request_context, request, session
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError

from locker_app.config import Config
from locker_app.extensions import (babel, csrf, database_wait_seconds, db, login_manager,
                                   migrate)


def select_locale() -> Locale:
    """The reader's language as a Locale object made once (Flask-Babel would parse the
    name again in every request)."""
    from flask import current_app, g, has_request_context
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        # Jobs and mails: the language the job chose for its reader, else German.
        return _locale_object(getattr(g, "locale", None) or languages[0])
    chosen = session.get("lang")
    if chosen in languages:
        return _locale_object(chosen)
    return _locale_object(request.accept_languages.best_match(languages, default=languages[0])
                          or languages[0])


@cache
def _locale_object(name: str) -> Locale:
    return Locale.parse(name)


def create_app(config: type[Config] = Config, overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config)
    app.config.update(overrides or {})
    from locker_app.security import add_security_headers, check_secret
    check_secret(app)
    if app.config.get("PROXY_COUNT"):
        from locker_app.security import TrustedProxyFix
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, app.config["PROXY_COUNT"],
                                       app.config["TRUSTED_PROXIES"])

    _bound_database_waits(app)
    db.init_app(app)
    with app.app_context():
        _tune_sqlite(db.engine)
        if db.engine.dialect.name == "postgresql":
            _bound_request_statements(db.engine, app.config["DATABASE_TIMEOUT_SECONDS"])
            from locker_app.input_guard import guard_postgresql
            guard_postgresql(db.engine)
            _keep_prepared_statements(app, db.engine)
        if db.engine.dialect.name != "sqlite":
            _ping_idle_connections(db.engine)
    migrate.init_app(app, db, directory=str(migrations_dir()), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    add_security_headers(app)

    from locker_app.input_guard import DatabaseInteger
    app.url_map.converters["int"] = DatabaseInteger  # before the routes are added
    from locker_app.booking import bp as booking_bp
    from locker_app.api import bp as api_bp
    from locker_app.auth import bp as auth_bp
    from locker_app.staff import bp as staff_bp, admin_bp
    from locker_app.errors import register_error_pages
    from locker_app.cli import register_cli, register_rule_commands

    from locker_app.health import bp as health_bp
    app.register_blueprint(health_bp)
    from locker_app.logs import configure_logging
    configure_logging(app)
    from locker_app.metrics import bp as metrics_bp, count_requests
    app.register_blueprint(metrics_bp)
    count_requests(app)
    app.register_blueprint(booking_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    from locker_app.api.public import register_openapi
    register_openapi(app)  # /api/v1/openapi.json, made from the public API's code
    app.register_blueprint(auth_bp, url_prefix="/staff")
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(admin_bp, url_prefix="/staff/admin")
    csrf.exempt(api_bp)
    register_error_pages(app)
    from locker_app.input_guard import register_input_guard
    register_input_guard(app)
    from locker_app.limits import register_limits
    register_limits(app)

    from locker_app.services.timeutil import clock_text, day_text, moment_text, to_local
    app.jinja_env.globals["to_local"] = to_local  # macros see globals, not the context
    app.jinja_env.filters["clock"] = clock_text
    app.jinja_env.filters["day"] = day_text
    app.jinja_env.filters["moment"] = moment_text
    from locker_app.services.statistics import percent
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.globals["percent_words"] = percent
    from locker_app.staff import charts
    charts.register(app)

    from locker_app.shared import words
    words.register(app)

    @app.context_processor
    def page_language():
        from flask_babel import get_locale
        return {"locale": str(get_locale() or "de")}

    register_cli(app)
    register_rule_commands(app)
    from locker_app.staff.cli import register_staff_commands
    register_staff_commands(app)
    logging.getLogger(__name__).debug("app created")
    return app


# A pooled connection unused for longer than this is asked whether it still lives.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine) -> None:
    """Instead of pool_pre_ping, which asked the database before every request whether the
    connection still lived (a round trip of each page, 0.2 to 0.4 ms of about 10 ms): only
    a connection that lay unused for ``PING_AFTER_IDLE_SECONDS`` is asked, and replaced
    when the database dropped it (a restart, an idle timeout). One in steady use that the
    database dropped a moment ago fails its request once (a plain error page); SQLAlchemy
    then replaces every connection of the pool."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def note_idle_since(_dbapi_connection, record, *_args):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError() from error  # the pool connects anew
            raise


_CONNECTED = "connected_transaction"


@event.listens_for(FlaskSession, "after_begin")
def _note_connected(session, transaction, _connection) -> None:
    """Which session transaction has a connection (SQLAlchemy says so only privately)."""
    session.info[_CONNECTED] = transaction


def _keep_prepared_statements(app: Flask, engine) -> None:
    """PostgreSQL: psycopg forgets the statements it prepared at every ROLLBACK, and a
    request that only read ended with one when its session closed, so each statement was
    planned anew on every request (the site's offer: 2.3 ms instead of 1.1 ms once the
    plan is kept). A request's transaction that wrote nothing ends with COMMIT instead,
    which for the database is the same. Anything that wrote, failed or left changes
    pending still ends with ROLLBACK.

    A statement prepared five times gets a generic plan, made once without its values;
    the statements on reservations write the active states into their SQL so that this
    plan reads the active reservations by a partial index, not all history
    (models.active_reservation, tests/test_city_scale.py)."""

    @event.listens_for(engine, "before_cursor_execute")
    def note_writes(conn, _cursor, statement, *_args):
        if statement.lstrip()[:6].upper() != "SELECT":
            conn.info["wrote"] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def forget_writes(conn):
        if not conn.invalidated:  # (a dropped connection has nothing to forget)
            conn.info.pop("wrote", None)

    @app.teardown_appcontext  # runs before Flask-SQLAlchemy closes the session
    def commit_what_only_read(error):
        session = db.session()
        if error is not None or not session.in_transaction() or (
                session.new or session.dirty or session.deleted):
            return
        if session.info.get(_CONNECTED) is not session.get_transaction():
            # Begun without a connection (an object added after a commit): closing it
            # sends nothing to the database, and asking for one here would begin one.
            return
        try:
            wrote = session.connection().info.get("wrote")
        except SQLAlchemyError:
            return  # a database error ended it (an error page answered): closing rolls back
        if not wrote:
            try:
                session.commit()
            except SQLAlchemyError as lost:
                # The answer is made and nothing was written: a connection lost now must
                # not turn it into an error page (closing the session rolls back).
                logging.getLogger(__name__).warning("closing a request that only read: %s",
                                                    lost)


def _bound_database_waits(app: Flask) -> None:
    """No wait on the database without an end: the pool gives a connection within
    DATABASE_TIMEOUT_SECONDS or says so, and PostgreSQL's connect gives up as soon (libpq
    counts whole seconds, two at least). A server that vanished from the network (no
    acknowledgement of what was sent) ends the connection after the same time; one that
    takes the bytes and never answers is bounded by its statement time-out only."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    seconds = app.config["DATABASE_TIMEOUT_SECONDS"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if url.get_backend_name() == "postgresql":
        options["pool_timeout"] = seconds
        options["connect_args"] = {
            "connect_timeout": max(2, math.ceil(seconds)),
            "tcp_user_timeout": int(seconds * 1000),
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 5,
            "keepalives_count": 3, **options.get("connect_args", {})}
    elif url.database not in (None, "", ":memory:"):
        options["pool_timeout"] = seconds
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _bound_request_statements(engine, seconds: float) -> None:
    """PostgreSQL: a connection made for a visitor's request ends any statement, and any
    wait for a lock, after ``seconds`` (statement_timeout, lock_timeout). In a web process
    every connection is made for a request; the scheduler and the flask commands make
    theirs outside one and keep PostgreSQL's defaults (a migration or a year's statistics
    may take longer).

    Its statements are short, and it compiles none (jit) nor hands any to parallel workers:
    with a million past reservations PostgreSQL guessed a controller's first sync costly,
    compiled it anew on every run (about 35 ms) and started two workers for one part of it
    (about 40 ms on a busy two-core host), for a statement that reads a few thousand rows
    in 13 ms (bench.city_scale: 136 ms a page at 1M against 47 ms at 10k)."""
    milliseconds = int(seconds * 1000)

    @event.listens_for(engine, "do_connect")
    def bound_statements(_dialect, _record, _cargs, cparams):
        if has_request_context():
            cparams["options"] = " ".join(filter(None, [
                cparams.get("options"), f"-c statement_timeout={milliseconds}",
                f"-c lock_timeout={milliseconds}", "-c jit=off",
                "-c max_parallel_workers_per_gather=0"]))


def _tune_sqlite(engine) -> None:
    """SQLite as a server's database: WAL so readers do not wait for the writer, a busy
    timeout so writers queue instead of failing (in a visitor's request no longer than
    DATABASE_TIMEOUT_SECONDS, in jobs and commands half a minute), and foreign keys
    enforced."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            dbapi_connection.execute("PRAGMA journal_mode = WAL")

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection, _record, _proxy):  # in-process: costs no round trip
        busy = int(database_wait_seconds() * 1000)
        dbapi_connection.execute(f"PRAGMA busy_timeout = {busy}")


def migrations_dir():
    from locker_app.config import PROJECT_ROOT
    return PROJECT_ROOT / "migrations"
