"""Bulk COPY: binary where the column types allow, text otherwise; duplicates skipped."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.core.db import make_engine, table_of
from indexer.base import EVENT_COLUMNS
from indexer.bulk import BinaryCopy, binary_types, bulk_insert, insert_copy, insert_records
from indexer.fetch import EVENT_BINARY_TYPES
from indexer.mirror import table
from indexer.models import ChainEvent, OutboxMessage


def event(log_index: int, args: str = '{"value": "1"}') -> tuple:
    return (
        31337,
        7,
        "0x" + "b" * 64,
        "0x" + "a" * 64,
        log_index,
        "RECRegistry",
        "0x" + "c" * 40,
        "CertificateIssued",
        args,
    )


def test_binary_types_follow_the_columns():
    assert binary_types(table_of(ChainEvent), EVENT_COLUMNS) == [
        "int8",
        "int8",
        "text",
        "text",
        "int8",
        "text",
        "text",
        "text",
        "text",
    ]
    assert binary_types(table_of(ChainEvent), EVENT_COLUMNS) == EVENT_BINARY_TYPES  # the worker's
    assert binary_types(table("holdings"), ["certificate_id", "account", "balance_wh"]) == [
        "int8",
        "text",
        "int8",
    ]
    # a timestamp column: the COPY stays text
    assert binary_types(table_of(OutboxMessage), ["chain_id", "created_at"]) is None


def test_insert_records_stores_json_and_skips_stored_keys(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    events = table_of(ChainEvent)
    try:
        with engine.begin() as connection:
            first = insert_records(
                connection,
                events,
                EVENT_COLUMNS,
                [event(0), event(1)],
                key=["chain_id", "tx_hash", "log_index"],
            )
            again = insert_records(
                connection,
                events,
                EVENT_COLUMNS,
                [event(1, '{"value": "other"}'), event(2, '{"big": 1e400}')],
                key=["chain_id", "tx_hash", "log_index"],
            )
        with engine.connect() as connection:
            rows = connection.execute(
                select(events.c.log_index, events.c.args).order_by(events.c.log_index)
            ).all()
    finally:
        engine.dispose()
    assert first == [True, True]
    assert again == [False, True]
    assert [r.log_index for r in rows] == [0, 1, 2]
    assert rows[1].args == {"value": "1"}  # the stored row kept, not replaced


def test_a_value_binary_cannot_take_falls_back_to_text(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    holdings = table("holdings")
    try:
        with engine.begin() as connection:
            bulk_insert(
                connection,
                holdings,
                [
                    {"certificate_id": 1, "account": "0xa", "balance_wh": 5, "block_number": 1},
                    # a decimal string in a bigint column: only the text form takes it
                    {"certificate_id": 2, "account": "0xb", "balance_wh": "7", "block_number": 1},
                ],
            )
        with engine.connect() as connection:
            balances = connection.execute(
                select(holdings.c.certificate_id, holdings.c.balance_wh).order_by(
                    holdings.c.certificate_id
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(b) for b in balances] == [(1, 5), (2, 7)]


def test_insert_records_on_sqlite_stores_json_values_not_their_text(tmp_path):
    """Elsewhere than PostgreSQL the records take the statement path: the JSON text goes back
    to its value first (else the column would store it as a JSON string)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    events = table_of(ChainEvent)
    try:
        events.create(engine)
        with engine.begin() as connection:
            first = insert_records(
                connection,
                events,
                EVENT_COLUMNS,
                [event(0), event(1, '{"certId": "12345678901234567890123"}')],
                key=["chain_id", "tx_hash", "log_index"],
            )
            again = insert_records(
                connection,
                events,
                EVENT_COLUMNS,
                [event(1)],
                key=["chain_id", "tx_hash", "log_index"],
            )
        with engine.connect() as connection:
            args = connection.execute(select(events.c.args).order_by(events.c.log_index)).scalars()
            stored = list(args)
    finally:
        engine.dispose()
    assert (first, again) == ([True, True], [False])
    assert stored == [{"value": "1"}, {"certId": "12345678901234567890123"}]


def test_a_binary_copy_made_apart_stores_what_the_records_do(fresh_pg_url):
    """`BinaryCopy` (a fetch worker encodes with no connection) and `insert_copy` store the
    rows `insert_records` stores, and skip keys stored already as it does."""
    engine = make_engine(fresh_pg_url)
    events = table_of(ChainEvent)
    key = ["chain_id", "tx_hash", "log_index"]
    payload = BinaryCopy(EVENT_BINARY_TYPES).encode([event(0), event(1, '{"big": 2}')])
    columns = [events.c[name] for name in EVENT_COLUMNS]
    try:
        with engine.begin() as connection:
            insert_copy(connection, events, EVENT_COLUMNS, payload, key=key)
        with engine.begin() as connection:  # both stored: skipped, with a third one added
            again = BinaryCopy(EVENT_BINARY_TYPES).encode([event(1), event(2)])
            insert_copy(connection, events, EVENT_COLUMNS, again, key=key)
        with engine.connect() as connection:
            rows = connection.execute(select(*columns).order_by(events.c.log_index)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (*event(0)[:8], {"value": "1"}),
        (*event(1)[:8], {"big": 2}),
        (*event(2)[:8], {"value": "1"}),
    ]


def test_a_binary_copy_refuses_what_its_types_cannot_take():
    with pytest.raises((TypeError, ValueError, OverflowError)):
        BinaryCopy(EVENT_BINARY_TYPES).encode([event(2**70)])
