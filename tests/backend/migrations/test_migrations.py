"""The same Alembic migrations run on SQLite and PostgreSQL, up and down."""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.core.db import make_engine
from backend.core.migrate import alembic_config, downgrade, upgrade
from indexer.models import Block, IndexerCursor

EXPECTED_TABLES = {
    "alembic_version",
    "blocks",
    "indexer_cursors",
    "chain_events",
    "undo_log",
    "outbox",
    "market_orders",
    "trades",
    "payouts",
    "market_balances",
    "token_balances",
    "chain_meters",
    "devices",
    "certificates",
    "holdings",
    "claims",
    "role_grants",
}


def test_sqlite_upgrade_downgrade_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    downgrade(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(url)
    assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    engine.dispose()


def test_postgresql_schema_is_at_head(pg_engine):
    with pg_engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        heads = set(connection.execute(text("select version_num from alembic_version")).scalars())
    assert tables >= EXPECTED_TABLES
    assert heads == set(ScriptDirectory.from_config(alembic_config("")).get_heads())


def test_postgresql_round_trip_and_uniqueness(db_session: Session):
    db_session.add(Block(chain_id=31337, number=1, hash="0x01", parent_hash="0x00", timestamp=1))
    db_session.add(IndexerCursor(name="events", chain_id=31337, block_number=1, block_hash="0x01"))
    db_session.commit()
    assert db_session.exec(select(Block.hash).where(Block.number == 1)).one() == "0x01"
    db_session.add(Block(chain_id=31337, number=1, hash="0x02", parent_hash="0x00", timestamp=2))
    with pytest.raises(IntegrityError, match="uq_blocks_chain_number"):
        db_session.commit()
    db_session.rollback()


def test_each_test_starts_from_an_empty_transaction(db_session: Session):
    assert db_session.exec(select(Block)).all() == []
