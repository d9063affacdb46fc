"""Records: whole rows as tuples in column order, through MirrorState to the database."""

import pytest
from sqlalchemy import select

from backend.core.db import make_engine
from backend.core.migrate import upgrade
from indexer.mirror import MirrorState, new_row, record_type
from indexer.models import ChainEvent, Holding, Trade, TradeStatus

HoldingRecord = record_type(Holding)


def test_a_record_is_the_row_in_column_order_with_the_model_defaults():
    fields = {
        "trade_id": 7,
        "chain_id": 1,
        "product": "rec",
        "status": TradeStatus.SWAPPED,
        "seller": "0xs",
        "buyer": "0xb",
        "quantity_wh": 5,
        "price": 2,
        "payment": 10,
        "sell_order_hash": "0x1",
        "buy_order_hash": "0x2",
        "created_tx": "0xt",
        "created_block": 3,
        "created_at": 4,
    }
    trade = record_type(Trade)(**fields)
    expected = new_row(Trade, **fields)
    assert trade.as_row() == expected
    assert type(trade).columns == tuple(Trade.__table__.columns.keys())
    assert type(trade).key_of(trade) == (7,)


def test_a_record_refuses_a_missing_or_unknown_column_and_json_tables():
    with pytest.raises(TypeError, match="block_number"):
        HoldingRecord(certificate_id=1, account="0xa", balance_wh=5)
    with pytest.raises(TypeError, match="bogus"):
        HoldingRecord(certificate_id=1, account="0xa", balance_wh=5, block_number=1, bogus=2)
    with pytest.raises(TypeError, match="JSON"):
        record_type(ChainEvent)


def _holding(certificate_id: int, balance_wh: int, block: int = 1):
    return HoldingRecord(
        certificate_id=certificate_id, account="0xa", balance_wh=balance_wh, block_number=block
    )


def _stored_holdings(engine) -> list[tuple[int, int]]:
    t = Holding.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.c.certificate_id, t.c.balance_wh).order_by(t.c.certificate_id)
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_records_and_dict_rows_flush_together_and_read_back_as_dicts(dialect, request, tmp_path):
    if dialect == "postgresql":
        url = request.getfixturevalue("fresh_pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'records.db'}"
        upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            state = MirrorState(connection, chain_id=1)
            state.insert("holdings", _holding(1, 10))
            state.insert("holdings", _holding(2, 20))
            row = state.get("holdings", 2, "0xa")
            assert row == {
                "certificate_id": 2,
                "account": "0xa",
                "balance_wh": 20,
                "block_number": 1,
            }
            state.put("holdings", dict(row, balance_wh=15))  # a dict replaces a record
            state.insert("holdings", _holding(3, 30))
            assert state.flush(undo_block=None) == 3
            # kept: the flushed rows are the originals now, an unchanged put writes nothing
            state.put("holdings", _holding(3, 30))
            state.put("holdings", _holding(1, 11, block=2))
            assert state.flush(undo_block=2) == 1
        assert _stored_holdings(engine) == [(1, 11), (2, 15), (3, 30)]
    finally:
        engine.dispose()


def test_a_record_of_another_table_is_refused(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    try:
        with engine.begin() as connection:
            state = MirrorState(connection, chain_id=1)
            with pytest.raises(TypeError, match="not a row of certificates"):
                state.insert("certificates", _holding(1, 10))
    finally:
        engine.dispose()
