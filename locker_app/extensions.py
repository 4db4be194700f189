"""Extensions live at module level and are bound to an app in ``create_app``."""
from flask import current_app, has_request_context
from flask_babel import Babel, lazy_gettext as _l
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints, so later migrations can alter them (SQLite batch mode needs names).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please log in to see this page.")
login_manager.login_message_category = "info"


# How long a scheduled job or a flask command waits for the database (a lock, SQLite's
# write turn); a visitor's request waits DATABASE_TIMEOUT_SECONDS.
JOB_DATABASE_WAIT_SECONDS = 30.0


def database_wait_seconds() -> float:
    """How long the work under way may wait for the database."""
    if has_request_context():
        return current_app.config["DATABASE_TIMEOUT_SECONDS"]
    return JOB_DATABASE_WAIT_SECONDS
