"""What a logged transaction's outcome does to the rows it carries, for every kind of batch.

A batch (`settlement_batches`, write-ahead) carries rows of one table that point back to it by
`batch_id`: reconciliations (settleBatch), device-hours (issueBatch), DR results (settle). When
the transaction is mined they are marked done with its hash; when it reverted or was dropped they
go back to pending, out of the batch, to be re-checked against the contract and sent again.
Either way one set-based UPDATE keyed on the batch id, committed with the batch's own status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from backend.settlement.chain import ChainContext, resolve_batch, unresolved_batches
from backend.settlement.models import BatchKind, BatchStatus, SettlementBatch


@dataclass(frozen=True)
class SettledKind:
    """Rows of `model` that transactions of `kind` carry: `status` becomes `settled` (with the
    hash in `tx_column` and the time in `at_column`, when the table has one) once mined, `pending`
    (and `batch_id` cleared) when reverted or dropped."""

    model: Any  # a table model with `status`, `batch_id` and `tx_column` (`at_column`) columns
    kind: BatchKind
    settled: str
    pending: str
    tx_column: str = "settled_tx"
    at_column: str | None = "settled_at"

    def apply(self, session: Session, batch: SettlementBatch, status: BatchStatus) -> None:
        """The outcome `status` (MINED, REVERTED or DROPPED) of `batch`: one UPDATE, committed."""
        values: dict[str, Any]
        if status == BatchStatus.MINED:
            values = {"status": self.settled, self.tx_column: batch.tx_hash}
            if self.at_column is not None:
                values[self.at_column] = datetime.now(UTC)
        else:  # reverted or dropped: back to pending, re-checked against the contract
            values = {"status": self.pending, "batch_id": None}
        session.execute(update(self.model).where(self.model.batch_id == batch.id).values(values))
        session.commit()

    def recover(self, session: Session, ctx: ChainContext) -> bool:
        """Finish what a dead worker (or a timed-out run) left: every logged transaction of this
        kind gets its outcome, in nonce order. False when one stays undecided: a later nonce
        cannot be mined before it, so nothing new should be sent until the next run."""
        for batch in unresolved_batches(session, self.kind):
            status = resolve_batch(session, ctx, batch)
            if status == BatchStatus.SIGNED:
                session.commit()
                return False
            self.apply(session, batch, status)
        return True
