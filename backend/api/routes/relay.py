"""`/v1/chain/transactions`: wallet users submit transactions they signed themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from backend.api.deps import ChainDep, Reader, SessionDep, Trader
from backend.api.problem_docs import raises
from backend.market.schemas import Accepted
from backend.relay import services
from backend.relay.schemas import RawTransaction, TransactionStatus
from backend.resources.errors import StorageBehindCertifiedMeter

router = APIRouter(prefix="/chain", tags=["chain"])
TxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]


@router.post(
    "/transactions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=raises(StorageBehindCertifiedMeter),
)
def submit(body: RawTransaction, account: Trader, session: SessionDep, chain: ChainDep) -> Accepted:
    """Relays the caller's own signed transaction to a GridLedger contract (simulated first)."""
    tx_hash = services.relay(session, chain, account, body.raw_transaction)
    return Accepted(
        id=tx_hash, status="pending", poll=f"/v1/chain/transactions/{tx_hash}", tx_hash=tx_hash
    )


@router.get("/transactions/{tx_hash}", response_model=TransactionStatus)
def transaction(tx_hash: TxHash, _: Reader, chain: ChainDep) -> TransactionStatus:
    return services.transaction_status(chain, tx_hash)
