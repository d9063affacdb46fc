"""Stateful property test of the whole GridLedger on-chain trio: GridUSD, RECRegistry and an
EnergyMarket trading the registry's certificates.

A hypothesis `RuleBasedStateMachine` drives random sequences of market and registry actions
against one deployment (restored from a chain snapshot for every example) and keeps a Python
model of what the chain should hold. Every step is predicted by the model: a step either
succeeds and the model is updated, or it must revert with the exact custom error (and
arguments) the model expects. After every step the invariants below are checked on-chain.

Invariants:
1. gUSD conservation: the balances of every account that can hold gUSD sum to the minted
   total and equal the model's wallets; the market holds exactly totalEscrowed +
   totalWithdrawable; totalEscrowed is the model's sum of open-trade escrows, every
   participant's withdrawable (free) balance is the model's credit and totalWithdrawable is
   the sum of free and locked balances.
   Collateral conserved: each participant's locked collateral is the sum of the collateral
   (EnergyMarket.collateralFor under the trade's terms) of its open sales, locked at the fill,
   unlocked at settlement (minus the penalty, paid to the buyer) or reclaim; a fill whose seller
   cannot cover it reverts with EnergyMarketInsufficientCollateral (participants start with
   small deposits, one with none, and deposit at random).
2. Certificate supply: per certificate, supply == volumeWh - claimedWh == sum of balances over
   all holders, and claimedWh == sum of claimedBalance == the model's claimed Wh.
3. No device-period issued twice: the model's issued (device, 15-min slot) pairs are unique;
   each slot read as issued right after its issuance (slot by slot), every certificate that
   holds its slots (live, or revoked after some of its Wh were retired) reads as issued, and
   every maximal run of slots outside the model's set reads as not issued (the on-chain bitmap
   has no extra bits).
4. Trade statuses on chain equal the model's (REC swaps: None).

Rules checked by the steps themselves:
5. Payment rounds up: every fill (ENERGY and REC) costs exactly ceil(Wh * price / 1000), so
   a fill is never free (prices below 1000 base units per kWh and 1-3 Wh fills are drawn on
   purpose); at settlement payout == ceil(delivered * price / 1000), payout + refund == the
   trade's escrow, and penalty <= the trade's collateral (it is not capped at the payout).
6. The reclaim grace period is fixed per trade: the admin changes it at random (and is
   refused below MIN_RECLAIM_GRACE_PERIOD / above the maximum with the exact error); every
   trade records the grace in force when it was made and reclaim opens exactly at its own
   deliveryEnd + grace, whatever the admin set since.
7. Revocation frees a certificate's slots unless some of its Wh were retired: the model drops
   them from its issued set, the chain reads them as free, and a later issuance may cover
   them (a corrected certificate); live certificates' slots stay taken.
8. No fill without meter ownership: a maker whose order names another participant's meter, or
   a taker who names one, is refused with EnergyMarketNotMeterOwner(account, meterId) (seller
   side checked first) and nothing moves; the invariants hold after the attempt.

The machine class is built inside the test function (closure over Ape's fixtures) and run
with `run_state_machine_as_test`. Invariant reads go straight to the in-process EVM backend
(about 1 ms per read instead of about 5 ms through Ape's contract layer); transactions and
expected reverts go through Ape. `pytest -s` prints a tally of what the steps did.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
from eth_abi import decode, encode
from eth_utils import is_address, keccak, to_canonical_address, to_checksum_address
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from backend.market.orders import (
    BUY,
    ENERGY,
    REC,
    SELL,
    SLOT_SECONDS,
    Order,
    default_meter_id,
    order_digest,
    payment,
    sign_order,
)
from tests.fixtures.energy_market import collateral, reverts_with, settlement
from tests.fixtures.rec_registry import EVIDENCE, evidence_roots

TOLERANCE_BPS = 500
PENALTY_BPS = 2_000
GRACE = 86_400
MIN_GRACE = 4 * 3_600  # EnergyMarket.MIN_RECLAIM_GRACE_PERIOD
MAX_GRACE = 30 * 86_400
FUNDING = 1_000_000 * 10**6  # 1M gUSD per participant
# Starting market balances: the first participant has none, the others a little (a 20 kWh sale
# at 0.3 gUSD/kWh locks 1.14 gUSD), so fills refused for collateral come up.
START_DEPOSITS = (0, 2_000_000, 3_000_000)
MAX_UINT = 2**256 - 1

SLOT = SLOT_SECONDS
HOUR = 3_600
DAY = 86_400
HISTORY_DAYS = 20  # certificates are issued for hours in [history_start, history_start + 20 days)
CAPACITY_W = 10_000  # 10 kW: at most 10,000 Wh per hour
SOLAR = b"SOLAR_PV".ljust(32, b"\0")
GRID_DE = b"DE-50HZ".ljust(32, b"\0")

NONE, OPEN, SETTLED, RECLAIMED = 0, 1, 2, 3

MACHINE_SETTINGS = settings(
    # Same examples on every CI run; set GRIDLEDGER_HYPOTHESIS_RANDOM=1 to explore new ones.
    derandomize=os.environ.get("GRIDLEDGER_HYPOTHESIS_RANDOM") != "1",
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    # No explain phase: it replays the failing chain sequence many more times. Shrinking a
    # failure can take a few minutes (every replay re-executes transactions).
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


# ------------------------------------------------------------------------------ fast reads


class Reader:
    """eth_call straight on the in-process EVM backend:
    `read(contract, "f(address)", [a], "uint256")`."""

    def __init__(self, chain, caller):
        self._backend = chain.provider.evm_backend
        self._from = to_canonical_address(caller)
        self._selectors: dict[str, tuple[bytes, list[str]]] = {}

    def __call__(self, contract, signature: str, args=(), out: str = "uint256"):
        if signature not in self._selectors:
            inner = signature[signature.index("(") + 1 : -1]
            self._selectors[signature] = (
                keccak(text=signature)[:4],
                inner.split(",") if inner else [],
            )
        selector, types = self._selectors[signature]
        tx = {
            "from": self._from,
            "to": to_canonical_address(contract.address),
            "data": selector + encode(types, list(args)),
            "value": 0,
            "gas": 10_000_000,
        }
        (value,) = decode([out], self._backend.call(tx, "latest"))
        return value


# ------------------------------------------------------------------------------ model


@dataclass
class BookOrder:
    """An ENERGY order the model knows about (signed, or listed when `signature` is empty)."""

    order: Order
    signature: bytes
    hash: bytes
    filled: int = 0
    cancelled: bool = False

    @property
    def remaining(self) -> int:
        return self.order.quantityWh - self.filled


@dataclass
class TradeModel:
    trade: tuple
    status: int
    escrow: int


@dataclass
class CertModel:
    device: int
    start: int
    end: int
    volume: int
    revoked: bool = False
    balances: dict = field(default_factory=dict)
    claimed: dict = field(default_factory=dict)

    @property
    def claimed_total(self) -> int:
        return sum(self.claimed.values())

    @property
    def holds_slots(self) -> bool:
        """Live, or revoked after some Wh were retired: its slots stay taken."""
        return not self.revoked or self.claimed_total > 0

    def slots(self) -> list[tuple[int, int]]:
        return [(self.device, slot) for slot in range(self.start, self.end, SLOT)]


def normalized(values) -> tuple:
    """ABI values with addresses checksummed (Ape decodes struct addresses in lower case)."""
    return tuple(
        to_checksum_address(v) if isinstance(v, str) and is_address(v) else v for v in values
    )


def claim_data(cert: CertModel):
    return ("Bakery Mueller GmbH", "Scope 2 market-based", cert.start, cert.end, GRID_DE)


# ------------------------------------------------------------------------------ deployment


@dataclass
class World:
    gusd: object
    registry: object
    market: object
    participants: list
    holders: list  # every address that could ever hold gUSD or certificates
    devices: dict  # participant address -> device id
    history_start: int
    minted: int
    chain_id: int


def deploy_world(project, chain, owner, participants, others, operator, settler, registrar, issuer):
    gusd = project.GridUSD.deploy(owner, sender=owner)
    registry = project.RECRegistry.deploy(
        owner, "https://certs.gridledger.example/{id}.json", sender=owner
    )
    market = project.EnergyMarket.deploy(
        owner, gusd, registry, TOLERANCE_BPS, PENALTY_BPS, GRACE, sender=owner
    )
    market.grantRole(market.OPERATOR_ROLE(), operator, sender=owner)
    market.grantRole(market.SETTLER_ROLE(), settler, sender=owner)
    registry.grantRole(registry.REGISTRAR_ROLE(), registrar, sender=owner)
    registry.grantRole(registry.ISSUER_ROLE(), issuer, sender=owner)

    history_start = (chain.pending_timestamp // HOUR) * HOUR - (HISTORY_DAYS + 1) * DAY
    devices = {}
    for i, account in enumerate(participants):
        gusd.mint(account, FUNDING, sender=owner)
        gusd.approve(market, MAX_UINT, sender=account)
        if START_DEPOSITS[i % len(START_DEPOSITS)]:
            market.deposit(START_DEPOSITS[i % len(START_DEPOSITS)], sender=account)
        registry.setApprovalForAll(market, True, sender=account)
        meter = default_meter_id(account.address)
        registry.approveMeter(meter, CAPACITY_W, account, sender=registrar)
        registry.registerDevice(
            (SOLAR, CAPACITY_W, GRID_DE, history_start - DAY, meter), sender=account
        )
        device_id = registry.deviceIdOfMeter(meter)
        registry.approveDevice(device_id, sender=registrar)
        devices[account.address] = device_id

    holders = [a.address for a in participants] + [a.address for a in others]
    holders += [market.address, registry.address, gusd.address]
    return World(
        gusd=gusd,
        registry=registry,
        market=market,
        participants=list(participants),
        holders=holders,
        devices=devices,
        history_start=history_start,
        minted=FUNDING * len(participants),
        chain_id=chain.chain_id,
    )


# ------------------------------------------------------------------------------ the machine


def build_machine(
    world: World, chain, admin, operator, settler, issuer, stranger, outcomes: Counter
):
    gusd, registry, market = world.gusd, world.registry, world.market
    participants = world.participants
    by_address = {a.address: a for a in participants}
    read = Reader(chain, stranger.address)
    snapshot = {"id": chain.snapshot()}

    def outcome(label: str):
        """Tally what the steps did (printed by the test: `pytest -s`)."""
        outcomes[label] += 1

    def meter(address) -> bytes:
        return default_meter_id(address)

    def digest(order: Order) -> bytes:
        return order_digest(order, world.chain_id, market.address)

    def sign(order: Order, account) -> bytes:
        return sign_order(order, account.private_key, world.chain_id, market.address)

    class GridLedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            chain.restore(snapshot["id"])
            snapshot["id"] = chain.snapshot()
            # gUSD
            self.wallet = dict.fromkeys(world.holders, 0)
            self.credits = {}  # free market balances
            self.locked = {}  # collateral of open sales
            for i, account in enumerate(participants):
                deposit = START_DEPOSITS[i % len(START_DEPOSITS)]
                self.wallet[account.address] = FUNDING - deposit
                self.wallet[market.address] += deposit
                self.credits[account.address] = deposit
                self.locked[account.address] = 0
            # market
            self.nonces = {a.address: 0 for a in participants}
            self.book: list[BookOrder] = []
            self.trades: dict[int, TradeModel] = {}
            self.last_trade_id = 0
            self.salt = 0
            self.grace = GRACE  # recorded in trades made from now on
            # registry
            self.certs: dict[int, CertModel] = {}
            # (device, slot start) held by a certificate; freed again by a revocation
            self.issued_slots: list[tuple[int, int]] = []
            self.freed_slots: list[tuple[int, int]] = []

        def teardown(self):
            chain.restore(snapshot["id"])
            snapshot["id"] = chain.snapshot()

        # -------------------------------------------------------------- helpers

        @staticmethod
        def now() -> int:
            """block.timestamp of the next transaction."""
            return chain.pending_timestamp

        def next_salt(self) -> int:
            self.salt += 1
            return self.salt

        def other_than(self, data, address):
            return data.draw(st.sampled_from([a for a in participants if a.address != address]))

        def new_energy_order(self, data, maker, side) -> Order:
            now = self.now()
            start = (now // SLOT + 1 + data.draw(st.integers(0, 8), label="slots ahead")) * SLOT
            end = start + data.draw(st.integers(1, 4), label="slots") * SLOT
            return Order(
                maker=maker.address,
                side=side,
                product=ENERGY,
                assetId=0,
                meterId=meter(maker.address),
                quantityWh=data.draw(st.integers(1, 20_000), label="quantityWh"),
                price=data.draw(
                    st.one_of(st.integers(1, 400_000), st.integers(1, 999)), label="price"
                ),
                deliveryStart=start,
                deliveryEnd=end,
                # Mostly expiring at delivery start; some expire earlier, some outlive gate closure.
                expiry=start
                + data.draw(st.sampled_from([0, 0, -300, 1_800, 7_200]), label="expiry offset"),
                nonce=self.nonces[maker.address],
                salt=self.next_salt(),
            )

        def fill_error(self, entry: BookOrder, quantity: int, now: int):
            """The error `_useOrder` raises for `quantity` of `entry` at `now`, or None."""
            order, hash_ = entry.order, entry.hash
            if now > order.expiry:
                return "EnergyMarketOrderExpired", {"orderHash": hash_, "expiry": order.expiry}
            if entry.cancelled:
                return "EnergyMarketOrderCancelled", {"orderHash": hash_}
            current = self.nonces[order.maker]
            if order.nonce != current:
                return "EnergyMarketStaleNonce", {
                    "orderHash": hash_,
                    "orderNonce": order.nonce,
                    "currentNonce": current,
                }
            if quantity == 0:
                return "EnergyMarketZeroQuantity", {"orderHash": hash_}
            if quantity > entry.remaining:
                return "EnergyMarketInsufficientRemaining", {
                    "orderHash": hash_,
                    "requested": quantity,
                    "remaining": entry.remaining,
                }
            if order.product == ENERGY and now >= order.deliveryStart:
                return "EnergyMarketGateClosed", {
                    "orderHash": hash_,
                    "deliveryStart": order.deliveryStart,
                }
            return None

        def collateral_error(self, seller: str, quantity: int, price: int):
            """The error `_executeTrade` raises when `seller` cannot cover the sale's collateral."""
            required = collateral(quantity, price, TOLERANCE_BPS, PENALTY_BPS)
            if self.credits[seller] < required:
                return "EnergyMarketInsufficientCollateral", {
                    "seller": seller,
                    "required": required,
                    "available": self.credits[seller],
                }
            return None

        def record_energy_trade(
            self, receipt, seller, buyer, seller_meter, buyer_meter, quantity, price, order
        ):
            self.last_trade_id += 1
            trade = (
                seller,
                buyer,
                seller_meter,
                buyer_meter,
                quantity,
                price,
                order.deliveryStart,
                order.deliveryEnd,
                TOLERANCE_BPS,
                PENALTY_BPS,
                self.grace,
            )
            escrow = payment(quantity, price)
            # Rounded up: never free, and less than one unit above the exact price.
            assert escrow >= 1 and 0 <= escrow * 1000 - quantity * price < 1000
            self.trades[self.last_trade_id] = TradeModel(trade=trade, status=OPEN, escrow=escrow)
            locked = collateral(quantity, price, TOLERANCE_BPS, PENALTY_BPS)
            self.credits[seller] -= locked
            self.locked[seller] += locked
            self.wallet[buyer] -= escrow
            self.wallet[market.address] += escrow
            [log] = market.TradeCreated.from_receipt(receipt)
            assert log.tradeId == self.last_trade_id
            assert normalized(log.trade) == trade
            assert log.payment == escrow

        def execute_fill(self, entry: BookOrder, taker, quantity: int):
            """Taker fills `quantity` of `entry`; success or the exact revert is predicted."""
            order = entry.order
            if order.side == SELL:
                seller, buyer = order.maker, taker.address
            else:
                seller, buyer = taker.address, order.maker
            error = self.fill_error(entry, quantity, self.now()) or self.collateral_error(
                seller, quantity, order.price
            )
            args = (order.as_tuple(), entry.signature, quantity, meter(taker.address))
            outcome(f"fill ENERGY: {error[0] if error else 'ok'}")
            if error:
                with reverts_with(getattr(market, error[0]), **error[1]):
                    market.fillOrder(*args, sender=taker)
                return
            receipt = market.fillOrder(*args, sender=taker)
            entry.filled += quantity
            self.record_energy_trade(
                receipt, seller, buyer, meter(seller), meter(buyer), quantity, order.price, order
            )

        # -------------------------------------------------------------- market: orders

        @rule(data=st.data())
        def buy_signed_offer(self, data):
            """A seller signs an offer; a buyer fills all or part of it."""
            seller = data.draw(st.sampled_from(participants), label="seller")
            buyer = self.other_than(data, seller.address)
            order = self.new_energy_order(data, seller, SELL)
            entry = BookOrder(order=order, signature=sign(order, seller), hash=digest(order))
            self.book.append(entry)
            quantity = data.draw(st.integers(1, order.quantityWh), label="fill Wh")
            self.execute_fill(entry, buyer, quantity)

        @rule(data=st.data())
        def buy_a_few_cheap_wh(self, data):
            """1-3 Wh at a price below 1000 base units per kWh: worth less than one unit, yet
            the buyer pays at least one (rule 5)."""
            seller = data.draw(st.sampled_from(participants), label="seller")
            buyer = self.other_than(data, seller.address)
            order = replace(
                self.new_energy_order(data, seller, SELL),
                price=data.draw(st.integers(1, 999), label="cheap price"),
            )
            entry = BookOrder(order=order, signature=sign(order, seller), hash=digest(order))
            self.book.append(entry)
            quantity = data.draw(st.integers(1, min(3, order.quantityWh)), label="fill Wh")
            self.execute_fill(entry, buyer, quantity)

        @rule(data=st.data())
        def list_bid(self, data):
            """A buyer lists a bid on-chain (no signature); filled later from the book."""
            buyer = data.draw(st.sampled_from(participants), label="buyer")
            order = self.new_energy_order(data, buyer, BUY)
            entry = BookOrder(order=order, signature=b"", hash=digest(order))
            if self.now() > order.expiry:
                with reverts_with(
                    market.EnergyMarketOrderExpired, orderHash=entry.hash, expiry=order.expiry
                ):
                    market.listOrder(order.as_tuple(), sender=buyer)
                return
            receipt = market.listOrder(order.as_tuple(), sender=buyer)
            [log] = market.OrderListed.from_receipt(receipt)
            assert log.orderHash == entry.hash
            self.book.append(entry)
            if data.draw(st.booleans(), label="fill now"):
                seller = self.other_than(data, buyer.address)
                quantity = data.draw(st.integers(1, order.quantityWh), label="fill Wh")
                self.execute_fill(entry, seller, quantity)

        @rule(data=st.data())
        def fill_from_someone_elses_meter(self, data):
            """Rule 8: the maker's order or the taker names another participant's meter."""
            maker = data.draw(st.sampled_from(participants), label="maker")
            taker = self.other_than(data, maker.address)
            side = data.draw(st.sampled_from([SELL, BUY]), label="maker side")
            cheater = data.draw(st.sampled_from([maker, taker]), label="cheater")
            victim = self.other_than(data, cheater.address)
            order = self.new_energy_order(data, maker, side)
            taker_meter = meter(taker.address)
            if cheater is maker:
                order = replace(order, meterId=meter(victim.address))
            else:
                taker_meter = meter(victim.address)
            entry = BookOrder(order=order, signature=sign(order, maker), hash=digest(order))
            quantity = data.draw(st.integers(1, order.quantityWh), label="fill Wh")
            error = self.fill_error(entry, quantity, self.now())
            if error is None:
                sides = [(maker.address, order.meterId), (taker.address, taker_meter)]
                if side == BUY:
                    sides.reverse()  # the seller's meter is checked first
                account, meter_id = next((a, m) for a, m in sides if m != meter(a))
                error = "EnergyMarketNotMeterOwner", {"account": account, "meterId": meter_id}
            outcome(f"fill from another's meter: {error[0]}")
            with reverts_with(getattr(market, error[0]), **error[1]):
                market.fillOrder(
                    order.as_tuple(), entry.signature, quantity, taker_meter, sender=taker
                )

        @precondition(lambda self: self.book)
        @rule(data=st.data())
        def fill_from_book(self, data):
            """Any known order, any taker; sometimes more than remains, or after expiry/cancel."""
            entry = data.draw(st.sampled_from(self.book), label="order")
            taker = self.other_than(data, entry.order.maker)
            order, now = entry.order, self.now()
            if (
                now < order.deliveryStart <= order.expiry
                and data.draw(st.integers(0, 3), label="late") == 0
            ):
                # Still signed-valid after delivery starts: the fill must hit gate closure.
                late = data.draw(
                    st.integers(0, order.expiry - order.deliveryStart), label="seconds late"
                )
                chain.pending_timestamp = order.deliveryStart + late
            top = max(entry.remaining, 1)
            quantity = data.draw(
                st.one_of(st.integers(1, top), st.just(entry.remaining + 1)), label="fill Wh"
            )
            self.execute_fill(entry, taker, quantity)

        @rule(data=st.data(), bid_is_resting=st.booleans())
        def operator_match(self, data, bid_is_resting):
            """The operator matches a crossing bid and offer at the resting order's price."""
            now = self.now()
            candidates = [
                (bid, offer)
                for bid in self.book
                if bid.order.side == BUY and self.fill_error(bid, 1, now) is None
                for offer in self.book
                if offer.order.side == SELL and self.fill_error(offer, 1, now) is None
                if bid.order.maker != offer.order.maker
                and (bid.order.deliveryStart, bid.order.deliveryEnd)
                == (offer.order.deliveryStart, offer.order.deliveryEnd)
                and bid.order.price >= offer.order.price
            ]
            if candidates and data.draw(st.booleans(), label="use book"):
                bid, offer = data.draw(st.sampled_from(candidates), label="pair")
            else:
                buyer = data.draw(st.sampled_from(participants), label="buyer")
                seller = self.other_than(data, buyer.address)
                offer_order = self.new_energy_order(data, seller, SELL)
                bid_order = Order(
                    maker=buyer.address,
                    side=BUY,
                    product=ENERGY,
                    assetId=0,
                    meterId=meter(buyer.address),
                    quantityWh=data.draw(st.integers(1, 20_000), label="bid Wh"),
                    price=offer_order.price + data.draw(st.integers(0, 50_000), label="spread"),
                    deliveryStart=offer_order.deliveryStart,
                    deliveryEnd=offer_order.deliveryEnd,
                    expiry=offer_order.deliveryStart,
                    nonce=self.nonces[buyer.address],
                    salt=self.next_salt(),
                )
                offer = BookOrder(
                    order=offer_order, signature=sign(offer_order, seller), hash=digest(offer_order)
                )
                if data.draw(st.booleans(), label="list bid"):
                    market.listOrder(bid_order.as_tuple(), sender=buyer)
                    bid = BookOrder(order=bid_order, signature=b"", hash=digest(bid_order))
                else:
                    bid = BookOrder(
                        order=bid_order, signature=sign(bid_order, buyer), hash=digest(bid_order)
                    )
                self.book += [bid, offer]
            quantity = data.draw(
                st.integers(1, min(bid.remaining, offer.remaining)), label="match Wh"
            )
            price = bid.order.price if bid_is_resting else offer.order.price
            error = (
                self.fill_error(bid, quantity, self.now())
                or self.fill_error(offer, quantity, self.now())
                or self.collateral_error(offer.order.maker, quantity, price)
            )
            args = (
                bid.order.as_tuple(),
                bid.signature,
                offer.order.as_tuple(),
                offer.signature,
                quantity,
                bid_is_resting,
            )
            outcome(f"match: {error[0] if error else 'ok'}")
            if error:  # the fresh orders' gate closed or expired before this block, or collateral
                with reverts_with(getattr(market, error[0]), **error[1]):
                    market.matchOrders(*args, sender=operator)
                return
            receipt = market.matchOrders(*args, sender=operator)
            bid.filled += quantity
            offer.filled += quantity
            self.record_energy_trade(
                receipt,
                offer.order.maker,
                bid.order.maker,
                offer.order.meterId,
                bid.order.meterId,
                quantity,
                price,
                offer.order,
            )

        @precondition(lambda self: self.book)
        @rule(data=st.data())
        def cancel(self, data):
            entry = data.draw(st.sampled_from(self.book), label="order")
            maker = by_address[entry.order.maker]
            if entry.cancelled:
                with reverts_with(market.EnergyMarketOrderCancelled, orderHash=entry.hash):
                    market.cancelOrder(entry.order.as_tuple(), sender=maker)
                return
            market.cancelOrder(entry.order.as_tuple(), sender=maker)
            entry.cancelled = True
            assert market.isCancelled(entry.hash)

        @rule(data=st.data())
        def increment_nonce(self, data):
            """Cancel-all; an old, otherwise fillable order of the maker must then be stale."""
            maker = data.draw(st.sampled_from(participants), label="maker")
            market.incrementNonce(sender=maker)
            self.nonces[maker.address] += 1
            now = self.now()
            stale = [
                e
                for e in self.book
                if e.order.maker == maker.address and not e.cancelled and now <= e.order.expiry
            ]
            outcome(f"increment nonce: {'stale fill checked' if stale else 'no old order'}")
            if stale:
                entry = data.draw(st.sampled_from(stale), label="stale order")
                assert self.fill_error(entry, 1, now)[0] == "EnergyMarketStaleNonce"
                self.execute_fill(entry, self.other_than(data, maker.address), 1)

        # -------------------------------------------------------------- market: time, settlement

        @rule(data=st.data())
        def time_passes(self, data):
            """Move the clock: a random span, or just past an open trade's end / reclaim
            deadline."""
            now = self.now()
            targets = []
            for tid in self.open_trades():
                end = self.trades[tid].trade[7]
                targets += [t for t in (end, end + self.trades[tid].trade[10]) if t > now]
            mode = data.draw(st.sampled_from(["seconds", "trade end or deadline"]), label="advance")
            if mode == "seconds" or not targets:
                seconds = data.draw(
                    st.one_of(
                        st.integers(60, 3_000),
                        st.integers(3_000, 20_000),
                        st.integers(80_000, 130_000),
                    ),
                    label="seconds",
                )
            else:
                target = data.draw(st.sampled_from(sorted(targets)), label="target")
                seconds = target - now + data.draw(st.integers(0, 600), label="past target")
            outcome(f"advance: {mode if targets else 'seconds'}")
            chain.pending_timestamp = now + seconds

        def open_trades(self):
            return [tid for tid, t in self.trades.items() if t.status == OPEN]

        @precondition(lambda self: any(t.status == OPEN for t in self.trades.values()))
        @rule(data=st.data())
        def settle_batch(self, data):
            """Settle a random subset of due trades (0 / partial / exact / over-delivery)."""
            now = self.now()
            due = [tid for tid in self.open_trades() if self.trades[tid].trade[7] <= now]
            if not due and data.draw(st.booleans(), label="wait for a delivery end"):
                ends = sorted({self.trades[t].trade[7] for t in self.open_trades()})
                end = data.draw(st.sampled_from(ends), label="delivery end")
                chain.pending_timestamp = now = end + data.draw(
                    st.integers(0, 600), label="past end"
                )
                due = [tid for tid in self.open_trades() if self.trades[tid].trade[7] <= now]
            outcome(f"settle: {'due' if due else 'too early'}")
            if not due:
                tid = data.draw(st.sampled_from(self.open_trades()), label="early trade")
                trade = self.trades[tid].trade
                with reverts_with(
                    market.EnergyMarketSettlementTooEarly, tradeId=tid, deliveryEnd=trade[7]
                ):
                    market.settleBatch([trade], [tid], [trade[4]], sender=settler)
                return
            ids = data.draw(st.lists(st.sampled_from(due), min_size=1, unique=True), label="trades")
            delivered = []
            for tid in ids:
                quantity = self.trades[tid].trade[4]
                kind = data.draw(
                    st.sampled_from(["zero", "partial", "exact", "over"]), label="delivery"
                )
                if kind == "zero":
                    delivered.append(0)
                elif kind == "partial":
                    delivered.append(data.draw(st.integers(0, quantity), label="delivered Wh"))
                elif kind == "exact":
                    delivered.append(quantity)
                else:
                    delivered.append(quantity + data.draw(st.integers(1, 50_000), label="extra Wh"))
            closed = [tid for tid, t in self.trades.items() if t.status != OPEN]
            if data.draw(st.integers(0, 4), label="add closed") == 0:
                # One already settled/reclaimed trade, or a duplicate of a trade settled earlier
                # in the same batch, anywhere after it: the whole batch reverts.
                outcome("settle: batch with a closed trade")
                bad = data.draw(st.sampled_from(closed + ids), label="closed trade")
                first = (
                    ids.index(bad) + 1 if bad in ids else 0
                )  # a duplicate goes after its original
                at = data.draw(st.integers(first, len(ids)), label="position")
                batch_ids = [*ids[:at], bad, *ids[at:]]
                batch_wh = [*delivered[:at], self.trades[bad].trade[4], *delivered[at:]]
                with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=bad):
                    market.settleBatch(
                        [self.trades[t].trade for t in batch_ids],
                        batch_ids,
                        batch_wh,
                        sender=settler,
                    )
                return
            receipt = market.settleBatch(
                [self.trades[t].trade for t in ids], ids, delivered, sender=settler
            )
            logs = market.TradeSettled.from_receipt(receipt)
            assert [log.tradeId for log in logs] == ids
            for tid, wh, log in zip(ids, delivered, logs, strict=True):
                model = self.trades[tid]
                seller, buyer, _, _, quantity, price = model.trade[:6]
                expected = settlement(quantity, price, wh, TOLERANCE_BPS, PENALTY_BPS)
                assert expected["escrow"] == model.escrow
                assert (log.sellerPayout, log.penalty, log.buyerRefund) == (
                    expected["payout"],
                    expected["penalty"],
                    expected["refund"],
                )
                # Rule 5: delivered Wh are paid rounded up; the escrow is shared out exactly; the
                # penalty comes out of the collateral, whole.
                assert log.sellerPayout == payment(min(wh, quantity), price)
                assert log.sellerPayout + log.buyerRefund == model.escrow
                assert log.penalty <= expected["collateral"]
                self.unlock(seller, expected["collateral"])
                self.credits[seller] += expected["payout"] - expected["penalty"]
                self.credits[buyer] += expected["refund"] + expected["penalty"]
                model.status = SETTLED

        def unlock(self, seller: str, amount: int):
            self.locked[seller] -= amount
            self.credits[seller] += amount

        @precondition(lambda self: any(t.status != OPEN for t in self.trades.values()))
        @rule(data=st.data())
        def settle_closed_trade(self, data):
            tid = data.draw(
                st.sampled_from([t for t, m in self.trades.items() if m.status != OPEN]),
                label="trade",
            )
            trade = self.trades[tid].trade
            with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=tid):
                market.settle(trade, tid, trade[4], sender=settler)

        @precondition(lambda self: self.trades)
        @rule(data=st.data())
        def reclaim(self, data):
            """Anyone reclaims an unsettled trade's escrow for its buyer after the grace period
            recorded in the trade (rule 6: not the one the admin set since)."""
            tid = data.draw(st.sampled_from(sorted(self.trades)), label="trade")
            model = self.trades[tid]
            deadline = model.trade[7] + model.trade[10]
            if model.status == OPEN and self.now() < deadline:
                wait = data.draw(
                    st.sampled_from(["no", "past deadline", "current grace"]), label="wait"
                )
                if wait == "past deadline":
                    chain.pending_timestamp = deadline + data.draw(
                        st.integers(0, 600), label="past deadline"
                    )
                elif wait == "current grace" and self.now() < model.trade[7] + self.grace:
                    # Where reclaim would open if the admin's current grace applied to the trade.
                    chain.pending_timestamp = model.trade[7] + self.grace
            early = self.now() < deadline
            outcome(f"reclaim: {'closed' if model.status != OPEN else 'early' if early else 'ok'}")
            if model.status != OPEN:
                with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=tid):
                    market.reclaim(model.trade, tid, sender=stranger)
            elif early:
                with reverts_with(
                    market.EnergyMarketReclaimTooEarly, tradeId=tid, deadline=deadline
                ):
                    market.reclaim(model.trade, tid, sender=stranger)
            else:
                market.reclaim(model.trade, tid, sender=stranger)
                model.status = RECLAIMED
                self.credits[model.trade[1]] += model.escrow
                # not the seller's fault: its collateral comes back whole
                self.unlock(model.trade[0], collateral(*model.trade[4:6], *model.trade[8:10]))

        @rule(data=st.data())
        def set_grace_period(self, data):
            """The admin changes the reclaim grace period under open trades (rule 6); below the
            minimum or above the maximum is refused with the bound."""
            period = data.draw(
                st.one_of(
                    st.integers(MIN_GRACE, MAX_GRACE),
                    st.sampled_from([MIN_GRACE, 6 * HOUR, GRACE, 3 * DAY]),
                    st.integers(0, MIN_GRACE - 1),
                    st.just(MAX_GRACE + 1),
                ),
                label="grace period",
            )
            if period < MIN_GRACE:
                outcome("grace: too short")
                with reverts_with(
                    market.EnergyMarketGracePeriodTooShort, period=period, minPeriod=MIN_GRACE
                ):
                    market.setReclaimGracePeriod(period, sender=admin)
                return
            if period > MAX_GRACE:
                outcome("grace: too long")
                with reverts_with(
                    market.EnergyMarketGracePeriodTooLong, period=period, maxPeriod=MAX_GRACE
                ):
                    market.setReclaimGracePeriod(period, sender=admin)
                return
            outcome("grace: ok")
            market.setReclaimGracePeriod(period, sender=admin)
            self.grace = period
            assert read(market, "reclaimGracePeriod()") == period

        @rule(data=st.data())
        def deposit(self, data):
            """A participant adds to its market balance (collateral); zero is refused."""
            account = data.draw(st.sampled_from(participants), label="account")
            amount = data.draw(st.one_of(st.just(0), st.integers(1, 3_000_000)), label="deposit")
            outcome(f"deposit: {'zero' if amount == 0 else 'ok'}")
            if amount == 0:
                with reverts_with(market.EnergyMarketZeroDeposit, account=account.address):
                    market.deposit(0, sender=account)
                return
            market.deposit(amount, sender=account)
            self.credits[account.address] += amount
            self.wallet[account.address] -= amount
            self.wallet[market.address] += amount

        @rule(data=st.data())
        def withdraw(self, data):
            account = data.draw(st.sampled_from(participants), label="account")
            self.withdraw_for(account)

        @precondition(lambda self: any(self.credits.values()))
        @rule(data=st.data())
        def withdraw_credit(self, data):
            owed = [a for a in participants if self.credits[a.address]]
            self.withdraw_for(data.draw(st.sampled_from(owed), label="account"))

        def withdraw_for(self, account):
            amount = self.credits[account.address]
            outcome(f"withdraw: {'nothing' if amount == 0 else 'ok'}")
            if amount == 0:
                with reverts_with(market.EnergyMarketNothingToWithdraw, account=account.address):
                    market.withdraw(sender=account)
                return
            market.withdraw(sender=account)
            self.credits[account.address] = 0
            self.wallet[account.address] += amount
            self.wallet[market.address] -= amount

        # -------------------------------------------------------------- registry

        def slot_set(self, device: int) -> set[int]:
            return {s for d, s in self.issued_slots if d == device}

        @rule(data=st.data())
        def issue_batch(self, data):
            """Issue 1-3 past periods of a device; sometimes one overlaps an issued period."""
            owner_account = data.draw(st.sampled_from(participants), label="device")
            device = world.devices[owner_account.address]
            to = data.draw(st.sampled_from(participants), label="to")
            issued = sorted(self.slot_set(device))
            freed = sorted(s for d, s in self.freed_slots if d == device)
            starts, ends, volumes = [], [], []
            for _ in range(data.draw(st.integers(1, 3), label="periods")):
                hours = data.draw(st.integers(1, 3), label="hours")
                if freed and data.draw(st.integers(0, 2), label="reissue?") == 0:
                    # A corrected certificate over the slots of a revoked one (rule 7).
                    start = data.draw(st.sampled_from(freed), label="freed slot")
                elif issued and data.draw(st.integers(0, 3), label="overlap?") == 0:
                    # Deliberately cover an already certified slot.
                    slot = data.draw(st.sampled_from(issued), label="issued slot")
                    start = (
                        slot - data.draw(st.integers(0, hours * 4 - 1), label="slots before") * SLOT
                    )
                else:
                    hour = data.draw(st.integers(0, HISTORY_DAYS * 24 - 4), label="hour")
                    quarter = data.draw(st.sampled_from([0, 0, 0, 1, 2, 3]), label="quarter")
                    start = world.history_start + hour * HOUR + quarter * SLOT
                starts.append(start)
                ends.append(start + hours * HOUR)
                volumes.append(data.draw(st.integers(1, CAPACITY_W * hours), label="volume Wh"))

            taken = self.slot_set(device)
            offending = None
            for start, end in zip(starts, ends, strict=True):
                slots = set(range(start, end, SLOT))
                if slots & taken:
                    offending = (start, end)
                    break
                taken |= slots
            reissue = any(
                (device, slot) in self.freed_slots
                for start, end in zip(starts, ends, strict=True)
                for slot in range(start, end, SLOT)
            )
            outcome(
                f"issue: {'overlap' if offending else 'ok'}{' (freed slots)' if reissue else ''}"
            )
            if offending:
                with reverts_with(
                    registry.RECRegistryPeriodAlreadyIssued,
                    deviceId=device,
                    periodStart=offending[0],
                    periodEnd=offending[1],
                ):
                    registry.issueBatch(
                        device, to, starts, ends, volumes, evidence_roots(volumes), sender=issuer
                    )
                return

            receipt = registry.issueBatch(
                device, to, starts, ends, volumes, evidence_roots(volumes), sender=issuer
            )
            first = len(self.certs) + 1
            logs = registry.CertificateIssued.from_receipt(receipt)
            assert [log.certId for log in logs] == list(range(first, first + len(starts)))
            for i, (start, end, volume) in enumerate(zip(starts, ends, volumes, strict=True)):
                self.certs[first + i] = CertModel(
                    device=device,
                    start=start,
                    end=end,
                    volume=volume,
                    balances={to.address: volume},
                )
                for slot in range(start, end, SLOT):
                    self.issued_slots.append((device, slot))
                    if (device, slot) in self.freed_slots:
                        self.freed_slots.remove((device, slot))
                    assert read(
                        registry,
                        "isPeriodIssued(uint32,uint64,uint64)",
                        [device, slot, slot + SLOT],
                        "bool",
                    )

        def holdings(self, revoked=None):
            return [
                (cid, holder)
                for cid, cert in self.certs.items()
                if revoked is None or cert.revoked == revoked
                for holder, balance in cert.balances.items()
                if balance > 0
            ]

        @precondition(lambda self: self.holdings())
        @rule(data=st.data())
        def transfer_certificate(self, data):
            cid, holder = data.draw(st.sampled_from(self.holdings()), label="holding")
            cert = self.certs[cid]
            sender = by_address[holder]
            to = self.other_than(data, holder)
            amount = data.draw(st.integers(1, cert.balances[holder]), label="Wh")
            outcome(f"transfer: {'revoked' if cert.revoked else 'ok'}")
            if cert.revoked:
                with reverts_with(registry.RECRegistryCertificateRevoked, certId=cid):
                    registry.safeTransferFrom(holder, to, cid, amount, b"", sender=sender)
                return
            registry.safeTransferFrom(holder, to, cid, amount, b"", sender=sender)
            cert.balances[holder] -= amount
            cert.balances[to.address] = cert.balances.get(to.address, 0) + amount

        @precondition(lambda self: self.holdings())
        @rule(data=st.data())
        def claim(self, data):
            cid, holder = data.draw(st.sampled_from(self.holdings()), label="holding")
            cert = self.certs[cid]
            amount = data.draw(st.integers(1, cert.balances[holder]), label="Wh")
            outcome(f"claim: {'revoked' if cert.revoked else 'ok'}")
            if cert.revoked:
                with reverts_with(registry.RECRegistryCertificateRevoked, certId=cid):
                    registry.claim(cid, amount, claim_data(cert), sender=by_address[holder])
                return
            receipt = registry.claim(cid, amount, claim_data(cert), sender=by_address[holder])
            [log] = registry.CertificateClaimed.from_receipt(receipt)
            assert (log.certId, log.holder, log.amountWh) == (cid, holder, amount)
            cert.balances[holder] -= amount
            cert.claimed[holder] = cert.claimed.get(holder, 0) + amount

        @precondition(lambda self: self.holdings())
        @rule(data=st.data())
        def sell_certificates(self, data):
            """REC swap through the market: a holder's signed offer filled by a buyer, or a
            buyer's listed bid filled by the holder. Certificates and payment move atomically."""
            cid, holder = data.draw(st.sampled_from(self.holdings()), label="holding")
            cert = self.certs[cid]
            seller = by_address[holder]
            buyer = self.other_than(data, holder)
            listed_bid = data.draw(st.booleans(), label="listed bid")
            maker = buyer if listed_bid else seller
            offered = data.draw(st.integers(1, cert.balances[holder]), label="order Wh")
            order = Order(
                maker=maker.address,
                side=BUY if listed_bid else SELL,
                product=REC,
                assetId=cid,
                meterId=b"\0" * 32,
                quantityWh=offered,
                price=data.draw(
                    st.one_of(st.integers(0, 60_000), st.integers(0, 999)), label="price"
                ),
                deliveryStart=0,
                deliveryEnd=0,
                expiry=self.now() + DAY,
                nonce=self.nonces[maker.address],
                salt=self.next_salt(),
            )
            quantity = data.draw(st.integers(1, offered), label="traded Wh")
            if listed_bid:
                market.listOrder(order.as_tuple(), sender=buyer)
                taker, args = seller, (order.as_tuple(), b"", quantity, b"\0" * 32)
            else:
                taker, args = buyer, (order.as_tuple(), sign(order, seller), quantity, b"\0" * 32)
            outcome(
                f"REC {'bid' if listed_bid else 'offer'} fill: "
                f"{'revoked' if cert.revoked else 'ok'}"
            )
            if cert.revoked:
                # Bubbled up from the registry's transfer inside the market call.
                with reverts_with(registry.RECRegistryCertificateRevoked, certId=cid):
                    market.fillOrder(*args, sender=taker)
                return
            receipt = market.fillOrder(*args, sender=taker)
            self.last_trade_id += 1
            [log] = market.CertificatesTraded.from_receipt(receipt)
            price_paid = payment(quantity, order.price)
            assert 0 <= price_paid * 1000 - quantity * order.price < 1000  # rule 5: rounded up
            swap = (
                log.tradeId,
                log.seller,
                log.buyer,
                log.certificateId,
                log.quantityWh,
                log.payment,
            )
            assert normalized(swap) == (
                self.last_trade_id,
                holder,
                buyer.address,
                cid,
                quantity,
                price_paid,
            )
            cert.balances[holder] -= quantity
            cert.balances[buyer.address] = cert.balances.get(buyer.address, 0) + quantity
            self.wallet[buyer.address] -= price_paid
            self.wallet[holder] += price_paid

        @precondition(lambda self: self.certs)
        @rule(data=st.data())
        def revoke(self, data):
            """The issuer revokes a certificate (every other time, so most stay live); revoking a
            revoked one must revert. Afterwards no unit of it moves: see the transfer, claim and
            REC swap rules."""
            retired = sorted(c for c, m in self.certs.items() if m.claimed_total and not m.revoked)
            pool = retired if retired and data.draw(st.booleans(), label="retired") else self.certs
            cid = data.draw(st.sampled_from(sorted(pool)), label="certificate")
            cert = self.certs[cid]
            if cert.revoked:
                outcome("revoke: already revoked")
                with reverts_with(registry.RECRegistryCertificateRevoked, certId=cid):
                    registry.revoke(cid, "meter data corrected", sender=issuer)
                return
            if data.draw(st.booleans(), label="skip revocation"):
                return
            registry.revoke(cid, "meter data corrected", sender=issuer)
            cert.revoked = True
            freed = not cert.holds_slots
            outcome(f"revoke: {'slots freed' if freed else 'slots kept (Wh retired)'}")
            if freed:  # rule 7
                for slot in cert.slots():
                    self.issued_slots.remove(slot)
                self.freed_slots += cert.slots()
            assert (
                read(
                    registry,
                    "isPeriodIssued(uint32,uint64,uint64)",
                    [cert.device, cert.start, cert.end],
                    "bool",
                )
                is not freed
            )
            if freed and data.draw(st.booleans(), label="correct now"):
                self.issue_corrected(data, cert)

        def issue_corrected(self, data, revoked: CertModel):
            """A corrected certificate for exactly the period of `revoked`, whose slots are free."""
            to = data.draw(st.sampled_from(participants), label="to")
            hours = (revoked.end - revoked.start) // HOUR
            volume = data.draw(st.integers(1, CAPACITY_W * hours), label="corrected Wh")
            receipt = registry.issue(
                revoked.device, to, revoked.start, revoked.end, volume, EVIDENCE, sender=issuer
            )
            cid = len(self.certs) + 1
            [log] = registry.CertificateIssued.from_receipt(receipt)
            assert (log.certId, log.periodStart, log.periodEnd) == (cid, revoked.start, revoked.end)
            corrected = CertModel(
                device=revoked.device,
                start=revoked.start,
                end=revoked.end,
                volume=volume,
                balances={to.address: volume},
            )
            self.certs[cid] = corrected
            for slot in corrected.slots():
                self.issued_slots.append(slot)
                self.freed_slots.remove(slot)
            outcome("issue: corrected certificate")

        # -------------------------------------------------------------- invariants

        @invariant()
        def gusd_conserved(self):
            balances = {a: read(gusd, "balanceOf(address)", [a]) for a in world.holders}
            assert sum(balances.values()) == world.minted == read(gusd, "totalSupply()")
            assert balances == self.wallet
            escrowed = read(market, "totalEscrowed()")
            withdrawable = read(market, "totalWithdrawable()")
            assert balances[market.address] == escrowed + withdrawable
            assert escrowed == sum(t.escrow for t in self.trades.values() if t.status == OPEN)
            assert withdrawable == sum(self.credits.values()) + sum(self.locked.values())
            for account, credit in self.credits.items():
                assert read(market, "withdrawable(address)", [account]) == credit

        @invariant()
        def collateral_conserved(self):
            """Locked collateral is exactly that of each seller's open sales."""
            open_sales = dict.fromkeys(self.locked, 0)
            for model in self.trades.values():
                if model.status == OPEN:
                    terms = (*model.trade[4:6], *model.trade[8:10])
                    open_sales[model.trade[0]] += collateral(*terms)
            assert open_sales == self.locked
            for account, locked in self.locked.items():
                assert read(market, "lockedCollateral(address)", [account]) == locked
                assert read(market, "balanceOf(address)", [account]) == (
                    locked + self.credits[account]
                )

        @invariant()
        def certificate_supply(self):
            assert read(registry, "certificateCount()") == len(self.certs)
            if not self.certs:
                return
            ids = sorted(self.certs)
            holders = world.holders
            flat = read(
                registry,
                "balanceOfBatch(address[],uint256[])",
                [[h for _ in ids for h in holders], [cid for cid in ids for _ in holders]],
                "uint256[]",
            )
            for i, cid in enumerate(ids):
                cert = self.certs[cid]
                on_chain = read(
                    registry,
                    "certificate(uint256)",
                    [cid],
                    "(uint32,bytes32,bytes32,uint64,uint64,uint64,uint64,uint64,bool)",
                )
                device, _, _, start, end, _, volume, claimed, revoked = on_chain
                assert (device, start, end, volume, revoked) == (
                    cert.device,
                    cert.start,
                    cert.end,
                    cert.volume,
                    cert.revoked,
                )
                supply = read(registry, "supply(uint256)", [cid])
                balances = flat[i * len(holders) : (i + 1) * len(holders)]
                assert supply == volume - claimed == sum(balances)
                assert dict(zip(holders, balances, strict=True)) == {
                    h: cert.balances.get(h, 0) for h in holders
                }
                claimed_by = [
                    read(registry, "claimedBalance(uint256,address)", [cid, a.address])
                    for a in participants
                ]
                assert claimed == sum(claimed_by) == cert.claimed_total
                assert claimed_by == [cert.claimed.get(a.address, 0) for a in participants]

        @invariant()
        def no_period_issued_twice(self):
            assert len(set(self.issued_slots)) == len(self.issued_slots)
            for device in world.devices.values():
                slots = self.slot_set(device)
                # Every period still held by a certificate is marked...
                for cert in self.certs.values():
                    if cert.device == device and cert.holds_slots:
                        assert read(
                            registry,
                            "isPeriodIssued(uint32,uint64,uint64)",
                            [device, cert.start, cert.end],
                            "bool",
                        )
                # ...and every maximal run of unissued slots in the history window is not.
                lo, hi = world.history_start - DAY, world.history_start + (HISTORY_DAYS + 1) * DAY
                run_start = None
                for slot in range(lo, hi + SLOT, SLOT):
                    free = slot < hi and slot not in slots
                    if free and run_start is None:
                        run_start = slot
                    elif not free and run_start is not None:
                        assert not read(
                            registry,
                            "isPeriodIssued(uint32,uint64,uint64)",
                            [device, run_start, slot],
                            "bool",
                        ), (device, run_start, slot)
                        run_start = None

        @invariant()
        def trade_statuses(self):
            assert read(market, "lastTradeId()") == self.last_trade_id
            for tid in range(1, self.last_trade_id + 1):
                expected = self.trades[tid].status if tid in self.trades else NONE
                assert read(market, "tradeStatus(uint256)", [tid], "uint8") == expected, tid

    return GridLedgerMachine


