"""Every migration goes down and up again on the database under test, and the head matches the models."""

from __future__ import annotations

import os

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import make_url

import kehu.models  # noqa: F401
from kehu.core.db import Base, Database, migrations_dir, recreate_database


def _scratch_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    base = os.environ.get("KEHU_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    url = make_url(base)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return recreate_database(url.set(database=f"{url.database}_migrations_{worker}").render_as_string(
        hide_password=False))


def test_migrations_go_down_to_nothing_and_up_to_the_models(tmp_path):
    database = Database(_scratch_url(tmp_path))
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    try:
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            command.downgrade(config, "base")
            assert "profiles" not in database.engine.dialect.get_table_names(connection)
            command.upgrade(config, "head")
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            if connection.dialect.name == "postgresql":  # what the models cannot say: the table's storage
                options = connection.exec_driver_sql(
                    "SELECT reloptions FROM pg_class WHERE relname = 'profiles'").scalar()
                assert "fillfactor=90" in options, "an event's update of a profile stays on its page (HOT)"
                # a scope's units are planned from statistics of each unit, not an average one
                targets = dict(connection.exec_driver_sql(
                    "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                    "WHERE a.attname = 'unit_id' AND c.relname IN ('profiles', 'leads', 'orders')").all())
                assert targets == {"profiles": 1000, "leads": 1000, "orders": 1000}, targets
        assert differences == []
    finally:
        database.dispose()
