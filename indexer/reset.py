"""Empty every indexer table: used when a devnet starts a new chain (`make run` deploying anew)."""

from __future__ import annotations

from sqlalchemy import Table, delete
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import indexer.models  # noqa: F401 - registers the tables

INDEXER_TABLES = [
    "blocks",
    "indexer_cursors",
    "chain_events",
    "undo_log",
    "outbox",
    "market_orders",
    "maker_nonces",
    "trades",
    "payouts",
    "market_balances",
    "token_balances",
    "token_allowances",
    "market_parameters",
    "chain_meters",
    "devices",
    "certificates",
    "holdings",
    "operator_approvals",
    "certificate_transfers",
    "claims",
    "role_grants",
    "dr_chain_programs",
    "dr_chain_results",
    "dr_chain_balances",
]


def mirror_table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def clear_mirror(engine: Engine) -> None:
    with engine.begin() as connection:
        for name in INDEXER_TABLES:
            connection.execute(delete(mirror_table(name)))
