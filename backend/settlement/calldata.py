"""`EnergyMarket.settleBatch` calldata, encoded straight from the reconciliation rows.

web3's generic ABI encoder walks every value of every Trade struct through its formatter
tree and checksums every address: for a 250-trade batch that cost more than mining it. The
Trade struct is static (11 words), so the encoding is three arrays of words, written here
with each value range-checked against its Solidity type (a value that does not fit raises,
it is never truncated). `tests/backend/settlement/test_calldata.py` holds it equal to web3's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from eth_utils import keccak
from sqlalchemy import select
from sqlmodel import Session, col

from backend.settlement.models import Reconciliation
from indexer.models import Trade

TRADE_TYPE = "(address,address,bytes32,bytes32,uint128,uint128,uint64,uint64,uint16,uint16,uint64)"
SETTLE_BATCH = keccak(text=f"settleBatch({TRADE_TYPE}[],uint256[],uint64[])")[:4]
# bit width of each Trade field, in struct order
TRADE_BITS = (160, 160, 256, 256, 128, 128, 64, 64, 16, 16, 64)


class SettleItem(NamedTuple):
    """A pending reconciliation with the terms of its trade (as the contract hashes them)."""

    trade_id: int
    delivered_wh: int
    seller: str
    buyer: str
    seller_meter: str | None
    buyer_meter: str | None
    quantity_wh: int
    price: int
    delivery_start: int | None
    delivery_end: int | None
    tolerance_bps: int | None
    penalty_bps: int | None
    reclaim_grace_period: int | None


COLUMNS = [
    col(column)
    for column in (
        Reconciliation.trade_id,
        Reconciliation.delivered_wh,
        Trade.seller,
        Trade.buyer,
        Trade.seller_meter,
        Trade.buyer_meter,
        Trade.quantity_wh,
        Trade.price,
        Trade.delivery_start,
        Trade.delivery_end,
        Trade.tolerance_bps,
        Trade.penalty_bps,
        Trade.reclaim_grace_period,
    )
]


def settle_items(session: Session, trade_ids: Sequence[int]) -> list[SettleItem]:
    """The reconciliations of `trade_ids` joined to their mirrored trades, by trade id."""
    items: list[SettleItem] = []
    for start in range(0, len(trade_ids), 1_000):  # SQLite's bound-parameter limit
        rows = session.execute(
            select(*COLUMNS)
            .select_from(Reconciliation)
            .join(Trade, col(Trade.trade_id) == col(Reconciliation.trade_id))
            .where(col(Reconciliation.trade_id).in_(trade_ids[start : start + 1_000]))
        ).all()
        items.extend(SettleItem(*row) for row in rows)
    return sorted(items)


def word(value: int | None, bits: int = 256) -> bytes:
    """`value` as one ABI word of an unsigned `bits`-bit type."""
    if value is None or not 0 <= value < 1 << bits:
        raise ValueError(f"{value!r} is not a uint{bits}")
    return value.to_bytes(32, "big")


def hex_word(value: str | None, bits: int) -> bytes:
    """An address or bytes32 given as 0x-hex, as one ABI word."""
    if value is None:
        raise ValueError("an ENERGY trade without its meters")
    return word(int(value, 16), bits)


def trade_words(item: SettleItem) -> bytes:
    fields = (
        hex_word(item.seller, TRADE_BITS[0]),
        hex_word(item.buyer, TRADE_BITS[1]),
        hex_word(item.seller_meter, TRADE_BITS[2]),
        hex_word(item.buyer_meter, TRADE_BITS[3]),
        *(
            word(value, bits)
            for value, bits in zip(
                (
                    item.quantity_wh,
                    item.price,
                    item.delivery_start,
                    item.delivery_end,
                    item.tolerance_bps,
                    item.penalty_bps,
                    item.reclaim_grace_period,
                ),
                TRADE_BITS[4:],
                strict=True,
            )
        ),
    )
    return b"".join(fields)


def settle_batch_calldata(items: Sequence[SettleItem]) -> bytes:
    """settleBatch(trades, tradeIds, deliveredWh) of `items`, ABI-encoded with its selector."""
    count = len(items)
    trades_at = 3 * 32  # after the three offsets
    ids_at = trades_at + 32 + count * 11 * 32
    delivered_at = ids_at + 32 + count * 32
    return b"".join(
        (
            SETTLE_BATCH,
            word(trades_at),
            word(ids_at),
            word(delivered_at),
            word(count),
            *(trade_words(item) for item in items),
            word(count),
            *(word(item.trade_id) for item in items),
            word(count),
            *(word(item.delivered_wh, 64) for item in items),
        )
    )
