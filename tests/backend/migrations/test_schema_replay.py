"""Test schemas made by replaying the recorded upgrade (tests/fixtures/schema_replay.py) equal
those Alembic makes: the suite's fresh schemas are the real migrations' schema."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backend.core.db import make_engine
from backend.core.migrate import scratch_schema
from tests.fixtures.schema_replay import MigrationReplay
from tests.fixtures.services import TEST_DATABASE_URL, require_service

# what a schema is made of, each read without the schema's own (random) name
CATALOG = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '') "
    "FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
    "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2",
    "triggers": "SELECT event_object_table, trigger_name, event_manipulation, action_statement "
    "FROM information_schema.triggers WHERE trigger_schema = current_schema() ORDER BY 1, 2, 3",
    "functions": "SELECT proname, prosrc FROM pg_proc "
    "WHERE pronamespace = current_schema()::regnamespace ORDER BY 1",
    "sequences": "SELECT sequencename, last_value FROM pg_sequences "
    "WHERE schemaname = current_schema() ORDER BY 1",
    "views": "SELECT table_name, view_definition FROM information_schema.views "
    "WHERE table_schema = current_schema() ORDER BY 1",
    "version": "SELECT version_num FROM alembic_version ORDER BY 1",
}


def describe(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                part: [tuple(row) for row in connection.execute(text(query))]
                for part, query in CATALOG.items()
            }
    finally:
        engine.dispose()


@pytest.mark.postgres  # no fixture of tests/conftest.py's SERVICE_FIXTURES tells
def test_a_replayed_schema_equals_the_one_alembic_made():
    require_service("PostgreSQL", TEST_DATABASE_URL, "GRIDLEDGER_TEST_DATABASE_URL")
    replay = MigrationReplay()
    with scratch_schema(TEST_DATABASE_URL, prefix="gl_test", migrate=replay.migrate) as url:
        by_alembic = describe(url)  # the first one: Alembic, recorded
    assert replay.statements, "the upgrade was not recorded"
    with scratch_schema(TEST_DATABASE_URL, prefix="gl_test", migrate=replay.migrate) as url:
        replayed = describe(url)
    assert len(by_alembic["columns"]) > 500 and by_alembic["version"]
    assert replayed == by_alembic
