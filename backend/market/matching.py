"""The operator's matching engine: price-time priority, trades at the resting order's price.

For each market with live orders: bids by (price desc, seq asc), offers by (price asc, seq asc);
while the best bid crosses the best offer of another maker, match min(remaining) at the price
of the older (resting) order. Every match is simulated first (reverts are decoded and the
offending order is withdrawn), then all transactions of a round are sent back to back with
consecutive nonces and their receipts awaited together: one block can hold the whole batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from eth_account import Account as EthAccount
from sqlmodel import Session, col, select
from web3.contract.contract import ContractFunction
from web3.types import Nonce, TxParams, Wei

from backend.chain.contracts import Chain, ContractReverted
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.market import order_events
from backend.market import orders as eip712
from backend.market.book import open_orders
from backend.market.models import OrderStatus, SignedOrder, to_order
from backend.market.order_state import gate_open

log = logging.getLogger("gridledger.matching")

# Reverts that make an order permanently unusable: withdraw it from the book.
DEAD_ORDER_ERRORS = {
    "EnergyMarketOrderExpired",
    "EnergyMarketOrderCancelled",
    "EnergyMarketStaleNonce",
    "EnergyMarketInvalidSignature",
    "EnergyMarketGateClosed",
    "EnergyMarketInsufficientRemaining",
}


@dataclass
class Match:
    bid: SignedOrder
    offer: SignedOrder
    quantity_wh: int
    bid_is_resting: bool

    @property
    def price(self) -> int:
        return self.bid.price if self.bid_is_resting else self.offer.price


def _seq(order: SignedOrder) -> int:
    """Time priority: every stored order has its `seq`."""
    return order.seq or 0


def plan_matches(orders: list[SignedOrder]) -> list[Match]:
    """Crossing pairs of one market, in price-time priority (pure: no I/O)."""
    bids = sorted((o for o in orders if o.side == eip712.BUY), key=lambda o: (-o.price, _seq(o)))
    offers = sorted((o for o in orders if o.side == eip712.SELL), key=lambda o: (o.price, _seq(o)))
    remaining = {o.seq: o.quantity_wh - o.matched_wh for o in orders}
    matches: list[Match] = []
    for bid in bids:
        for offer in offers:
            if remaining[bid.seq] <= 0:
                break
            if offer.price > bid.price:
                break
            if remaining[offer.seq] <= 0 or offer.maker == bid.maker:
                continue
            quantity = min(remaining[bid.seq], remaining[offer.seq])
            remaining[bid.seq] -= quantity
            remaining[offer.seq] -= quantity
            matches.append(Match(bid, offer, quantity, bid_is_resting=_seq(bid) < _seq(offer)))
    return matches


class Matcher:
    def __init__(self, session: Session, chain: Chain, settings: Settings) -> None:
        self.session = session
        self.chain = chain
        self.settings = settings
        self.operator = EthAccount.from_key(settings.operator_private_key.get_secret_value())

    def markets(self, now: int) -> list[tuple[int, int, int]]:
        """(product, asset id, delivery start) of the open markets with open, unexpired orders."""
        rows = self.session.exec(
            select(SignedOrder.product, SignedOrder.asset_id, SignedOrder.delivery_start)
            .where(
                col(SignedOrder.status) == OrderStatus.OPEN,
                col(SignedOrder.expiry) >= now,
                gate_open(now),
            )
            .distinct()
        ).all()
        return [(product, asset_id, start) for product, asset_id, start in rows]

    def run_once(self) -> list[str]:
        """Match every market once; returns the transaction hashes sent (all mined)."""
        now = self.chain.now()
        planned: list[Match] = []
        for product, asset_id, start in self.markets(now):
            live = open_orders(
                self.session, product=product, asset_id=asset_id, delivery_start=start, now=now
            )
            planned += plan_matches(live)
        calls: list[tuple[Match, ContractFunction]] = []
        for match in planned:
            call = self.chain.market.functions.matchOrders(
                to_order(match.bid).as_tuple(),
                bytes.fromhex(match.bid.signature[2:]),
                to_order(match.offer).as_tuple(),
                bytes.fromhex(match.offer.signature[2:]),
                match.quantity_wh,
                match.bid_is_resting,
            )
            try:
                self.chain.call(call, **{"from": self.operator.address})
            except ContractReverted as exc:
                self._reject(match, exc)
                continue
            calls.append((match, call))
        sent = self._send_batch(calls)
        self.session.commit()
        return sent

    def _reject(self, match: Match, exc: ContractReverted) -> None:
        error = exc.extensions.get("error")
        log.warning(
            "match %s/%s rejected: %s", match.bid.order_hash, match.offer.order_hash, exc.detail
        )
        if error in DEAD_ORDER_ERRORS:
            culprit = exc.extensions.get("arguments", {}).get("orderHash")
            for order in (match.bid, match.offer):
                if culprit in (None, order.order_hash):
                    if error != "EnergyMarketInsufficientRemaining":
                        order.status = OrderStatus.CANCELLED
                    order.updated_at = utc_now()
                    self.session.add(order)
                    if order.status == OrderStatus.CANCELLED:  # withdrawn from the book
                        order_events.announce(self.session, self.settings, "order.cancelled", order)

    def _send_batch(self, calls: list[tuple[Match, ContractFunction]]) -> list[str]:
        if not calls:
            return []
        w3 = self.chain.w3
        nonce = w3.eth.get_transaction_count(self.operator.address, "pending")
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
        hashes = []
        for offset, (_, call) in enumerate(calls):
            params: TxParams = {
                "from": self.operator.address,
                "nonce": Nonce(nonce + offset),
                "gas": 600_000,
                "maxFeePerGas": Wei(2 * base_fee + 10**9),
                "maxPriorityFeePerGas": Wei(1),
                "chainId": self.chain.chain_id,
            }
            tx = call.build_transaction(params)
            hashes.append(
                w3.eth.send_raw_transaction(self.operator.sign_transaction(tx).raw_transaction)
            )
        sent = []
        for (match, _), tx_hash in zip(calls, hashes, strict=True):
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            if receipt["status"] != 1:
                log.warning("matchOrders %s reverted", tx_hash.hex())
                continue
            for order in (match.bid, match.offer):
                order.matched_wh += match.quantity_wh
                order.updated_at = utc_now()
                self.session.add(order)
            sent.append("0x" + bytes(tx_hash).hex())
        return sent


def run_forever(
    settings: Settings, interval_s: float = 1.0
) -> None:  # pragma: no cover - service loop
    """`python -m backend.market.matching`: match every `interval_s`."""
    from backend.chain.contracts import chain_for
    from backend.core.db import make_engine

    engine = make_engine(settings.database_url)
    while True:
        with Session(engine) as session:
            try:
                Matcher(session, chain_for(settings), settings).run_once()
            except Exception:  # keep the service up; the next round retries
                log.exception("matching round failed")
        time.sleep(interval_s)


if __name__ == "__main__":  # pragma: no cover
    from backend.core.startup import settings_or_exit

    logging.basicConfig(level=logging.INFO)
    settings = settings_or_exit("matcher")
    run_forever(settings, settings.matcher_interval_s)
