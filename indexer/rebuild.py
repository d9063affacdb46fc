"""Rebuild the SQL mirror from the chain while the API keeps serving it.

`python -m indexer rebuild` empties every derived table and indexes the deployment again from
its first block to the head, all in ONE transaction: readers (the API) see the old mirror until
the commit and the rebuilt one after it, never an empty or half-built one (PostgreSQL's MVCC;
SQLite's WAL readers likewise). The rebuild locks the cursor first, so a running indexer's
next write waits, then finds the cursor moved (`CursorMoved`) and resumes from the rebuilt one
instead of applying its batch on top. The outbox keeps its history: the rebuild's own messages
describe past events and are marked published, not announced again.

`make run` uses the same rebuild when the chain lost blocks the mirror had indexed
(`mirror_lost_blocks`): Anvil killed between two state dumps resumes from the last dump.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from backend.chain.deployment import Deployment
from backend.core.db import table_of
from backend.core.utc import utc_now
from indexer.base import Indexer, IndexerConfig
from indexer.models import ChainEvent, IndexerCursor, OutboxMessage
from indexer.reset import INDEXER_TABLES, mirror_table
from indexer.rpc import RpcClient

REBUILT_TABLES = [name for name in INDEXER_TABLES if name != "outbox"]


@dataclass
class RebuildReport:
    head_block: int
    events: int
    seconds: float


class _OneConnection:
    """Stands in for the Engine inside the rebuild: every `begin()`/`connect()` of the indexer
    is the rebuild's single open transaction."""

    def __init__(self, connection: Connection):
        self.connection = connection

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        yield self.connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self.connection


def rebuild_mirror(
    engine: Engine, rpc: RpcClient, deployment: Deployment, config: IndexerConfig | None = None
) -> RebuildReport:
    """Re-index the deployment from scratch up to the current head, atomically."""
    started = time.monotonic()
    config = config or IndexerConfig()
    cursors, outbox = table_of(IndexerCursor), table_of(OutboxMessage)
    with engine.begin() as connection:
        connection.execute(select(cursors.c.name).with_for_update()).all()  # writers wait
        last_message = connection.execute(select(func.max(outbox.c.id))).scalar() or 0
        for name in REBUILT_TABLES:
            connection.execute(delete(mirror_table(name)))
        indexer = Indexer(
            cast(Engine, _OneConnection(connection)), rpc, deployment, config, publisher=None
        )
        while indexer.step() > 0:
            pass
        indexer.close()
        connection.execute(
            update(outbox).where(outbox.c.id > last_message).values(published_at=utc_now())
        )
        events = connection.execute(select(func.count()).select_from(table_of(ChainEvent)))
        report = RebuildReport(indexer.metrics.indexed_block, events.scalar() or 0, 0.0)
    report.seconds = time.monotonic() - started
    return report


def mirror_lost_blocks(engine: Engine, rpc: RpcClient, chain_id: int) -> int | None:
    """The mirror's cursor block when the chain no longer has that block (a node restarted
    from a state saved before it): the mirror is then ahead of the chain. None otherwise."""
    cursors = table_of(IndexerCursor)
    with engine.connect() as connection:
        rows = connection.execute(
            select(cursors.c.block_number, cursors.c.block_hash).where(
                cursors.c.chain_id == chain_id
            )
        ).all()
    for number, block_hash in rows:
        header = rpc.call("eth_getBlockByNumber", [hex(number), False])
        if header is None or header["hash"] != block_hash:
            return int(number)
    return None
