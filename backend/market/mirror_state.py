"""Order intake's chain state from the indexer's mirror, so an order needs no chain round trip.

What an energy offer is checked against — chain time, the maker's nonce, its free market
balance and the settlement terms that size collateral — is all mirrored (`maker_nonces`,
`market_balances`, `market_parameters`). `mirror_state` answers it from one SQL statement
when the mirror can be trusted, and None when the chain must be asked
(`intake.read_chain_state`):

- chain time is known only from a chain read at most `CLOCK_MAX_AGE_S` old (every chain read
  refreshes it: in a steady stream of orders one per second asks the chain);
- the mirror is *behind* when the indexer's cursor (`indexer_cursors`, the highest of this
  chain's followers) is more than `intake_mirror_max_lag_blocks` below the head block seen
  with that chain time: then every value comes from the chain;
- bids need the token allowance and REC offers the registry approval, which the indexer does
  not mirror: those orders read the chain as before.

A refusal on mirrored values is never final: intake asks the chain again before refusing (a
deposit or a cancel-all may be newer than the mirror). Chain time is taken `CLOCK_MAX_AGE_S`
ahead, so gate closure and expiry are judged no later than the chain would.
"""

from __future__ import annotations

from sqlalchemy import ScalarSelect, func, select
from sqlmodel import Session

from backend.core.db import table_of
from backend.market import orders as eip712
from indexer.models import IndexerCursor, MakerNonce, MarketBalance, MarketParameter

CLOCK_MAX_AGE_S = 1.0


def _mirror_values(session: Session, *, chain_id: int, maker: str) -> tuple[int | None, ...]:
    """(cursor block, nonce, free market balance, tolerance bps, penalty bps): NULL where the
    mirror has no row."""
    cursors, nonces = table_of(IndexerCursor), table_of(MakerNonce)
    balances, parameters = table_of(MarketBalance), table_of(MarketParameter)

    def parameter(name: str) -> ScalarSelect[int]:
        return select(parameters.c.value).where(parameters.c.name == name).scalar_subquery()

    row = session.execute(
        select(
            select(func.max(cursors.c.block_number))
            .where(cursors.c.chain_id == chain_id)
            .scalar_subquery(),
            select(nonces.c.nonce).where(nonces.c.maker == maker).scalar_subquery(),
            select(balances.c.withdrawable).where(balances.c.account == maker).scalar_subquery(),
            parameter("tolerance_bps"),
            parameter("penalty_bps"),
        )
    ).one()
    return tuple(row)


def mirror_state(
    session: Session,
    maker: str,
    *,
    side: int,
    product: int,
    chain_id: int,
    head: tuple[int, int] | None,
    max_lag_blocks: int,
) -> tuple[int, int, list[int]] | None:
    """(chain time, nonce, funds as `intake.funds_reads` has them) of an energy offer by
    `maker` from the mirror; None when the chain must be asked (see the module's docstring).
    `head`: (time, number) of the latest block, as `Chain.recent_head(CLOCK_MAX_AGE_S)`."""
    if not answers(side=side, product=product):
        return None  # allowance (bids), registry approval (REC offers): not mirrored
    if head is None:
        return None
    values = _mirror_values(session, chain_id=chain_id, maker=maker.lower())
    return trusted(values, head=head, max_lag_blocks=max_lag_blocks)


def answers(*, side: int, product: int) -> bool:
    """Whether the mirror holds what an order of `side` and `product` is checked against."""
    return side == eip712.SELL and product == eip712.ENERGY


def trusted(
    values: tuple[int | None, ...], *, head: tuple[int, int], max_lag_blocks: int
) -> tuple[int, int, list[int]] | None:
    """`mirror_state`'s answer from the mirrored (cursor block, nonce, free market balance,
    tolerance bps, penalty bps) of one maker, NULL where the mirror has no row."""
    now, head_block = head
    cursor, nonce, free, tolerance, penalty = values
    if cursor is None or cursor < head_block - max_lag_blocks:
        return None  # behind the chain
    if tolerance is None or penalty is None:
        return None
    return now + int(CLOCK_MAX_AGE_S), nonce or 0, [free or 0, tolerance, penalty]
