"""settleBatch calldata encoded by hand equals the ABI encoder's, and refuses what does not fit."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from backend.settlement.calldata import TRADE_TYPE, SettleItem, settle_batch_calldata


def item(trade_id: int, **changes: int) -> SettleItem:
    fields = {
        "trade_id": trade_id,
        "delivered_wh": 900 + trade_id,
        "seller": "0x" + "9a" * 20,
        "buyer": "0x" + "0b" * 20,
        "seller_meter": "0x" + "9a" * 20 + f"{trade_id:024x}",
        "buyer_meter": "0x" + "0b" * 20 + "ff" * 12,
        "quantity_wh": 2**128 - 1 - trade_id,
        "price": 97_611 + trade_id,
        "delivery_start": 1_796_633_100,
        "delivery_end": 1_796_634_000,
        "tolerance_bps": 500,
        "penalty_bps": 10_000,
        "reclaim_grace_period": 86_400,
    }
    return SettleItem(**{**fields, **changes})


@pytest.mark.parametrize("count", [0, 1, 3, 250])
def test_calldata_equals_the_abi_encoding(count: int) -> None:
    items = [item(n + 1) for n in range(count)]
    selector = keccak(text=f"settleBatch({TRADE_TYPE}[],uint256[],uint64[])")[:4]
    expected = selector + encode(
        [f"{TRADE_TYPE}[]", "uint256[]", "uint64[]"],
        [
            [
                (
                    i.seller,
                    i.buyer,
                    bytes.fromhex(i.seller_meter[2:]),
                    bytes.fromhex(i.buyer_meter[2:]),
                    i.quantity_wh,
                    i.price,
                    i.delivery_start,
                    i.delivery_end,
                    i.tolerance_bps,
                    i.penalty_bps,
                    i.reclaim_grace_period,
                )
                for i in items
            ],
            [i.trade_id for i in items],
            [i.delivered_wh for i in items],
        ],
    )
    assert settle_batch_calldata(items) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"quantity_wh": 2**128},
        {"delivered_wh": 2**64},
        {"tolerance_bps": 2**16},
        {"price": -1},
        {"reclaim_grace_period": None},
    ],
)
def test_a_value_that_does_not_fit_its_type_is_refused_not_truncated(changes) -> None:
    with pytest.raises(ValueError, match="is not a uint"):
        settle_batch_calldata([item(1), item(2, **changes)])
