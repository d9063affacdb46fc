"""Order intake's chain state from the indexer's mirror, so an order needs no chain round trip.

What an order is checked against is all mirrored: chain time aside, the maker's nonce
(`maker_nonces`) and its funds as `intake.funds_reads` has them:

- an energy offer: its free market balance and the settlement terms that size collateral
  (`market_balances`, `market_parameters`);
- a bid: its GridUSD balance and allowance to the market (`token_balances`,
  `token_allowances`: never above the chain's, see indexer/handlers/allowances.py; no row —
  no Approval seen — asks the chain);
- a REC offer: its balance of the certificate and the market's operator approval
  (`holdings`, `operator_approvals`).

`mirror_state` answers them from one SQL statement when the mirror can be trusted, and None
when the chain must be asked (`intake.read_chain_state`):

- chain time is known only from a chain read at most `CLOCK_MAX_AGE_S` old (every chain read
  refreshes it: in a steady stream of orders one per second asks the chain);
- the mirror is *behind* when the indexer's cursor (`indexer_cursors`, the highest of this
  chain's followers) is more than `intake_mirror_max_lag_blocks` below the head block seen
  with that chain time: then every value comes from the chain.

A refusal on mirrored values is never final: intake asks the chain again before refusing (a
deposit, an approval or a cancel-all may be newer than the mirror). Chain time is taken
`CLOCK_MAX_AGE_S` ahead, so gate closure and expiry are judged no later than the chain would.
The batched writer (backend/market/order_writer.py) checks every kind of order on these values
for many makers at once (backend/market/batch_funds.py); the sync intake, one by one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, func, select
from sqlmodel import Session

from backend.core.db import table_of
from backend.market import orders as eip712
from indexer.handlers.allowances import MAX_UINT256
from indexer.models import (
    Holding,
    IndexerCursor,
    MakerNonce,
    MarketBalance,
    MarketParameter,
    OperatorApproval,
    TokenAllowance,
    TokenBalance,
)

CLOCK_MAX_AGE_S = 1.0

Mirrored = tuple[int, int, list[Any]]  # (chain time, nonce, funds as intake.funds_reads has them)


def _read(
    session: Session, *, chain_id: int, maker: str, funds: list[ColumnElement[Any]]
) -> tuple[Any, ...]:
    """(cursor block, nonce, *funds) in one statement: NULL where the mirror has no row."""
    cursors, nonces = table_of(IndexerCursor), table_of(MakerNonce)
    row = session.execute(
        select(
            select(func.max(cursors.c.block_number))
            .where(cursors.c.chain_id == chain_id)
            .scalar_subquery(),
            select(nonces.c.nonce).where(nonces.c.maker == maker).scalar_subquery(),
            *funds,
        )
    ).one()
    return tuple(row)


def _mirror_values(session: Session, *, chain_id: int, maker: str) -> tuple[int | None, ...]:
    """(cursor block, nonce, free market balance, tolerance bps, penalty bps) of an energy
    offer: NULL where the mirror has no row."""
    balances, parameters = table_of(MarketBalance), table_of(MarketParameter)

    def parameter(name: str) -> ScalarSelect[int]:
        return select(parameters.c.value).where(parameters.c.name == name).scalar_subquery()

    return _read(
        session,
        chain_id=chain_id,
        maker=maker,
        funds=[
            select(balances.c.withdrawable).where(balances.c.account == maker).scalar_subquery(),
            parameter("tolerance_bps"),
            parameter("penalty_bps"),
        ],
    )


def _bid_values(session: Session, *, chain_id: int, maker: str, market: str) -> tuple[Any, ...]:
    """(cursor block, nonce, token balance, allowance to `market`, unlimited) of a bid."""
    balances, allowances = table_of(TokenBalance), table_of(TokenAllowance)
    allowance = allowances.c.owner == maker, allowances.c.spender == market
    return _read(
        session,
        chain_id=chain_id,
        maker=maker,
        funds=[
            select(balances.c.balance).where(balances.c.account == maker).scalar_subquery(),
            select(allowances.c.allowance).where(*allowance).scalar_subquery(),
            select(allowances.c.unlimited).where(*allowance).scalar_subquery(),
        ],
    )


def _rec_offer_values(
    session: Session, *, chain_id: int, maker: str, asset_id: int, market: str
) -> tuple[Any, ...]:
    """(cursor block, nonce, Wh held of certificate `asset_id`, `market` approved as operator)
    of a REC offer."""
    holdings, approvals = table_of(Holding), table_of(OperatorApproval)
    return _read(
        session,
        chain_id=chain_id,
        maker=maker,
        funds=[
            select(holdings.c.balance_wh)
            .where(holdings.c.certificate_id == asset_id, holdings.c.account == maker)
            .scalar_subquery(),
            select(approvals.c.approved)
            .where(approvals.c.account == maker, approvals.c.operator == market)
            .scalar_subquery(),
        ],
    )


def mirror_state(
    session: Session,
    maker: str,
    *,
    side: int,
    product: int,
    asset_id: int,
    market: str,
    chain_id: int,
    head: tuple[int, int] | None,
    max_lag_blocks: int,
) -> Mirrored | None:
    """(chain time, nonce, funds as `intake.funds_reads` has them) of an order by `maker` to
    `market` (the EnergyMarket's address) from the mirror; None when the chain must be asked (see
    the module's docstring). `head`: (time, number) of the latest block, as
    `Chain.recent_head(CLOCK_MAX_AGE_S)`."""
    if head is None:
        return None
    maker, market = maker.lower(), market.lower()
    if side == eip712.BUY:
        values = _bid_values(session, chain_id=chain_id, maker=maker, market=market)
        return trusted_bid(values, head=head, max_lag_blocks=max_lag_blocks)
    if product == eip712.REC:
        values = _rec_offer_values(
            session, chain_id=chain_id, maker=maker, asset_id=asset_id, market=market
        )
        return trusted_rec_offer(values, head=head, max_lag_blocks=max_lag_blocks)
    values = _mirror_values(session, chain_id=chain_id, maker=maker)
    return trusted(values, head=head, max_lag_blocks=max_lag_blocks)


def _fresh(
    cursor: int | None,
    nonce: int | None,
    funds: list[Any],
    head: tuple[int, int],
    max_lag_blocks: int,
) -> Mirrored | None:
    now, head_block = head
    if cursor is None or cursor < head_block - max_lag_blocks:
        return None  # behind the chain
    return now + int(CLOCK_MAX_AGE_S), nonce or 0, funds


def trusted(
    values: tuple[int | None, ...], *, head: tuple[int, int], max_lag_blocks: int
) -> Mirrored | None:
    """`mirror_state`'s answer for an energy offer from the mirrored (cursor block, nonce, free
    market balance, tolerance bps, penalty bps) of one maker, NULL where the mirror has no
    row."""
    cursor, nonce, free, tolerance, penalty = values
    if tolerance is None or penalty is None:
        return None
    return _fresh(cursor, nonce, [free or 0, tolerance, penalty], head, max_lag_blocks)


def trusted_bid(
    values: tuple[Any, ...], *, head: tuple[int, int], max_lag_blocks: int
) -> Mirrored | None:
    """`mirror_state`'s answer for a bid from the mirrored (cursor block, nonce, token balance,
    allowance, unlimited) of one maker: None without an allowance row (no Approval seen)."""
    cursor, nonce, balance, allowance, unlimited = values
    if allowance is None:
        return None
    allowed = MAX_UINT256 if unlimited else allowance
    return _fresh(cursor, nonce, [balance or 0, allowed], head, max_lag_blocks)


def trusted_rec_offer(
    values: tuple[Any, ...], *, head: tuple[int, int], max_lag_blocks: int
) -> Mirrored | None:
    """`mirror_state`'s answer for a REC offer from the mirrored (cursor block, nonce, Wh held
    of the certificate, the market approved as operator) of one maker."""
    cursor, nonce, held, approved = values
    return _fresh(cursor, nonce, [held or 0, bool(approved)], head, max_lag_blocks)
