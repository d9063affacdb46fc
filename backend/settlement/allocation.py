"""The settlement arithmetic, as pure functions.

Allocation rule (pro-rata by contracted Wh): a seller meter's export in each 15-minute slot
is shared among every ENERGY trade of that meter delivering in the slot, in proportion to
the Wh each trade contracted for the slot (a trade spanning n slots contracts quantity/n per
slot). A trade's allocation is the sum of its slot shares, floored to whole Wh; what the
chain is told is min(allocation, contracted): surplus export is not re-allocated. A slot
without a verified export reading counts as zero (and flags the trade `data_missing`): the
caller passes verified readings only (meter-signed or from a metering data provider).

Payout math mirrors EnergyMarket._settle exactly (integer division at the same places):
escrow and gross are rounded up (`payment`), the penalty is floored and paid from the seller's
collateral (the penalty on zero delivery, locked at fill), so it is not capped at the gross.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from backend.market.orders import collateral, payment, penalty

SLOT = 900
WH_PER_KWH = 1000
BPS = 10_000


@dataclass(frozen=True)
class TradeTerms:
    trade_id: int
    quantity_wh: int
    price: int
    start: int
    end: int
    tolerance_bps: int = 0
    penalty_bps: int = 0

    def slots(self) -> range:
        return range(self.start, self.end, SLOT)


@dataclass(frozen=True)
class Allocation:
    metered_wh: int  # the meter's export over the trade's period
    allocated_wh: int
    data_missing: bool


def allocate(
    trades: list[TradeTerms], export_by_slot: dict[int, int | None]
) -> dict[int, Allocation]:
    """Allocations of one seller meter's export among `trades` (all of that meter's trades
    touching the slots concerned)."""
    weights: dict[int, dict[int, Fraction]] = {}
    for trade in trades:
        per_slot = Fraction(trade.quantity_wh * SLOT, trade.end - trade.start)
        for slot in trade.slots():
            weights.setdefault(slot, {})[trade.trade_id] = per_slot
    totals = {slot: sum(by_trade.values()) for slot, by_trade in weights.items()}
    result = {}
    for trade in trades:
        share = Fraction(0)
        metered = 0
        missing = False
        for slot in trade.slots():
            export = export_by_slot.get(slot)
            if export is None:
                missing = True
                continue
            metered += export
            if totals[slot]:
                share += export * weights[slot][trade.trade_id] / totals[slot]
        result[trade.trade_id] = Allocation(metered, int(share), missing)
    return result


@dataclass(frozen=True)
class Amounts:
    """What `TradeSettled` reports: `payout` (the gross) is credited to the seller and `refund`
    (escrow - gross) to the buyer; `penalty` then moves from the seller's collateral (locked at
    fill, `collateral`) to the buyer."""

    delivered_wh: int
    shortfall_wh: int
    payout: int
    penalty: int
    refund: int
    collateral: int

    @property
    def seller_net(self) -> int:
        """Change of the seller's market balance (negative when the penalty exceeds the gross)."""
        return self.payout - self.penalty

    @property
    def buyer_credit(self) -> int:
        return self.refund + self.penalty


def settlement_amounts(trade: TradeTerms, delivered_wh: int) -> Amounts:
    """What EnergyMarket.settle credits for `delivered_wh`."""
    contracted = trade.quantity_wh
    delivered = min(delivered_wh, contracted)
    gross = payment(delivered, trade.price)
    shortfall = contracted - delivered
    tolerance = contracted * trade.tolerance_bps // BPS
    owed = (
        penalty(shortfall - tolerance, trade.price, trade.penalty_bps)
        if shortfall > tolerance
        else 0
    )
    return Amounts(
        delivered_wh=delivered,
        shortfall_wh=shortfall,
        payout=gross,
        penalty=owed,
        refund=payment(contracted, trade.price) - gross,
        collateral=collateral(contracted, trade.price, trade.tolerance_bps, trade.penalty_bps),
    )
