"""The Stadtpark locker web application: booking site, controller API."""
from __future__ import annotations

import logging

from flask import Flask, request, session

from locker_app.config import Config
from locker_app.extensions import babel, csrf, db, migrate


def select_locale() -> str:
    from flask import current_app
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages, default=languages[0]) or languages[0]


def create_app(config: type[Config] = Config, overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config)
    app.config.update(overrides or {})

    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_dir()), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)

    from locker_app.booking import bp as booking_bp
    from locker_app.api import bp as api_bp
    from locker_app.errors import register_error_pages
    from locker_app.cli import register_cli

    app.register_blueprint(booking_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)
    register_error_pages(app)
    register_cli(app)
    logging.getLogger(__name__).debug("app created")
    return app


def migrations_dir():
    from locker_app.config import PROJECT_ROOT
    return PROJECT_ROOT / "migrations"
