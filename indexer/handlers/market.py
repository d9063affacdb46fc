"""EnergyMarket: orders, trades (ENERGY escrow and REC swaps), settlement, payouts."""

from __future__ import annotations

from typing import Any

from backend.market.orders import collateral
from indexer.handlers import ZERO_HASH, Log, on
from indexer.handlers.allowances import swap_pulls, swap_touches
from indexer.mirror import MirrorState, Record, Row, TableKey, new_row, record_type
from indexer.models import MarketOrder, Payout, Trade, TradeStatus

TradeRecord = record_type(Trade)
PayoutRecord = record_type(Payout)


def _order_keys(*hashes: str) -> list[TableKey]:
    return [("market_orders", (h,)) for h in hashes if h != ZERO_HASH]


def _order_row(state: MirrorState, order_hash: str, block_number: int) -> Row:
    """The order's row as of `block_number` (a first sighting knows only its hash)."""
    row = state.get("market_orders", order_hash)
    if row is None:
        return new_row(
            MarketOrder, order_hash=order_hash, chain_id=state.chain_id, block_number=block_number
        )
    return dict(row, block_number=block_number)


def _fill_orders(state: MirrorState, log: Log, quantity_wh: int) -> None:
    """Count a trade's quantity as filled on its sell and its buy order (the taker's side
    of a fill has no order: its hash is zero)."""
    for order_hash in (log.args["sellOrderHash"], log.args["buyOrderHash"]):
        if order_hash != ZERO_HASH:
            row = _order_row(state, order_hash, log.block_number)
            row["filled_wh"] += quantity_wh
            state.put("market_orders", row)


@on("EnergyMarket", "OrderListed", touches=lambda log: _order_keys(log.args["orderHash"]))
def order_listed(state: MirrorState, log: Log) -> None:
    order = log.args["order"]
    row = _order_row(state, log.args["orderHash"], log.block_number)
    row.update(
        maker=order["maker"],
        side=order["side"],
        product=order["product"],
        asset_id=order["assetId"],
        meter_id=order["meterId"],
        quantity_wh=order["quantityWh"],
        price=order["price"],
        delivery_start=order["deliveryStart"],
        delivery_end=order["deliveryEnd"],
        expiry=order["expiry"],
        nonce=order["nonce"],
        salt=hex(order["salt"]),
        listed=True,
    )
    state.put("market_orders", row)


@on("EnergyMarket", "OrderCancelled", touches=lambda log: _order_keys(log.args["orderHash"]))
def order_cancelled(state: MirrorState, log: Log) -> None:
    row = _order_row(state, log.args["orderHash"], log.block_number)
    row.update(cancelled=True, maker=row["maker"] or log.args["maker"])
    state.put("market_orders", row)
    state.emit(
        log.block_number,
        "order.cancelled",
        {"order_hash": log.args["orderHash"], "maker": row["maker"], "tx_hash": log.tx_hash},
    )


@on(
    "EnergyMarket", "NonceIncremented", touches=lambda log: [("maker_nonces", (log.args["maker"],))]
)
def nonce_incremented(state: MirrorState, log: Log) -> None:
    state.put(
        "maker_nonces",
        {
            "maker": log.args["maker"],
            "nonce": log.args["newNonce"],
            "block_number": log.block_number,
        },
    )


def _collateral(trade: Row) -> int:
    """What the ENERGY `trade` (a TradeCreated struct or a trades row) locks of its seller's
    balance (EnergyMarket.collateralFor under the trade's terms)."""
    keys = ("quantityWh", "price", "toleranceBps", "penaltyBps")
    if "quantity_wh" in trade:
        keys = ("quantity_wh", "price", "tolerance_bps", "penalty_bps")
    return collateral(*(trade[k] for k in keys))


def _trade_touches(log: Log) -> list[TableKey]:
    return _order_keys(log.args["sellOrderHash"], log.args["buyOrderHash"])


def _energy_trade_touches(log: Log) -> list[TableKey]:
    return [*_trade_touches(log), ("market_balances", (log.args["trade"]["seller"],))]


