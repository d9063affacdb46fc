"""The operator's matching engine: price-time priority, trades at the resting order's price.

A market is one exact period: (product, asset id, delivery start, delivery end). In each
market with live orders: bids by (price desc, seq asc), offers by (price asc, seq asc); while
the best bid crosses the best offer of another maker, match min(remaining) at the price of the
older (resting) order. Every match is simulated first. A rejected simulation costs its pair,
not the round: the order at fault (`match_failures.reject`) is left out, or the pair skipped,
and the rest of the market is planned again, so honest orders behind a jammer still trade in
the same round; the work per market and round is bounded (`REJECTIONS_PER_MARKET`). Then all
transactions of a round are sent back to back with consecutive nonces and their receipts
awaited together: one block can hold the whole batch.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from eth_account import Account as EthAccount
from eth_utils import to_checksum_address
from sqlmodel import Session, col, select
from web3.contract.contract import ContractFunction
from web3.types import Nonce, TxParams, Wei

from backend.chain.contracts import Chain, ContractReverted
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.market import match_failures
from backend.market import orders as eip712
from backend.market.book import open_orders
from backend.market.ids import MarketKey
from backend.market.models import OrderStatus, SignedOrder, to_order
from backend.market.order_state import gate_open

log = logging.getLogger("gridledger.matching")

# Rejected simulations (and the probes they need) per market and round before the matcher
# sends what it verified and leaves the rest to the next round.
REJECTIONS_PER_MARKET = 16


@dataclass
class Match:
    bid: SignedOrder
    offer: SignedOrder
    quantity_wh: int
    bid_is_resting: bool

    @property
    def price(self) -> int:
        return self.bid.price if self.bid_is_resting else self.offer.price

    @property
    def key(self) -> tuple[str, str, int, bool]:
        return (self.bid.order_hash, self.offer.order_hash, self.quantity_wh, self.bid_is_resting)


def _seq(order: SignedOrder) -> int:
    """Time priority: every stored order has its `seq`."""
    return order.seq or 0


def market_of(order: SignedOrder) -> MarketKey:
    """The exact market an order trades in: the contract refuses to match across periods."""
    return MarketKey(order.product, order.asset_id, order.delivery_start, order.delivery_end)


def _bids(orders: Iterable[SignedOrder]) -> list[SignedOrder]:
    return sorted((o for o in orders if o.side == eip712.BUY), key=lambda o: (-o.price, _seq(o)))


def _offers(orders: Iterable[SignedOrder]) -> list[SignedOrder]:
    return sorted((o for o in orders if o.side == eip712.SELL), key=lambda o: (o.price, _seq(o)))


def _remaining(order: SignedOrder) -> int:
    return order.quantity_wh - order.matched_wh


def _pair(bid: SignedOrder, offer: SignedOrder, quantity_wh: int) -> Match:
    return Match(bid, offer, quantity_wh, bid_is_resting=_seq(bid) < _seq(offer))


def plan_matches(
    orders: list[SignedOrder], *, skip: frozenset[tuple[str, str]] = frozenset()
) -> list[Match]:
    """Crossing pairs in price-time priority, each within one exact market (pure: no I/O).
    `skip` holds (bid hash, offer hash) pairs not to match."""
    markets: dict[MarketKey, list[SignedOrder]] = defaultdict(list)
    for order in orders:
        markets[market_of(order)].append(order)
    return [match for key in sorted(markets) for match in _plan_market(markets[key], skip)]


def _plan_market(orders: list[SignedOrder], skip: frozenset[tuple[str, str]]) -> list[Match]:
    offers = _offers(orders)
    remaining = {o.order_hash: _remaining(o) for o in orders}
    matches: list[Match] = []
    for bid in _bids(orders):
        for offer in offers:
            if remaining[bid.order_hash] <= 0 or offer.price > bid.price:
                break
            if (
                remaining[offer.order_hash] <= 0
                or offer.maker == bid.maker
                or (bid.order_hash, offer.order_hash) in skip
            ):
                continue
            quantity = min(remaining[bid.order_hash], remaining[offer.order_hash])
            remaining[bid.order_hash] -= quantity
            remaining[offer.order_hash] -= quantity
            matches.append(_pair(bid, offer, quantity))
    return matches


@dataclass
class _MarketRound:
    """One market's round: what the matcher learnt from the simulations so far."""

    live: list[SignedOrder]
    excluded: set[str] = field(default_factory=set)  # orders out for this round
    skipped: set[tuple[str, str]] = field(default_factory=set)  # (bid, offer) pairs not to retry
    verified: dict[tuple[str, str, int, bool], ContractFunction] = field(default_factory=dict)
    rejections: int = 0

    def candidates(self) -> list[SignedOrder]:
        return [o for o in self.live if o.order_hash not in self.excluded]


