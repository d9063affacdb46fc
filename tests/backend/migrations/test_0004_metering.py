"""Migration 0004_metering creates the metering and settlement tables, up and down."""

from sqlalchemy import inspect

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade

TABLES = {
    "meters",
    "meter_readings",
    "reading_corrections",
    "reconciliations",
    "settlement_batches",
    "settlement_corrections",
    "rec_issuances",
    "discrepancy_flags",
}


def test_sqlite_up_down_up(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    downgrade(url, "0003")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_postgresql_has_the_tables(pg_engine):
    with pg_engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        views = set(inspect(connection).get_view_names())
        key = inspect(connection).get_pk_constraint("reading_runs")
    # i16_reading_runs: readings are runs, `meter_readings` the view that shows them as rows
    assert tables >= TABLES - {"meter_readings"} | {"reading_runs"}
    assert "meter_readings" in views
    assert key["constrained_columns"] == ["meter_id", "day", "first_slot"]
