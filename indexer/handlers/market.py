"""EnergyMarket: orders, trades (ENERGY escrow and REC swaps), settlement, payouts."""

from __future__ import annotations

from indexer.handlers import Log, on
from indexer.mirror import MirrorState

ZERO_HASH = "0x" + "00" * 32
SIDES = {0: "sell", 1: "buy"}


def _order_keys(*hashes: str):
    return [("market_orders", (h,)) for h in hashes if h != ZERO_HASH]


def _order_row(state: MirrorState, order_hash: str, block_number: int) -> dict:
    row = state.get("market_orders", order_hash)
    if row is None:
        row = {
            "order_hash": order_hash,
            "chain_id": state.chain_id,
            "maker": None,
            "side": None,
            "product": None,
            "asset_id": None,
            "meter_id": None,
            "quantity_wh": None,
            "price": None,
            "delivery_start": None,
            "delivery_end": None,
            "expiry": None,
            "nonce": None,
            "salt": None,
            "listed": False,
            "cancelled": False,
            "filled_wh": 0,
            "block_number": block_number,
        }
    return dict(row, block_number=block_number)


def _add_fill(state: MirrorState, order_hash: str, quantity_wh: int, block_number: int) -> None:
    if order_hash == ZERO_HASH:  # the taker's side of a fill has no order
        return
    row = _order_row(state, order_hash, block_number)
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


def _trade_touches(log: Log):
    return _order_keys(log.args["sellOrderHash"], log.args["buyOrderHash"])


@on("EnergyMarket", "TradeCreated", touches=_trade_touches)
def trade_created(state: MirrorState, log: Log) -> None:
    trade, args = log.args["trade"], log.args
    state.insert(
        "trades",
        {
            "trade_id": args["tradeId"],
            "chain_id": state.chain_id,
            "product": "energy",
            "status": "open",
            "seller": trade["seller"],
            "buyer": trade["buyer"],
            "seller_meter": trade["sellerMeter"],
            "buyer_meter": trade["buyerMeter"],
            "certificate_id": None,
            "quantity_wh": trade["quantityWh"],
            "price": trade["price"],
            "payment": args["payment"],
            "delivery_start": trade["deliveryStart"],
            "delivery_end": trade["deliveryEnd"],
            "tolerance_bps": trade["toleranceBps"],
            "penalty_bps": trade["penaltyBps"],
            "sell_order_hash": args["sellOrderHash"],
            "buy_order_hash": args["buyOrderHash"],
            "delivered_wh": None,
            "seller_payout": None,
            "penalty": None,
            "buyer_refund": None,
            "created_tx": log.tx_hash,
            "created_block": log.block_number,
            "created_at": log.block_timestamp,
            "closed_tx": None,
            "closed_block": None,
        },
    )
    _add_fill(state, args["sellOrderHash"], trade["quantityWh"], log.block_number)
    _add_fill(state, args["buyOrderHash"], trade["quantityWh"], log.block_number)
    state.emit(
        log.block_number, "trade.created", {"trade_id": args["tradeId"], "tx_hash": log.tx_hash}
    )


@on("EnergyMarket", "CertificatesTraded", touches=_trade_touches)
def certificates_traded(state: MirrorState, log: Log) -> None:
    args = log.args
    state.insert(
        "trades",
        {
            "trade_id": args["tradeId"],
            "chain_id": state.chain_id,
            "product": "rec",
            "status": "swapped",
            "seller": args["seller"],
            "buyer": args["buyer"],
            "seller_meter": None,
            "buyer_meter": None,
            "certificate_id": args["certificateId"],
            "quantity_wh": args["quantityWh"],
            "price": args["price"],
            "payment": args["payment"],
            "delivery_start": None,
            "delivery_end": None,
            "tolerance_bps": None,
            "penalty_bps": None,
            "sell_order_hash": args["sellOrderHash"],
            "buy_order_hash": args["buyOrderHash"],
            "delivered_wh": args["quantityWh"],
            "seller_payout": args["payment"],
            "penalty": 0,
            "buyer_refund": 0,
            "created_tx": log.tx_hash,
            "created_block": log.block_number,
            "created_at": log.block_timestamp,
            "closed_tx": log.tx_hash,
            "closed_block": log.block_number,
        },
    )
    _add_fill(state, args["sellOrderHash"], args["quantityWh"], log.block_number)
    _add_fill(state, args["buyOrderHash"], args["quantityWh"], log.block_number)


def credit(state: MirrorState, log: Log, account: str, amount: int, kind: str, trade_id) -> None:
    """Record a pull-balance movement (withdrawals are negative) and update the balance."""
    state.insert(
        "payouts",
        {
            "id": f"{log.uid}:{kind}",
            "chain_id": state.chain_id,
            "account": account,
            "kind": kind,
            "trade_id": trade_id,
            "amount": amount,
            "tx_hash": log.tx_hash,
            "block_number": log.block_number,
        },
    )
    row = state.get("market_balances", account)
    balance = (row["withdrawable"] if row else 0) + amount
    state.put(
        "market_balances",
        {"account": account, "withdrawable": balance, "block_number": log.block_number},
    )


def _trade_key(log: Log):
    return [("trades", (log.args["tradeId"],))]


@on("EnergyMarket", "TradeSettled", touches=_trade_key)
def trade_settled(state: MirrorState, log: Log) -> None:
    args = log.args
    trade = dict(state.get("trades", args["tradeId"]))
    trade.update(
        status="settled",
        delivered_wh=args["deliveredWh"],
        seller_payout=args["sellerPayout"],
        penalty=args["penalty"],
        buyer_refund=args["buyerRefund"],
        closed_tx=log.tx_hash,
        closed_block=log.block_number,
    )
    state.put("trades", trade)
    if args["sellerPayout"]:
        credit(state, log, trade["seller"], args["sellerPayout"], "settlement", args["tradeId"])
    if args["buyerRefund"]:
        credit(state, log, trade["buyer"], args["buyerRefund"], "refund", args["tradeId"])
    state.emit(
        log.block_number, "trade.settled", {"trade_id": args["tradeId"], "tx_hash": log.tx_hash}
    )


@on("EnergyMarket", "TradeReclaimed", touches=_trade_key)
def trade_reclaimed(state: MirrorState, log: Log) -> None:
    args = log.args
    trade = dict(state.get("trades", args["tradeId"]))
    trade.update(
        status="reclaimed",
        delivered_wh=None,
        seller_payout=0,
        penalty=0,
        buyer_refund=args["refund"],
        closed_tx=log.tx_hash,
        closed_block=log.block_number,
    )
    state.put("trades", trade)
    credit(state, log, args["buyer"], args["refund"], "reclaim", args["tradeId"])
    state.emit(
        log.block_number, "trade.reclaimed", {"trade_id": args["tradeId"], "tx_hash": log.tx_hash}
    )


@on("EnergyMarket", "Withdrawn", touches=lambda log: [("market_balances", (log.args["account"],))])
def withdrawn(state: MirrorState, log: Log) -> None:
    credit(state, log, log.args["account"], -log.args["amount"], "withdrawal", None)


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
