"""EnergyMarket deployment and order factories (module-scoped; Ape snapshots between tests)."""

import pytest

from backend.market.orders import (
    ENERGY,
    REC,
    SELL,
    SLOT_SECONDS,
    Order,
    default_meter_id,
    sign_order,
)
from tests.fixtures.energy_market import (
    CERT_ID,
    DEPOSIT,
    FUNDING,
    GRACE,
    PENALTY_BPS,
    PRICE,
    TOLERANCE_BPS,
    single_event,
    trade_from_log,
)


@pytest.fixture(scope="module")
def gusd(project, owner):
    return project.GridUSD.deploy(owner, sender=owner)


@pytest.fixture(scope="module")
def certificates(project, owner):
    return project.TestCertificates.deploy(sender=owner)


@pytest.fixture(scope="module")
def market(project, owner, operator, settler, gusd, certificates, alice, bob, carol):
    market = project.EnergyMarket.deploy(
        owner, gusd, certificates, TOLERANCE_BPS, PENALTY_BPS, GRACE, sender=owner
    )
    market.grantRole(market.OPERATOR_ROLE(), operator, sender=owner)
    market.grantRole(market.SETTLER_ROLE(), settler, sender=owner)
    for account in (alice, bob, carol):
        # DEPOSIT backs the collateral of their ENERGY sales; FUNDING stays in their wallets.
        gusd.mint(account, FUNDING + DEPOSIT, sender=owner)
        gusd.approve(market, DEPOSIT, sender=account)
        market.deposit(DEPOSIT, sender=account)
        gusd.approve(market, FUNDING, sender=account)
        certificates.setApprovalForAll(market, True, sender=account)
    return market


@pytest.fixture(scope="module", autouse=True)
def _market_world(market, period, owner, alice, bob, carol, operator, settler, stranger):
    """Create every module/session fixture before Ape's per-test snapshots (no rebasing)."""


@pytest.fixture(scope="module")
def period(chain):
    """A 15-minute delivery slot starting at least an hour from now."""
    start = (chain.pending_timestamp // SLOT_SECONDS + 4) * SLOT_SECONDS
    return start, start + SLOT_SECONDS


@pytest.fixture
def make_order(market, period):
    def _make(
        maker,
        side=SELL,
        product=ENERGY,
        quantity_wh=10_000,
        price=PRICE,
        asset_id=None,
        meter=None,
        start=None,
        end=None,
        expiry=None,
        nonce=0,
        salt=1,
    ):
        address = getattr(maker, "address", maker)
        if meter is None:
            meter = default_meter_id(address) if product == ENERGY else b"\x00" * 32
        if asset_id is None:
            asset_id = CERT_ID if product == REC else 0
        start = period[0] if start is None else start
        end = period[1] if end is None else end
        return Order(
            maker=address,
            side=side,
            product=product,
            assetId=asset_id,
            meterId=meter,
            quantityWh=quantity_wh,
            price=price,
            deliveryStart=start,
            deliveryEnd=end,
            expiry=start if expiry is None else expiry,
            nonce=nonce,
            salt=salt,
        )

    return _make


@pytest.fixture
def sign(market, chain):
    def _sign(order, signer):
        return sign_order(order, signer.private_key, chain.chain_id, market.address)

    return _sign


@pytest.fixture
def taker_meter():
    def _meter(account):
        return default_meter_id(account.address)

    return _meter


@pytest.fixture
def open_trade(market, make_order, sign, taker_meter, alice, bob):
    """alice's signed 10 kWh offer at PRICE, filled completely by bob:
    (trade tuple, trade id, order)."""
    order = make_order(alice)
    receipt = market.fillOrder(
        order.as_tuple(), sign(order, alice), order.quantityWh, taker_meter(bob), sender=bob
    )
    log = single_event(receipt, market.TradeCreated)
    return trade_from_log(log), log.tradeId, order
