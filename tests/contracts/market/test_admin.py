"""Admin parameters of the market, deployment checks, and the GridUSD test token."""

import ape
import pytest

from tests.fixtures.energy_market import (
    GRACE,
    MAX_GRACE,
    MIN_GRACE,
    PENALTY_BPS,
    TOLERANCE_BPS,
    permit,
    reverts_with,
    single_event,
)

ADMIN_ROLE = b"\x00" * 32


def test_deployment_sets_parameters_and_roles(market, gusd, certificates, owner, operator, settler):
    assert market.paymentToken() == gusd.address and market.certificates() == certificates.address
    assert (market.toleranceBps(), market.penaltyBps(), market.reclaimGracePeriod()) == (
        TOLERANCE_BPS,
        PENALTY_BPS,
        GRACE,
    )
    assert market.hasRole(ADMIN_ROLE, owner)
    assert market.hasRole(market.OPERATOR_ROLE(), operator) and market.hasRole(
        market.SETTLER_ROLE(), settler
    )
    assert market.lastTradeId() == 0 and market.totalEscrowed() == 0


def test_deployment_emits_its_settlement_terms_for_the_indexer(project, gusd, certificates, owner):
    deployed = project.EnergyMarket.deploy(
        owner, gusd, certificates, TOLERANCE_BPS, PENALTY_BPS, GRACE, sender=owner
    )
    receipt = deployed.creation_metadata.receipt
    terms = single_event(receipt, deployed.SettlementParametersUpdated)
    assert (terms.oldToleranceBps, terms.newToleranceBps) == (0, TOLERANCE_BPS)
    assert (terms.oldPenaltyBps, terms.newPenaltyBps) == (0, PENALTY_BPS)
    grace = single_event(receipt, deployed.ReclaimGracePeriodUpdated)
    assert (grace.oldPeriod, grace.newPeriod) == (0, GRACE)


@pytest.mark.parametrize("tolerance, penalty", [(10_001, 0), (0, 10_001)])
def test_deployment_rejects_bps_above_10000(project, gusd, certificates, owner, tolerance, penalty):
    with ape.reverts():
        project.EnergyMarket.deploy(
            owner, gusd, certificates, tolerance, penalty, GRACE, sender=owner
        )


def test_set_settlement_parameters_emits_old_and_new_values(market, owner):
    receipt = market.setSettlementParameters(1_000, 5_000, sender=owner)

    log = single_event(receipt, market.SettlementParametersUpdated)
    assert (log.oldToleranceBps, log.newToleranceBps, log.oldPenaltyBps, log.newPenaltyBps) == (
        TOLERANCE_BPS,
        1_000,
        PENALTY_BPS,
        5_000,
    )
    assert (market.toleranceBps(), market.penaltyBps()) == (1_000, 5_000)
    market.setSettlementParameters(10_000, 10_000, sender=owner)


def test_set_settlement_parameters_rejects_bps_above_10000(market, owner):
    with reverts_with(
        market.EnergyMarketInvalidSettlementParameters, toleranceBps=10_001, penaltyBps=0
    ):
        market.setSettlementParameters(10_001, 0, sender=owner)
    with reverts_with(
        market.EnergyMarketInvalidSettlementParameters, toleranceBps=0, penaltyBps=10_001
    ):
        market.setSettlementParameters(0, 10_001, sender=owner)


def test_set_reclaim_grace_period_emits_old_and_new_values(market, owner):
    receipt = market.setReclaimGracePeriod(MAX_GRACE, sender=owner)

    log = single_event(receipt, market.ReclaimGracePeriodUpdated)
    assert (log.oldPeriod, log.newPeriod) == (GRACE, MAX_GRACE)
    assert market.reclaimGracePeriod() == MAX_GRACE


def test_set_reclaim_grace_period_rejects_more_than_30_days(market, owner):
    with reverts_with(
        market.EnergyMarketGracePeriodTooLong, period=MAX_GRACE + 1, maxPeriod=MAX_GRACE
    ):
        market.setReclaimGracePeriod(MAX_GRACE + 1, sender=owner)


@pytest.mark.parametrize("short", [0, 1, MIN_GRACE - 1])
def test_set_reclaim_grace_period_rejects_less_than_4_hours(market, owner, short):
    with reverts_with(market.EnergyMarketGracePeriodTooShort, period=short, minPeriod=MIN_GRACE):
        market.setReclaimGracePeriod(short, sender=owner)
    assert market.reclaimGracePeriod() == GRACE


def test_set_reclaim_grace_period_accepts_the_bounds(market, owner):
    assert (market.MIN_RECLAIM_GRACE_PERIOD(), market.MAX_RECLAIM_GRACE_PERIOD()) == (
        MIN_GRACE,
        MAX_GRACE,
    )
    market.setReclaimGracePeriod(MIN_GRACE, sender=owner)
    assert market.reclaimGracePeriod() == MIN_GRACE
    market.setReclaimGracePeriod(MAX_GRACE, sender=owner)
    assert market.reclaimGracePeriod() == MAX_GRACE


@pytest.mark.parametrize("grace", [0, MIN_GRACE - 1, MAX_GRACE + 1])
def test_deployment_rejects_grace_period_out_of_bounds(project, gusd, certificates, owner, grace):
    with ape.reverts():
        project.EnergyMarket.deploy(
            owner, gusd, certificates, TOLERANCE_BPS, PENALTY_BPS, grace, sender=owner
        )


def test_admin_functions_are_admin_only(market, operator):
    with reverts_with(
        market.AccessControlUnauthorizedAccount, account=operator.address, neededRole=ADMIN_ROLE
    ):
        market.setSettlementParameters(0, 0, sender=operator)
    with reverts_with(
        market.AccessControlUnauthorizedAccount, account=operator.address, neededRole=ADMIN_ROLE
    ):
        market.setReclaimGracePeriod(0, sender=operator)


# ---------------------------------------------------------------- GridUSD


def test_gridusd_metadata(gusd):
    assert (gusd.name(), gusd.symbol(), gusd.decimals()) == ("GridLedger Test USD", "gUSD", 6)


def test_gridusd_mint_is_minter_only(gusd, owner, stranger):
    gusd.mint(stranger, 5 * 10**6, sender=owner)
    assert gusd.balanceOf(stranger) == 5 * 10**6
    with reverts_with(
        gusd.AccessControlUnauthorizedAccount,
        account=stranger.address,
        neededRole=gusd.MINTER_ROLE(),
    ):
        gusd.mint(stranger, 1, sender=stranger)


def test_gridusd_permit_sets_allowance_from_signature(gusd, chain, market, alice, stranger):
    permit(gusd, chain, alice, market, 123, sender=stranger)
    assert gusd.allowance(alice, market) == 123