def _new_trade(state: MirrorState, log: Log, **terms: Any) -> Record:
    """A trade row: what every trade event carries (id, payment, orders, creation), plus
    `terms`, the fields that differ between an ENERGY trade and a REC swap."""
    args = log.args
    return TradeRecord(
        trade_id=args["tradeId"],
        chain_id=state.chain_id,
        payment=args["payment"],
        sell_order_hash=args["sellOrderHash"],
        buy_order_hash=args["buyOrderHash"],
        created_tx=log.tx_hash,
        created_block=log.block_number,
        created_at=log.block_timestamp,
        **terms,
    )


def _closed(
    log: Log,
    status: TradeStatus,
    *,
    delivered_wh: int | None,
    seller_payout: int,
    penalty: int,
    buyer_refund: int,
) -> Row:
    """The fields that close a trade in `log` (settlement, reclaim, or a REC swap at once)."""
    return {
        "status": status,
        "delivered_wh": delivered_wh,
        "seller_payout": seller_payout,
        "penalty": penalty,
        "buyer_refund": buyer_refund,
        "closed_tx": log.tx_hash,
        "closed_block": log.block_number,
    }


def _emit_trade(state: MirrorState, log: Log, topic: str) -> None:
    state.emit(log.block_number, topic, {"trade_id": log.args["tradeId"], "tx_hash": log.tx_hash})


@on("EnergyMarket", "TradeCreated", touches=_energy_trade_touches)
def trade_created(state: MirrorState, log: Log) -> None:
    trade = log.args["trade"]
    state.insert(
        "trades",
        _new_trade(
            state,
            log,
            product="energy",
            status=TradeStatus.OPEN,
            seller=trade["seller"],
            buyer=trade["buyer"],
            seller_meter=trade["sellerMeter"],
            buyer_meter=trade["buyerMeter"],
            quantity_wh=trade["quantityWh"],
            price=trade["price"],
            delivery_start=trade["deliveryStart"],
            delivery_end=trade["deliveryEnd"],
            tolerance_bps=trade["toleranceBps"],
            penalty_bps=trade["penaltyBps"],
            reclaim_grace_period=trade["reclaimGracePeriod"],
        ),
    )
    _fill_orders(state, log, trade["quantityWh"])
    locked = _collateral(trade)
    if locked:
        seller = trade["seller"]
        credit(state, log, account=seller, amount=-locked, locked=locked, kind="lock")
    _emit_trade(state, log, "trade.created")


def _swap_touches(log: Log) -> list[TableKey]:
    return [*_trade_touches(log), *swap_touches(log)]


@on("EnergyMarket", "CertificatesTraded", touches=_swap_touches)
def certificates_traded(state: MirrorState, log: Log) -> None:
    args = log.args
    swap_pulls(state, log)  # the buyer's allowance pays the seller later in this transaction
    swap = _closed(
        log,
        TradeStatus.SWAPPED,
        delivered_wh=args["quantityWh"],
        seller_payout=args["payment"],
        penalty=0,
        buyer_refund=0,
    )
    state.insert(
        "trades",
        _new_trade(
            state,
            log,
            product="rec",
            seller=args["seller"],
            buyer=args["buyer"],
            certificate_id=args["certificateId"],
            quantity_wh=args["quantityWh"],
            price=args["price"],
            **swap,
        ),
    )
    _fill_orders(state, log, args["quantityWh"])


def credit(
    state: MirrorState, log: Log, *, account: str, amount: int, kind: str, locked: int = 0
) -> None:
    """Record a movement of the free balance (withdrawals and locked collateral are negative)
    and update the balance, with `locked` the change of the account's locked collateral; the
    payout names the event's trade, if it has one."""
    state.insert(
        "payouts",
        PayoutRecord(
            id=f"{log.uid}:{kind}",
            chain_id=state.chain_id,
            account=account,
            kind=kind,
            trade_id=log.args.get("tradeId"),
            amount=amount,
            tx_hash=log.tx_hash,
            block_number=log.block_number,
        ),
    )
    row = state.get("market_balances", account)
    state.put(
        "market_balances",
        {
            "account": account,
            "withdrawable": (row["withdrawable"] if row else 0) + amount,
            "locked": (row["locked"] if row else 0) + locked,
            "block_number": log.block_number,
        },
    )


