"""Market ids and the names of sides and products, as the API spells them.

A market is one 15-minute energy delivery period, `energy-<delivery start>`, or the
certificates of one REC, `rec-<certificate id>`.
"""

from __future__ import annotations

from typing import NamedTuple

from backend.core.errors import NotFound
from backend.market import orders as eip712

SIDES = {"sell": eip712.SELL, "buy": eip712.BUY}
PRODUCTS = {"energy": eip712.ENERGY, "rec": eip712.REC}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
PRODUCT_NAMES = {v: k for k, v in PRODUCTS.items()}


class MarketKey(NamedTuple):
    """What a market id names: the orders' product, asset id and delivery period (REC: 0, 0)."""

    product: int
    asset_id: int
    delivery_start: int
    delivery_end: int


def energy_market_id(delivery_start: int) -> str:
    return f"energy-{delivery_start}"


def rec_market_id(certificate_id: int) -> str:
    return f"rec-{certificate_id}"


def market_id_of(*, product: int, asset_id: int, delivery_start: int) -> str:
    """The market of an order's terms."""
    if product == eip712.ENERGY:
        return energy_market_id(delivery_start)
    return rec_market_id(asset_id)


def parse_market_id(market_id: str) -> MarketKey:
    """What `market_id` names; NotFound unless it is a well-formed market id."""
    kind, _, number = market_id.partition("-")
    if kind not in PRODUCTS or not number.isdigit() or len(number) > 18:
        raise NotFound(
            f"no market {market_id!r}: use energy-<delivery start> or rec-<certificate id>"
        )
    value = int(number)
    if kind == "energy":
        if value % eip712.SLOT_SECONDS:
            raise NotFound(f"no market {market_id!r}: delivery start must be 15-minute aligned")
        return MarketKey(eip712.ENERGY, 0, value, value + eip712.SLOT_SECONDS)
    return MarketKey(eip712.REC, value, 0, 0)
