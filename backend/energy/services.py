"""Energy transfers and positions, read from the indexer's trade and balance mirror."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, String, bindparam, or_, true
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.core.async_db import Query
from backend.core.db import table_of
from backend.core.pagination import decode_cursor, keyset_page
from backend.energy.errors import TransferNotFound
from backend.energy.schemas import EnergyBalance, EnergyTransfer, PeriodPosition, TransferStatus
from backend.market.trades import trades_page, trades_query
from indexer.models import MarketBalance, TokenBalance, Trade, TradeStatus


def transfer_status(trade: Trade, now: int) -> TransferStatus:
    if trade.status in (TradeStatus.SETTLED, TradeStatus.RECLAIMED):
        return TransferStatus(trade.status)
    if now < (trade.delivery_start or 0):
        return TransferStatus.SCHEDULED
    if now < (trade.delivery_end or 0):
        return TransferStatus.DELIVERING
    return TransferStatus.AWAITING_SETTLEMENT


def public_transfer(trade: Trade, now: int) -> EnergyTransfer:
    delivered = None if trade.delivered_wh is None else min(trade.delivered_wh, trade.quantity_wh)
    return EnergyTransfer(
        id=trade.trade_id,
        seller=trade.seller,
        buyer=trade.buyer,
        seller_meter=trade.seller_meter,
        buyer_meter=trade.buyer_meter,
        delivery_start=trade.delivery_start or 0,
        delivery_end=trade.delivery_end or 0,
        contracted_wh=trade.quantity_wh,
        metered_wh=trade.delivered_wh,
        delivered_wh=delivered,
        price=trade.price,
        escrow=trade.payment,
        payout=trade.seller_payout,
        penalty=trade.penalty,
        refund=trade.buyer_refund,
        status=transfer_status(trade, now),
    )


def _sees_all(account: Account) -> bool:
    return account.has_role_any(("operator", "admin"))


def list_transfers(
    session: Session,
    account: Account,
    *,
    now: int,
    cursor: str | None,
    limit: int,
    status: TransferStatus | None = None,
) -> tuple[list[EnergyTransfer], str | None]:
    query = select(Trade).where(Trade.product == "energy")
    if not _sees_all(account):
        me = account.address.lower()
        query = query.where(or_(col(Trade.seller) == me, col(Trade.buyer) == me))
    rows, next_cursor = keyset_page(session, query, Trade.trade_id, cursor, limit)
    items = [public_transfer(t, now) for t in rows]
    if status:
        items = [i for i in items if i.status == status]
    return items, next_cursor


def transfers_params(
    account: Account, *, cursor: str | None, limit: int
) -> tuple[Query, dict[str, Any]]:
    """The query and parameters of one page of `list_transfers` (`transfers_of` its rows)."""
    sees_all, after = _sees_all(account), decode_cursor(cursor)
    params: dict[str, Any] = {"rows": limit + 1}
    if not sees_all:
        params["address"] = account.address.lower()
    if after is not None:
        params["after"] = after
    query = trades_query(
        product="energy", in_market=False, party=not sees_all, after=after is not None
    )
    return query, params


def transfers_of(
    rows: Sequence[Any], *, limit: int, now: int, status: TransferStatus | None
) -> tuple[list[EnergyTransfer], str | None]:
    """`list_transfers`'s answer from the rows of `transfers_params`."""
    page, next_cursor = trades_page(rows, limit)
    items = [public_transfer(t, now) for t in page]
    if status:
        items = [i for i in items if i.status == status]
    return items, next_cursor


def get_transfer(session: Session, account: Account, trade_id: int, now: int) -> EnergyTransfer:
    trade = session.get(Trade, trade_id)
    me = account.address.lower()
    if (
        trade is None
        or trade.product != "energy"
        or not (_sees_all(account) or me in (trade.seller, trade.buyer))
    ):
        raise TransferNotFound(f"no energy transfer {trade_id}")
    return public_transfer(trade, now)


def _balance_queries() -> tuple[Query, Query]:
    address = bindparam("address", type_=String)
    token, market = table_of(TokenBalance), table_of(MarketBalance)
    balances = select_core(
        select_core(token.c.balance)
        .where(token.c.account == address)
        .scalar_subquery()
        .label("token_balance"),
        select_core(market.c.withdrawable)
        .where(market.c.account == address)
        .scalar_subquery()
        .label("withdrawable"),
        select_core(market.c.locked)
        .where(market.c.account == address)
        .scalar_subquery()
        .label("locked"),
    )
    trades = select_core(
        col(Trade.delivery_start),
        col(Trade.delivery_end),
        col(Trade.seller),
        col(Trade.buyer),
        col(Trade.quantity_wh),
        col(Trade.payment),
    ).where(
        col(Trade.product) == "energy",
        col(Trade.status) == TradeStatus.OPEN,
        or_(col(Trade.seller) == address, col(Trade.buyer) == address),
    )
    return Query(balances), Query(trades)


BALANCES, OPEN_TRADES = _balance_queries()
"""What `balance_of` reads for `address` (lower-case), the only parameter: its token balance,
free and locked market balance (one row, NULL where the mirror has none), and its open energy
trades (delivery period, seller, buyer, Wh, payment)."""


def _balance_statement() -> Query:
    balances = cast(Select[Any], BALANCES.statement).subquery("b")
    trades = cast(Select[Any], OPEN_TRADES.statement).subquery("t")
    return Query(
        select_core(balances, trades).select_from(balances.outerjoin(trades, true())),
        generic_plan=True,  # lookups by the account's address (indexed): one plan for all
    )


BALANCE = _balance_statement()
"""`BALANCES` and `OPEN_TRADES` in one statement (one round trip): the balances' three columns
on every row, then an open trade's six (all NULL when there is none): `balance_rows`."""


def balance_rows(rows: Sequence[Any]) -> tuple[Sequence[Any], list[Sequence[Any]]]:
    """(the row of `BALANCES`, the rows of `OPEN_TRADES`) from the rows of `BALANCE`."""
    return rows[0][:3], [row[3:] for row in rows if row.seller is not None]


def balance_of(
    address: str, balances: Sequence[Any], trades: Iterable[Sequence[Any]]
) -> EnergyBalance:
    """The `EnergyBalance` of `address` from the rows of `BALANCES` and `OPEN_TRADES`."""
    token_balance, withdrawable, locked = balances
    positions: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    escrowed = 0
    for start, end, seller, buyer, quantity_wh, payment in trades:
        key = (start or 0, end or 0)
        if buyer == address:
            positions[key][0] += quantity_wh
            escrowed += payment
        if seller == address:
            positions[key][1] += quantity_wh
    return EnergyBalance(
        address=address,
        token_balance=token_balance or 0,
        escrowed=escrowed,
        withdrawable=withdrawable or 0,
        locked=locked or 0,
        positions=[
            PeriodPosition(delivery_start=s, delivery_end=e, bought_wh=b, sold_wh=so, net_wh=b - so)
            for (s, e), (b, so) in sorted(positions.items())
        ],
    )


def balance(session: Session, account: Account) -> EnergyBalance:
    me = account.address.lower()
    params = {"address": me}
    return balance_of(
        me,
        session.execute(BALANCES.statement, params).one(),
        session.execute(OPEN_TRADES.statement, params),
    )