# ------------------------------------------------------------------------------ tests


@pytest.fixture
def world(project, chain, owner, alice, bob, carol, operator, settler, registrar, issuer, stranger):
    return deploy_world(
        project,
        chain,
        owner,
        [alice, bob, carol],
        [owner, operator, settler, registrar, issuer, stranger],
        operator,
        settler,
        registrar,
        issuer,
    )


def test_market_and_registry_invariants(world, chain, owner, operator, settler, issuer, stranger):
    outcomes = Counter()
    machine = build_machine(world, chain, owner, operator, settler, issuer, stranger, outcomes)
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    print("\nstep outcomes:", ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))


def test_invariants_detect_changes_the_model_does_not_know(
    world, chain, alice, owner, operator, settler, issuer, stranger
):
    """The invariants are not vacuous: chain changes behind the model's back (or a model that
    double counts) make them fail."""
    machine = build_machine(world, chain, owner, operator, settler, issuer, stranger, Counter())()
    checks = [
        machine.gusd_conserved,
        machine.collateral_conserved,
        machine.certificate_supply,
        machine.no_period_issued_twice,
        machine.trade_statuses,
    ]
    try:
        for check in checks:
            check()

        machine.locked[alice.address] += 1  # collateral the chain never locked
        with pytest.raises(AssertionError):
            machine.collateral_conserved()
        machine.locked[alice.address] -= 1

        world.gusd.mint(stranger, 1, sender=owner)  # tokens appear from nowhere
        with pytest.raises(AssertionError):
            machine.gusd_conserved()

        start = world.history_start + 5 * HOUR
        world.registry.issue(
            world.devices[alice.address], alice, start, start + HOUR, 1_000, EVIDENCE, sender=issuer
        )
        with pytest.raises(AssertionError):  # supply the model does not account for
            machine.certificate_supply()
        with pytest.raises(AssertionError):  # slots marked outside the model's issued set
            machine.no_period_issued_twice()

        machine.issued_slots += [(1, start), (1, start)]  # a model that issued a slot twice
        with pytest.raises(AssertionError):
            machine.no_period_issued_twice()

        machine.trades[1] = TradeModel(trade=(), status=OPEN, escrow=0)  # a trade the chain lacks
        machine.last_trade_id = 1
        with pytest.raises(AssertionError):
            machine.trade_statuses()
    finally:
        machine.teardown()
