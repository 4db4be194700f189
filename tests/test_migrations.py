"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from locker_app import create_app
from locker_app.config import TestConfig
from locker_app.extensions import db
from tests.conftest import PG_URL, _reset_postgres, require_postgres


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_matches_models_and_downgrade_works(tmp_path, backend):
    if backend == "postgresql":
        require_postgres()
        _reset_postgres()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        with db.engine.connect() as connection:
            tables = set(db.inspect(connection).get_table_names()) - {"alembic_version"}
        assert tables == set()
        db.session.remove()
        db.engine.dispose()
