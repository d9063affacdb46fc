"""`/v1/energy/...`: my scheduled transfers (one per ENERGY trade), my balance, deposits and
withdrawals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from backend.api.deps import (
    AsyncReader,
    ChainDep,
    ChainTimeDep,
    Reader,
    ReadsDep,
    SessionDep,
    SettingsDep,
    Trader,
)
from backend.api.fast_json import ModelJSON
from backend.core.json_ints import MAX_SAFE_INTEGER
from backend.energy import deposits, services, withdrawals
from backend.energy.schemas import (
    Deposit,
    DepositCreate,
    EnergyBalance,
    EnergyTransfer,
    TransferStatus,
    Withdrawal,
)
from backend.market.schemas import Page

router = APIRouter(prefix="/energy", tags=["energy"])


@router.get("/transfers", response_model=Page[EnergyTransfer])
async def transfers(
    account: AsyncReader,
    reads: ReadsDep,
    now: ChainTimeDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    status: TransferStatus | None = None,
) -> Response:
    # newest first; status judged at chain time at most 1 s old (no docstring: the OpenAPI
    # document keeps its description)
    query, params = services.transfers_params(account, cursor=cursor, limit=limit)
    items, next_cursor = services.transfers_of(
        await reads.all(query, params), limit=limit, now=now, status=status
    )
    return ModelJSON(Page[EnergyTransfer](items=items, next_cursor=next_cursor))


@router.get("/transfers/{transfer_id}", response_model=EnergyTransfer)
def transfer(
    transfer_id: Annotated[int, Path(ge=1, le=MAX_SAFE_INTEGER)],
    account: Reader,
    session: SessionDep,
    chain: ChainDep,
) -> EnergyTransfer:
    return services.get_transfer(session, account, transfer_id, chain.now())


@router.get("/balance", response_model=EnergyBalance)
async def balance(account: AsyncReader, reads: ReadsDep) -> Response:
    """Net contracted position per open period, token balance, escrow, and my market balance:
    free (`withdrawable`) and locked as collateral of my open energy sales (`locked`)."""
    me = account.address.lower()
    params = {"address": me}
    balances, trades = services.balance_rows(await reads.all(services.BALANCE, params))
    return ModelJSON(services.balance_of(me, balances, trades))


@router.post("/withdrawals", response_model=Withdrawal)
def withdraw(
    account: Trader, session: SessionDep, settings: SettingsDep, chain: ChainDep
) -> Withdrawal:
    """Custodial: move my whole market credit (payouts, refunds; `withdrawable` in `/balance`)
    to my address; the API signs `withdraw()`. 409 `nothing-to-withdraw` when it is zero;
    409 `withdraw-from-wallet` for wallet accounts, with the `call` to send. Send an
    `Idempotency-Key` to retry safely."""
    return withdrawals.withdraw(session, settings, chain, account)


@router.post("/deposits", response_model=Deposit, status_code=201)
def deposit(
    body: DepositCreate,
    account: Trader,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
) -> Deposit:
    """Custodial: move `amount` of my gUSD into my market balance, the collateral my energy
    offers lock when they trade (an offer whose collateral my free balance cannot cover is
    refused: `insufficient-collateral`); the API signs `approve` (if needed) and `deposit`.
    422 `deposit-exceeds-balance` when my gUSD balance is short; 409 `deposit-from-wallet` for
    wallet accounts, with the `calls` to send. Send an
    `Idempotency-Key` to retry safely."""
    return deposits.deposit(session, settings, chain, account, body.amount)
