"""A seeded random workload against a deployment on Anvil: every kind of contract call.

Used by the indexer tests (mirror equals chain), the indexer benchmark and, later, the
demo. Everything goes through signed raw transactions, like a real client.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from backend.admin.timelock import Timelock
from backend.chain.contracts import Chain
from backend.chain.deployment import Deployment
from backend.chain.transactions import TransactionFailed, send
from backend.market.orders import (
    BUY,
    ENERGY,
    REC,
    SELL,
    SLOT_SECONDS,
    Order,
    default_meter_id,
    sign_order,
)
from backend.meters.signing import SignedValues, reading_digest
from backend.recs.evidence import evidence_root

Account.enable_unaudited_hdwallet_features()
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
MAX_UINT = 2**256 - 1
DEPOSIT = 10**11  # 100k gUSD of each participant's 1M in the market, as sellers' collateral
# A trade as `settleBatch` and `reclaim` take it: seller, buyer, sellerMeter, buyerMeter,
# quantityWh, price, deliveryStart, deliveryEnd, toleranceBps, penaltyBps, reclaimGracePeriod.
Trade = tuple[Any, ...]


def anvil_account(index: int) -> LocalAccount:
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@dataclass
class Contracts:
    w3: Web3
    deployment: Deployment

    def __post_init__(self) -> None:
        self.token = self._bind("GridUSD")
        self.registry = self._bind("RECRegistry")
        self.market = self._bind("EnergyMarket")

    def _bind(self, name: str) -> Contract:
        deployed = self.deployment.contracts[name]
        return self.w3.eth.contract(address=to_checksum_address(deployed.address), abi=deployed.abi)


@dataclass
class Workload:
    """Drives participants (Anvil accounts 5..) through orders, trades, RECs and claims."""

    w3: Web3
    deployment: Deployment
    seed: int = 1
    participants: int = 4
    rng: random.Random = field(init=False)
    nonces: dict[str, int] = field(default_factory=dict)
    open_trades: list[tuple[int, Trade]] = field(default_factory=list)
    devices: dict[str, int] = field(default_factory=dict)
    next_hour: dict[int, int] = field(default_factory=dict)
    operations: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.c = Contracts(self.w3, self.deployment)
        self.admin = anvil_account(0)
        self.settler = anvil_account(1)
        self.operator = anvil_account(2)
        self.issuer = anvil_account(3)
        self.registrar = anvil_account(4)
        self.governor = anvil_account(9)  # the timelock's proposer/executor (DEV_ADMIN_KEY)
        self.people = [anvil_account(5 + i) for i in range(self.participants)]
        self.chain_id = self.w3.eth.chain_id

    # --------------------------------------------------------------- plumbing

    def _next_nonce(self, account: LocalAccount) -> int:
        nonce = self.nonces.get(account.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
        self.nonces[account.address] = nonce + 1
        return nonce

    def tx(self, account: LocalAccount, call: ContractFunction, gas: int = 3_000_000) -> TxReceipt:
        """Send a contract call with a locally tracked nonce (fast: no estimate round trip)."""
        params = self.tx_params(account, nonce=self._next_nonce(account), gas=gas)
        receipt = send(self.w3, account, dict(call.build_transaction(params)))
        self.operations += 1
        return receipt

    def tx_params(self, account: LocalAccount, *, nonce: int, gas: int) -> TxParams:
        """Sender, nonce, gas and fixed fees (generous on Anvil): no estimate round trips."""
        return {
            "from": account.address,
            "gas": gas,
            "nonce": Nonce(nonce),
            "maxFeePerGas": Wei(10**11),
            "maxPriorityFeePerGas": Wei(1),
            "chainId": self.chain_id,
        }

    def signed_call(
        self, account: LocalAccount, call: ContractFunction, *, nonce: int, gas: int
    ) -> HexBytes:
        """A contract call built and signed with an explicit nonce but not sent: the raw
        transaction, for sending many at once with automine off."""
        built = call.build_transaction(self.tx_params(account, nonce=nonce, gas=gas))
        # eth-account's parameter type is a plain dict; a built transaction is one at runtime
        return account.sign_transaction(cast(dict[str, Any], built)).raw_transaction

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def govern(self, call: ContractFunction) -> TxReceipt:
        """An admin call (DEFAULT_ADMIN_ROLE is the timelock's): schedule it with the admin
        key, let the timelock's delay pass on chain, execute it."""
        timelock = Timelock(Chain(self.w3, self.deployment))
        built = call.build_transaction({"from": timelock.contract.address, "gas": 0})
        target = to_checksum_address(built["to"])
        operation = timelock.propose(self.governor, target, HexBytes(built["data"]))
        self.advance(max(operation.eta - self.now(), 0))
        receipt = timelock.execute(self.governor, operation.id)
        self.operations += 1
        return receipt

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Fund participants, approve the market, deposit collateral, approve a meter and
        register and approve a solar device on it for each."""
        for person in self.people:
            if self.w3.eth.get_balance(person.address) < 10**18:
                send(
                    self.w3,
                    self.admin,
                    {
                        "to": person.address,
                        "value": 10 * 10**18,
                        "gas": 21_000,
                        "nonce": self._next_nonce(self.admin),
                    },
                )
            self.tx(self.admin, self.c.token.functions.mint(person.address, 10**12))
            self.tx(person, self.c.token.functions.approve(self.c.market.address, MAX_UINT))
            # Collateral for their ENERGY sales (locked at each fill, see EnergyMarket.deposit).
            self.tx(person, self.c.market.functions.deposit(DEPOSIT))
            self.tx(
                person, self.c.registry.functions.setApprovalForAll(self.c.market.address, True)
            )
            meter = default_meter_id(person.address)
            self.tx(  # each person's meter signs with the person's key
                self.registrar,
                self.c.registry.functions.approveMeter(meter, 10_000, person.address),
            )
            self.tx(
                person,
                self.c.registry.functions.registerDevice(
                    (b"SOLAR_PV".ljust(32, b"\0"), 10_000, b"DE-50HZ".ljust(32, b"\0"), 0, meter)
                ),
            )
            device_id = self.c.registry.functions.deviceIdOfMeter(meter).call()
            self.tx(self.registrar, self.c.registry.functions.approveDevice(device_id))
            self.devices[person.address] = device_id
        self.advance(7 * 24 * 3600)  # leave room for past generation hours

    # ------------------------------------------------------------ operations

    def pair(self) -> tuple[LocalAccount, LocalAccount]:
        seller, buyer = self.rng.sample(self.people, 2)
        return seller, buyer

    def order(
        self,
        maker: LocalAccount,
        side: int,
        product: int = ENERGY,
        asset_id: int = 0,
        quantity: int | None = None,
    ) -> Order:
        start = (self.now() // SLOT_SECONDS + 2) * SLOT_SECONDS
        return Order(
            maker=maker.address,
            side=side,
            product=product,
            assetId=asset_id,
            meterId=default_meter_id(maker.address) if product == ENERGY else b"\0" * 32,
            quantityWh=quantity or self.rng.randrange(1_000, 20_000),
            price=self.rng.randrange(80_000, 200_000),
            deliveryStart=start if product == ENERGY else 0,
            deliveryEnd=start + SLOT_SECONDS if product == ENERGY else 0,
            expiry=self.now() + 3600,
            nonce=self.c.market.functions.nonces(maker.address).call(),
            salt=self.rng.getrandbits(64),
        )

    def signed_fill(self) -> None:
        seller, buyer = self.pair()
        offer = self.order(seller, SELL)
        signature = sign_order(offer, seller.key, self.chain_id, self.c.market.address)
        quantity = self.rng.randrange(1, offer.quantityWh + 1)
        receipt = self.tx(
            buyer,
            self.c.market.functions.fillOrder(
                offer.as_tuple(), signature, quantity, default_meter_id(buyer.address)
            ),
        )
        self.remember_trades(receipt)

    def listed_fill(self) -> None:
        seller, buyer = self.pair()
        bid = self.order(buyer, BUY)
        self.tx(buyer, self.c.market.functions.listOrder(bid.as_tuple()))
        receipt = self.tx(
            seller,
            self.c.market.functions.fillOrder(
                bid.as_tuple(), b"", bid.quantityWh // 2 or 1, default_meter_id(seller.address)
            ),
        )
        self.remember_trades(receipt)
        if self.rng.random() < 0.5:
            self.tx(buyer, self.c.market.functions.cancelOrder(bid.as_tuple()))

    def matched(self) -> None:
        seller, buyer = self.pair()
        offer = self.order(seller, SELL)
        bid = offer.replace(
            maker=buyer.address,
            side=BUY,
            price=offer.price + 1_000,
            meterId=default_meter_id(buyer.address),
            nonce=self.c.market.functions.nonces(buyer.address).call(),
        )
        receipt = self.tx(
            self.operator,
            self.c.market.functions.matchOrders(
                bid.as_tuple(),
                sign_order(bid, buyer.key, self.chain_id, self.c.market.address),
                offer.as_tuple(),
                sign_order(offer, seller.key, self.chain_id, self.c.market.address),
                min(bid.quantityWh, offer.quantityWh),
                self.rng.random() < 0.5,
            ),
        )
        self.remember_trades(receipt)

    def remember_trades(self, receipt: TxReceipt) -> None:
        for event in self.c.market.events.TradeCreated().process_receipt(receipt, errors=DISCARD):
            t = event["args"]["trade"]
            trade = (
                t["seller"],
                t["buyer"],
                t["sellerMeter"],
                t["buyerMeter"],
                t["quantityWh"],
                t["price"],
                t["deliveryStart"],
                t["deliveryEnd"],
                t["toleranceBps"],
                t["penaltyBps"],
                t["reclaimGracePeriod"],
            )
            self.open_trades.append((event["args"]["tradeId"], trade))

    def settle_due(self) -> None:
        self.advance(2 * SLOT_SECONDS + 60)
        due = [(i, t) for i, t in self.open_trades if t[7] <= self.now()]
        if not due:
            return
        self.rng.shuffle(due)
        batch = due[: self.rng.randrange(1, len(due) + 1)]
        delivered = [
            self.rng.choice([t[4], t[4] * 96 // 100, t[4] // 2, 0, t[4] + 5]) for _, t in batch
        ]
        self.tx(
            self.settler,
            self.c.market.functions.settleBatch(
                [t for _, t in batch], [i for i, _ in batch], delivered
            ),
        )
        settled = {i for i, _ in batch}
        self.open_trades = [(i, t) for i, t in self.open_trades if i not in settled]

    def reclaim_one(self) -> None:
        if not self.open_trades:
            return
        trade_id, trade = self.open_trades.pop(0)
        grace = trade[10]  # the trade's own grace period, fixed when it was made
        if self.now() < trade[7] + grace:
            self.advance(trade[7] + grace - self.now() + 1)
        buyer = next(p for p in self.people if p.address == trade[1])
        self.tx(buyer, self.c.market.functions.reclaim(trade, trade_id))

    def withdraw(self) -> None:
        """A random participant withdraws its free balance, then deposits collateral again
        (it keeps selling)."""
        person = self.rng.choice(self.people)
        if self.c.market.functions.withdrawable(person.address).call() > 0:
            self.tx(person, self.c.market.functions.withdraw())
            self.tx(person, self.c.market.functions.deposit(DEPOSIT))

    def issue(self, batch: int | None = None) -> list[int]:
        """Issue hourly certificates for the next unissued past hours of a random device."""
        owner = self.rng.choice(self.people)
        device_id = self.devices[owner.address]
        count = batch or self.rng.randrange(1, 6)
        first_hour = self.next_hour.get(device_id, (self.now() // 3600 - 24 * 6) * 3600)
        if first_hour + count * 3600 > self.now():
            return []
        starts = [first_hour + h * 3600 for h in range(count)]
        self.next_hour[device_id] = starts[-1] + 3600
        volumes = [self.rng.randrange(100, 9_000) for _ in starts]
        meter = default_meter_id(owner.address)
        receipt = self.tx(
            self.issuer,
            self.c.registry.functions.issueBatch(
                device_id,
                owner.address,
                starts,
                [s + 3600 for s in starts],
                volumes,
                [self.evidence(meter, s, v) for s, v in zip(starts, volumes, strict=True)],
            ),
            gas=15_000_000,
        )
        return [
            e["args"]["certId"]
            for e in self.c.registry.events.CertificateIssued().process_receipt(
                receipt, errors=DISCARD
            )
        ]

    def evidence(self, meter: bytes, hour: int, volume_wh: int) -> bytes:
        """The evidence root of an hour's four export readings summing to `volume_wh`."""
        quarters = [volume_wh // 4] * 3 + [volume_wh - 3 * (volume_wh // 4)]
        return evidence_root(
            reading_digest(
                SignedValues(meter, hour + q * 900, 900, 0, wh),
                self.chain_id,
                self.c.registry.address,
            )
            for q, wh in enumerate(quarters)
        )

    def holding(self) -> tuple[LocalAccount, int, int] | None:
        count = self.c.registry.functions.certificateCount().call()
        for _ in range(10):
            cert = self.rng.randrange(1, count + 1) if count else 0
            for person in self.rng.sample(self.people, len(self.people)):
                balance = self.c.registry.functions.balanceOf(person.address, cert).call()
                if balance > 0:
                    return person, cert, balance
        return None

    def transfer(self) -> None:
        found = self.holding()
        if found:
            holder, cert, balance = found
            to = self.rng.choice([p for p in self.people if p != holder])
            self.tx(
                holder,
                self.c.registry.functions.safeTransferFrom(
                    holder.address, to.address, cert, self.rng.randrange(1, balance + 1), b""
                ),
            )

    def claim(self) -> None:
        found = self.holding()
        if found:
            holder, cert, balance = found
            now = self.now()
            self.tx(
                holder,
                self.c.registry.functions.claim(
                    cert,
                    self.rng.randrange(1, balance + 1),
                    (
                        "Household " + holder.address[:8],
                        "scope2",
                        now - 3600,
                        now,
                        b"DE".ljust(32, b"\0"),
                    ),
                ),
            )

    def rec_sale(self) -> None:
        found = self.holding()
        if found:
            seller, cert, balance = found
            buyer = self.rng.choice([p for p in self.people if p != seller])
            offer = self.order(seller, SELL, product=REC, asset_id=cert, quantity=balance)
            signature = sign_order(offer, seller.key, self.chain_id, self.c.market.address)
            self.tx(
                buyer,
                self.c.market.functions.fillOrder(
                    offer.as_tuple(), signature, self.rng.randrange(1, balance + 1), b"\0" * 32
                ),
            )

    def bump_nonce(self) -> None:
        self.tx(self.rng.choice(self.people), self.c.market.functions.incrementNonce())

    def run(self, steps: int) -> None:
        """`steps` random operations, weighted towards trading and issuance."""
        operations: list[tuple[Callable[[], object], int]] = [
            (self.signed_fill, 5),
            (self.listed_fill, 3),
            (self.matched, 3),
            (self.settle_due, 3),
            (self.withdraw, 2),
            (self.issue, 4),
            (self.transfer, 2),
            (self.claim, 2),
            (self.rec_sale, 2),
            (self.reclaim_one, 1),
            (self.bump_nonce, 1),
        ]
        functions = [function for function, _ in operations]
        weights = [weight for _, weight in operations]
        for _ in range(steps):
            operation = self.rng.choices(functions, weights)[0]
            try:
                operation()
            except TransactionFailed as exc:
                raise TransactionFailed(f"{operation.__name__}: {exc}") from exc
