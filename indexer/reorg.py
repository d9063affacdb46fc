"""Reorg handling: find where our stored chain and the node's chain part, rewind atomically.

`rewind` restores every derived row from the undo log, then deletes raw events, blocks,
undo entries and outbox messages above the fork, and moves the cursor back — all inside
the caller's transaction, so a crash leaves either the old or the rewound state.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from backend.core.db import table_of
from backend.core.errors import GridLedgerError
from indexer.mirror import restore_rows
from indexer.models import Block, ChainEvent, OutboxMessage, UndoEntry
from indexer.rpc import RpcClient


class ReorgTooDeep(GridLedgerError):
    """The chain changed below the finality depth: refuse to rewrite history."""


def stored_blocks(
    connection: Connection, *, chain_id: int, below_or_at: int, limit: int
) -> list[tuple[int, str]]:
    t = table_of(Block)
    rows = connection.execute(
        select(t.c.number, t.c.hash)
        .where(t.c.chain_id == chain_id, t.c.number <= below_or_at)
        .order_by(t.c.number.desc())
        .limit(limit)
    ).all()
    return [(number, block_hash) for number, block_hash in rows]


def find_fork_point(
    connection: Connection, rpc: RpcClient, *, chain_id: int, cursor: int, lowest_allowed: int
) -> tuple[int, str]:
    """Highest stored block whose hash the node still has; (number, hash)."""
    upper = cursor
    while True:
        stored = stored_blocks(connection, chain_id=chain_id, below_or_at=upper, limit=64)
        if not stored:
            break
        headers = rpc.get_blocks([number for number, _ in stored])
        for (number, block_hash), header in zip(stored, headers, strict=True):
            if number < lowest_allowed:
                break
            if header is not None and header["hash"] == block_hash:
                return number, block_hash
        if stored[-1][0] <= lowest_allowed:
            break
        upper = stored[-1][0] - 1
    raise ReorgTooDeep(
        f"chain {chain_id} no longer contains any indexed block at or above {lowest_allowed} "
        f"(indexed up to {cursor}); refusing to rewrite history deeper than the finality depth"
    )


def rewind(connection: Connection, *, chain_id: int, fork_block: int) -> int:
    """Undo everything above `fork_block`; returns the number of rows restored."""
    undo = table_of(UndoEntry)
    entries = (
        connection.execute(
            select(undo.c.table_name, undo.c.key, undo.c.before)
            .where(undo.c.chain_id == chain_id, undo.c.block_number > fork_block)
            .order_by(undo.c.id.desc())
        )
        .mappings()
        .all()
    )
    restore_rows(connection, entries)
    for model in (UndoEntry, ChainEvent, Block, OutboxMessage):
        t = table_of(model)
        column = t.c.number if model is Block else t.c.block_number
        connection.execute(delete(t).where(t.c.chain_id == chain_id, column > fork_block))
    return len(entries)