def _trade_key(log: Log) -> list[TableKey]:
    return [("trades", (log.args["tradeId"],))]


def _close_trade(state: MirrorState, log: Log, closing: Row) -> Row:
    """Apply `closing` (see `_closed`) to the trade `log` names; returns its updated row."""
    trade = state.copy_of("trades", log.args["tradeId"])
    trade.update(closing)
    state.put("trades", trade)
    return trade


@on("EnergyMarket", "TradeSettled", touches=_trade_key)
def trade_settled(state: MirrorState, log: Log) -> None:
    args = log.args
    closing = _closed(
        log,
        TradeStatus.SETTLED,
        delivered_wh=args["deliveredWh"],
        seller_payout=args["sellerPayout"],
        penalty=args["penalty"],
        buyer_refund=args["buyerRefund"],
    )
    trade = _close_trade(state, log, closing)
    # The seller gets the gross and its collateral back minus the penalty, which goes to the buyer.
    unlocked = _collateral(trade)
    seller_credit = args["sellerPayout"] - args["penalty"] + unlocked
    if seller_credit or unlocked:
        credit(
            state,
            log,
            account=trade["seller"],
            amount=seller_credit,
            locked=-unlocked,
            kind="settlement",
        )
    if args["buyerRefund"] + args["penalty"]:
        credit(
            state,
            log,
            account=trade["buyer"],
            amount=args["buyerRefund"] + args["penalty"],
            kind="refund",
        )
    _emit_trade(state, log, "trade.settled")


@on("EnergyMarket", "TradeReclaimed", touches=_trade_key)
def trade_reclaimed(state: MirrorState, log: Log) -> None:
    args = log.args
    closing = _closed(
        log,
        TradeStatus.RECLAIMED,
        delivered_wh=None,
        seller_payout=0,
        penalty=0,
        buyer_refund=args["refund"],
    )
    trade = _close_trade(state, log, closing)
    credit(state, log, account=args["buyer"], amount=args["refund"], kind="reclaim")
    unlocked = _collateral(trade)
    if unlocked:
        seller = trade["seller"]
        credit(state, log, account=seller, amount=unlocked, locked=-unlocked, kind="unlock")
    _emit_trade(state, log, "trade.reclaimed")


def _account_touches(log: Log) -> list[TableKey]:
    return [("market_balances", (log.args["account"],))]


@on("EnergyMarket", "Withdrawn", touches=_account_touches)
def withdrawn(state: MirrorState, log: Log) -> None:
    credit(state, log, account=log.args["account"], amount=-log.args["amount"], kind="withdrawal")


@on("EnergyMarket", "Deposited", touches=_account_touches)
def deposited(state: MirrorState, log: Log) -> None:
    credit(state, log, account=log.args["account"], amount=log.args["amount"], kind="deposit")


def _parameter(state: MirrorState, log: Log, name: str, value: int) -> None:
    state.put("market_parameters", {"name": name, "value": value, "block_number": log.block_number})


PARAMETER_KEYS = [("market_parameters", (n,)) for n in ("tolerance_bps", "penalty_bps")]


@on("EnergyMarket", "SettlementParametersUpdated", touches=lambda log: PARAMETER_KEYS)
def settlement_parameters_updated(state: MirrorState, log: Log) -> None:
    _parameter(state, log, "tolerance_bps", log.args["newToleranceBps"])
    _parameter(state, log, "penalty_bps", log.args["newPenaltyBps"])


@on(
    "EnergyMarket",
    "ReclaimGracePeriodUpdated",
    touches=lambda log: [("market_parameters", ("reclaim_grace_period",))],
)
def reclaim_grace_period_updated(state: MirrorState, log: Log) -> None:
    _parameter(state, log, "reclaim_grace_period", log.args["newPeriod"])