class Matcher:
    def __init__(self, session: Session, chain: Chain, settings: Settings) -> None:
        self.session = session
        self.chain = chain
        self.settings = settings
        self.operator = EthAccount.from_key(settings.operator_private_key.get_secret_value())

    def markets(self, now: int) -> list[MarketKey]:
        """The exact markets (product, asset, period) with open, unexpired orders."""
        rows = self.session.exec(
            select(
                SignedOrder.product,
                SignedOrder.asset_id,
                SignedOrder.delivery_start,
                SignedOrder.delivery_end,
            )
            .where(
                col(SignedOrder.status) == OrderStatus.OPEN,
                col(SignedOrder.expiry) >= now,
                gate_open(now),
            )
            .distinct()
        ).all()
        return sorted(MarketKey(*row) for row in rows)

    def run_once(self) -> list[str]:
        """Match every market once; returns the transaction hashes sent (all mined)."""
        now = self.chain.now()
        calls: list[tuple[Match, ContractFunction]] = []
        for market in self.markets(now):
            live = open_orders(
                self.session,
                product=market.product,
                asset_id=market.asset_id,
                delivery_start=market.delivery_start,
                delivery_end=market.delivery_end,
                now=now,
            )
            calls += self.match_market(live)
        sent = self._send_batch(calls)
        self.session.commit()
        return sent

    def match_market(self, live: list[SignedOrder]) -> list[tuple[Match, ContractFunction]]:
        """Plan, simulate each match; after a rejection plan again without the order at fault
        (or the pair), until a plan simulates clean or the rejection budget is spent. Returns
        the verified matches of the last plan, in order."""
        state = _MarketRound(live)
        while True:
            accepted: list[tuple[Match, ContractFunction]] = []
            for match in plan_matches(state.candidates(), skip=frozenset(state.skipped)):
                call = state.verified.get(match.key)
                if call is None:
                    call, failure = self._simulate(match)
                    if failure is not None:
                        self._rejected(state, match, failure)
                        break
                    state.verified[match.key] = call
                accepted.append((match, call))
            else:
                return accepted
            if state.rejections >= REJECTIONS_PER_MARKET:
                log.warning("rejection budget spent; the rest of this market waits a round")
                return accepted

    def _call(self, match: Match) -> ContractFunction:
        return self.chain.market.functions.matchOrders(
            to_order(match.bid).as_tuple(),
            bytes.fromhex(match.bid.signature[2:]),
            to_order(match.offer).as_tuple(),
            bytes.fromhex(match.offer.signature[2:]),
            match.quantity_wh,
            match.bid_is_resting,
        )

    def _simulate(self, match: Match) -> tuple[ContractFunction, ContractReverted | None]:
        call = self._call(match)
        try:
            self.chain.call(call, **{"from": self.operator.address})
        except ContractReverted as exc:
            return call, exc
        return call, None

    def _rejected(self, state: _MarketRound, match: Match, exc: ContractReverted) -> None:
        """Leave out the order at fault (booking the failure against it), or skip the pair."""
        state.rejections += 1
        trusted = match_failures.revert_is_trusted(match.bid, self._has_code)
        rejection = match_failures.reject(match.bid, match.offer, exc, trusted=trusted)
        log.warning(
            "match %s/%s rejected: %s", match.bid.order_hash, match.offer.order_hash, exc.detail
        )
        culprit, fault = rejection.order, rejection.fault
        if rejection.undecided:
            culprit, fault = self._probe(state, match), match_failures.Fault.FAILED
        if culprit is None or fault is None:
            state.skipped.add((match.bid.order_hash, match.offer.order_hash))
            return
        state.excluded.add(culprit.order_hash)
        match_failures.record(self.session, self.settings, culprit, fault, rejection.detail)

    def _has_code(self, address: str) -> bool:
        return len(self.chain.w3.eth.get_code(to_checksum_address(address))) > 0

    def _probe(self, state: _MarketRound, match: Match) -> SignedOrder | None:
        """The order at fault for an undecidable rejection, found by trying each order against
        another counterparty: the one whose counterparty trades elsewhere while it does not
        (None: both or neither trade elsewhere, or nothing else to try)."""
        bid_elsewhere = self._trades_elsewhere(state, match.bid, match.offer)
        offer_elsewhere = self._trades_elsewhere(state, match.offer, match.bid)
        if offer_elsewhere is True and bid_elsewhere is not True:
            return match.bid
        if bid_elsewhere is True and offer_elsewhere is not True:
            return match.offer
        return None

    def _trades_elsewhere(
        self, state: _MarketRound, order: SignedOrder, counterparty: SignedOrder
    ) -> bool | None:
        """Whether a match of `order` with the best other counterparty it crosses simulates
        clean (None: there is none)."""
        candidates = state.candidates()
        others = _offers(candidates) if order.side == eip712.BUY else _bids(candidates)
        for other in others:
            if other.order_hash == counterparty.order_hash or other.maker == order.maker:
                continue
            bid, offer = (order, other) if order.side == eip712.BUY else (other, order)
            if bid.price < offer.price:
                return None  # in priority order: no other counterparty crosses
            state.rejections += 1
            _, failure = self._simulate(_pair(bid, offer, min(_remaining(bid), _remaining(offer))))
            return failure is None
        return None

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
    from backend.health.heartbeats import MATCHER, Heartbeat

    engine = make_engine(settings.database_url)
    heartbeat = Heartbeat(engine, MATCHER, settings.heartbeat_interval_s)
    while True:
        with Session(engine) as session:
            try:
                Matcher(session, chain_for(settings), settings).run_once()
                heartbeat.beat()  # a round that completed: /health's matcher check
            except Exception:  # keep the service up; the next round retries
                log.exception("matching round failed")
        time.sleep(interval_s)


if __name__ == "__main__":  # pragma: no cover
    from backend.core.startup import settings_or_exit

    logging.basicConfig(level=logging.INFO)
    settings = settings_or_exit("matcher")
    run_forever(settings, settings.matcher_interval_s)
