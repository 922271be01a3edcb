"""The Alembic migrations build exactly the models' schema, on every engine, once even when instances race."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from storage.db import make_engine
from storage.errors import DatabaseUnavailable, MigrationFailed
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Base


def _reflect(connection: Connection, schema: str | None = None) -> dict[str, Any]:
    """Everything about each table that a schema diff could miss: checks, partial indexes, foreign key actions."""
    inspector = inspect(connection)
    tables = {}
    for table in sorted(set(inspector.get_table_names(schema=schema)) - {"alembic_version"}):
        foreign_keys = [{k: v for k, v in fk.items() if k != "referred_schema"}
                        for fk in inspector.get_foreign_keys(table, schema=schema)]
        indexes = [{**{k: v for k, v in ix.items() if k != "include_columns"},
                    "dialect_options": {k: str(v) for k, v in ix.get("dialect_options", {}).items()}}
                   for ix in inspector.get_indexes(table, schema=schema)]
        tables[table] = {
            "columns": [(column["name"], str(column["type"]), column["nullable"])
                        for column in inspector.get_columns(table, schema=schema)],
            "primary_key": inspector.get_pk_constraint(table, schema=schema),
            "foreign_keys": sorted(foreign_keys, key=lambda fk: fk["name"]),
            "unique": sorted(inspector.get_unique_constraints(table, schema=schema), key=lambda u: u["name"]),
            "indexes": sorted(indexes, key=lambda ix: ix["name"]),
            "checks": sorted(inspector.get_check_constraints(table, schema=schema), key=lambda c: c["name"]),
        }
    return tables


def test_a_new_database_is_migrated_to_the_head_revision(database_url):
    assert current_revision(database_url) is None
    assert upgrade(database_url) == head_revision() == "0008"
    assert current_revision(database_url) == "0008"
    assert upgrade(database_url) == "0008"  # nothing pending: a no-op, as at every `itbot run`


def test_the_migrations_produce_exactly_the_models_schema(database_url, tmp_path):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            migrated = _reflect(connection)
        # Alembic's diff ignores CHECK constraints and partial-index conditions: compare the reflected detail
        # with a database the models created themselves.
        if engine.dialect.name == "sqlite":
            expected_engine = make_engine(f"sqlite:///{tmp_path / 'expected.db'}")
            Base.metadata.create_all(expected_engine)
            with expected_engine.connect() as connection:
                expected = _reflect(connection)
            expected_engine.dispose()
        else:
            with engine.begin() as connection:
                connection.execute(text("CREATE SCHEMA expected"))
                Base.metadata.create_all(connection.execution_options(schema_translate_map={None: "expected"}))
            with engine.connect() as connection:
                expected = _reflect(connection, schema="expected")
    finally:
        engine.dispose()
    assert migrated.keys() == expected.keys() == Base.metadata.tables.keys()
    for table in expected:
        assert migrated[table] == expected[table], table


def test_instances_starting_together_migrate_once_without_errors(database_url, race):
    assert race(4, lambda index: upgrade(database_url)) == ["0008"] * 4
    assert current_revision(database_url) == "0008"


def test_a_database_from_a_newer_release_is_reported_not_mangled(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(MigrationFailed, match="cannot migrate .*9999"):
        upgrade(database_url)


def test_an_unreachable_database_is_one_friendly_line():
    url = "postgresql+psycopg://itbot:s3cret@127.0.0.1:1/itbot"
    with pytest.raises(DatabaseUnavailable) as caught:
        upgrade(url)
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(DatabaseUnavailable):
        current_revision(url)
