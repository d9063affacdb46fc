"""The settlement log after the chain lost blocks (a devnet node restarted from a state saved
before them, `make run` after Anvil was killed): it may hold transactions the chain no longer
has — batches recorded mined whose trades are open again, device-hours recorded issued with no
certificate, DR results recorded settled with no payment. Each such batch is marked DROPPED, never
re-broadcast (the trade ids it names may belong to other trades by now), and its rows go back to
pending, to be reconciled and sent again against the chain as it is."""

from __future__ import annotations

from datetime import UTC, datetime

from hexbytes import HexBytes
from sqlmodel import Session, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from backend.dr.settlement import DR_RESULTS
from backend.settlement.issuance import ISSUANCES
from backend.settlement.models import BatchKind, BatchStatus, SettlementBatch
from backend.settlement.sending import RECONCILIATIONS

KINDS = {kind.kind: kind for kind in (RECONCILIATIONS, ISSUANCES, DR_RESULTS)}


def on_chain(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        return False
    return True


def forget_lost_batches(session: Session, w3: Web3) -> int:
    """Drop every logged batch the chain has no receipt for; returns how many. Run only while
    no worker runs (at `make run`'s resume): a live worker's just-signed batch has none yet."""
    lost = [
        batch
        for batch in session.exec(
            select(SettlementBatch).where(SettlementBatch.status != BatchStatus.DROPPED)
        ).all()
        if not on_chain(w3, batch.tx_hash)
    ]
    for batch in lost:
        batch.status, batch.resolved_at = BatchStatus.DROPPED, datetime.now(UTC)
        session.add(batch)
        session.commit()
        KINDS[BatchKind(batch.kind)].apply(session, batch, BatchStatus.DROPPED)
    return len(lost)
