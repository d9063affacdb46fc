"""An order's state, written once as SQL: what it traded, whether it is live, what its maker sees.

A stored order (`SignedOrder`) is judged against chain time and the indexer's mirror of the
chain (`MarketOrder`, outer-joined on `MIRROR_JOIN`): the matcher's `matched_wh` may run ahead
of the mirror, while the mirror also sees fills by any taker and cancels sent from a wallet.
The order book, the matcher and the maker's order list all read these expressions.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, case, func, not_, or_
from sqlmodel import col

from backend.market import orders as eip712
from backend.market.models import OrderStatus, SignedOrder
from backend.market.schemas import OrderPublicStatus
from indexer.models import MarketOrder

MIRROR_JOIN = col(MarketOrder.order_hash) == col(SignedOrder.order_hash)


def traded_wh() -> ColumnElement[int]:
    """Wh traded so far: the matcher's count or the mirror's, whichever is ahead."""
    mirror = func.coalesce(col(MarketOrder.filled_wh), 0)
    return case((mirror > col(SignedOrder.matched_wh), mirror), else_=col(SignedOrder.matched_wh))


def gate_open(now: int) -> ColumnElement[bool]:
    """The order's market still trades: REC markets never close; an energy period closes at
    its start (gate closure)."""
    return or_(col(SignedOrder.product) == eip712.REC, col(SignedOrder.delivery_start) > now)


def is_live(now: int) -> ColumnElement[bool]:
    """The order can trade now: open, unexpired, its market open, not fully matched, and
    neither cancelled nor fully filled on chain."""
    return and_(
        col(SignedOrder.status) == OrderStatus.OPEN,
        col(SignedOrder.expiry) >= now,
        gate_open(now),
        col(SignedOrder.matched_wh) < col(SignedOrder.quantity_wh),
        or_(
            col(MarketOrder.order_hash).is_(None),
            col(MarketOrder.cancelled).is_(False)
            & (col(MarketOrder.filled_wh) < col(SignedOrder.quantity_wh)),
        ),
    )


def public_status(now: int) -> ColumnElement[str]:
    """The status the maker sees (`OrderPublicStatus`): cancelled (here or on chain), filled,
    expired (past its expiry or its gate closure), withdrawn (from matching, awaiting the
    wallet's on-chain cancel), else partially filled or open."""
    traded = traded_wh()
    return case(
        (
            or_(
                col(SignedOrder.status) == OrderStatus.CANCELLED,
                col(MarketOrder.cancelled).is_(True),
            ),
            OrderPublicStatus.CANCELLED.value,
        ),
        (traded >= col(SignedOrder.quantity_wh), OrderPublicStatus.FILLED.value),
        (
            or_(col(SignedOrder.expiry) < now, not_(gate_open(now))),
            OrderPublicStatus.EXPIRED.value,
        ),
        (col(SignedOrder.status) == OrderStatus.WITHDRAWN, OrderPublicStatus.WITHDRAWN.value),
        (traded > 0, OrderPublicStatus.PARTIALLY_FILLED.value),
        else_=OrderPublicStatus.OPEN.value,
    )
