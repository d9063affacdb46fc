"""DemandResponse: program budget, collateral, per-participant settlement exactly once, pull
payments, closing a program; every test checks token conservation at its end."""

import ape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.demand_response import (
    BUDGET,
    COLLATERAL,
    EVENT,
    PROGRAM,
    assert_conserved,
    held,
)
from tests.fixtures.energy_market import reverts_with, single_event

OTHER_EVENT = b"\x07" * 32


def test_deployment_and_program(dr, gusd, owner, settler, alice, bob):
    assert dr.paymentToken() == gusd.address
    assert dr.hasRole(b"\x00" * 32, owner) and dr.hasRole(dr.SETTLER_ROLE(), settler)
    assert dr.programInfo(PROGRAM) == (alice.address, False, BUDGET)
    assert dr.collateralOf(PROGRAM, bob) == COLLATERAL
    assert held(dr) == (0, BUDGET, 2 * COLLATERAL)
    assert_conserved(dr, gusd)


def test_create_program_twice_reverts(dr, bob):
    with reverts_with(dr.DemandResponseProgramExists, programId=PROGRAM):
        dr.createProgram(PROGRAM, 1, sender=bob)


def test_settle_credits_incentive_and_takes_penalty_from_collateral(dr, gusd, settler, bob, carol):
    receipt = dr.settle(
        PROGRAM, EVENT, [(bob, 7_000_000, 0), (carol, 0, 3_000_000)], sender=settler
    )
    logs = dr.ParticipantSettled.from_receipt(receipt)
    assert [
        (log.participant, log.incentive, log.penaltyOwed, log.penaltyCharged) for log in logs
    ] == [
        (bob.address, 7_000_000, 0, 0),
        (carol.address, 0, 3_000_000, 3_000_000),
    ]
    assert dr.balanceOf(bob) == 7_000_000 and dr.balanceOf(carol) == 0
    assert dr.collateralOf(PROGRAM, carol) == COLLATERAL - 3_000_000
    assert dr.programInfo(PROGRAM)[2] == BUDGET - 7_000_000 + 3_000_000
    assert dr.isSettled(EVENT, bob) and dr.isSettled(EVENT, carol)
    assert not dr.isSettled(OTHER_EVENT, bob)
    assert_conserved(dr, gusd)


def test_penalty_is_capped_at_collateral(dr, gusd, settler, bob):
    receipt = dr.settle(PROGRAM, EVENT, [(bob, 0, COLLATERAL * 3)], sender=settler)
    log = single_event(receipt, dr.ParticipantSettled)
    assert (log.penaltyOwed, log.penaltyCharged) == (COLLATERAL * 3, COLLATERAL)
    assert dr.collateralOf(PROGRAM, bob) == 0
    assert dr.programInfo(PROGRAM)[2] == BUDGET + COLLATERAL
    assert_conserved(dr, gusd)


def test_second_settlement_of_a_participant_reverts(dr, gusd, settler, bob, carol):
    dr.settle(PROGRAM, EVENT, [(bob, 1_000_000, 0)], sender=settler)
    with reverts_with(dr.DemandResponseAlreadySettled, eventId=EVENT, participant=bob.address):
        dr.settle(PROGRAM, EVENT, [(carol, 1, 0), (bob, 1_000_000, 0)], sender=settler)
    # the whole batch reverted: carol was not settled and bob was paid once
    assert not dr.isSettled(EVENT, carol)
    assert dr.balanceOf(bob) == 1_000_000
    dr.settle(PROGRAM, OTHER_EVENT, [(bob, 1_000_000, 0)], sender=settler)  # another event
    assert dr.balanceOf(bob) == 2_000_000
    assert_conserved(dr, gusd)


def test_duplicate_participant_in_one_batch_reverts(dr, settler, bob):
    with reverts_with(dr.DemandResponseAlreadySettled, eventId=EVENT, participant=bob.address):
        dr.settle(PROGRAM, EVENT, [(bob, 1, 0), (bob, 1, 0)], sender=settler)


def test_incentive_beyond_budget_reverts(dr, settler, bob, carol):
    # carol's penalty enters the budget before bob's incentive is checked against it
    with reverts_with(
        dr.DemandResponseBudgetExceeded,
        programId=PROGRAM,
        budget=BUDGET + 10,
        needed=BUDGET + 11,
    ):
        dr.settle(PROGRAM, EVENT, [(carol, 0, 10), (bob, BUDGET + 11, 0)], sender=settler)


def test_settle_needs_the_settler_role(dr, stranger, bob):
    with ape.reverts():
        dr.settle(PROGRAM, EVENT, [(bob, 1, 0)], sender=stranger)


def test_unknown_program_reverts(dr, settler, bob):
    with reverts_with(dr.DemandResponseUnknownProgram, programId=OTHER_EVENT):
        dr.settle(OTHER_EVENT, EVENT, [(bob, 1, 0)], sender=settler)


def test_withdraw_pays_the_balance_once(dr, gusd, settler, bob):
    dr.settle(PROGRAM, EVENT, [(bob, 5_000_000, 0)], sender=settler)
    before = gusd.balanceOf(bob)
    receipt = dr.withdraw(sender=bob)
    assert single_event(receipt, dr.Withdrawn).amount == 5_000_000
    assert gusd.balanceOf(bob) == before + 5_000_000
    with reverts_with(dr.DemandResponseNothingDue, account=bob.address):
        dr.withdraw(sender=bob)
    assert_conserved(dr, gusd)


def test_only_the_utility_funds_and_closes(dr, gusd, alice, bob):
    with reverts_with(
        dr.DemandResponseNotUtility, programId=PROGRAM, caller=bob.address, utility=alice.address
    ):
        dr.closeProgram(PROGRAM, sender=bob)
    with reverts_with(
        dr.DemandResponseNotUtility, programId=PROGRAM, caller=bob.address, utility=alice.address
    ):
        dr.fundProgram(PROGRAM, 1, sender=bob)
    dr.fundProgram(PROGRAM, 5, sender=alice)
    assert dr.programInfo(PROGRAM)[2] == BUDGET + 5
    assert_conserved(dr, gusd)


def test_close_returns_budget_then_collateral(dr, gusd, settler, alice, bob, carol):
    dr.settle(PROGRAM, EVENT, [(bob, 2_000_000, 0), (carol, 0, 1_000_000)], sender=settler)
    with reverts_with(dr.DemandResponseProgramOpen, programId=PROGRAM):
        dr.releaseCollateral(PROGRAM, sender=bob)
    receipt = dr.closeProgram(PROGRAM, sender=alice)
    remaining = BUDGET - 2_000_000 + 1_000_000
    assert single_event(receipt, dr.ProgramClosed).remainingBudget == remaining
    assert dr.balanceOf(alice) == remaining
    with reverts_with(dr.DemandResponseProgramClosed, programId=PROGRAM):
        dr.settle(PROGRAM, OTHER_EVENT, [(bob, 1, 0)], sender=settler)
    with reverts_with(dr.DemandResponseProgramClosed, programId=PROGRAM):
        dr.postCollateral(PROGRAM, 1, sender=bob)
    dr.releaseCollateral(PROGRAM, sender=carol)
    assert dr.balanceOf(carol) == COLLATERAL - 1_000_000
    with reverts_with(dr.DemandResponseNothingDue, account=carol.address):
        dr.releaseCollateral(PROGRAM, sender=carol)
    for account in (alice, bob, carol):
        dr.withdraw(sender=account)
    dr.releaseCollateral(PROGRAM, sender=bob)
    dr.withdraw(sender=bob)
    assert held(dr) == (0, 0, 0) and gusd.balanceOf(dr) == 0
    assert_conserved(dr, gusd)


amounts = st.integers(min_value=0, max_value=COLLATERAL * 2)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(results=st.lists(st.tuples(amounts, amounts), min_size=1, max_size=6))
def test_tokens_conserved_over_events(dr, gusd, chain, settler, bob, carol, results):
    """Invariant over random events: Σ balances + budget + collateral == tokens held, each
    participant's collateral never goes negative, incentives paid equal the budget's loss."""
    snapshot = chain.snapshot()
    try:
        paid = charged = 0
        for index, (incentive, penalty) in enumerate(results):
            event = index.to_bytes(32, "big")
            collateral = dr.collateralOf(PROGRAM, carol)
            dr.settle(PROGRAM, event, [(bob, incentive, 0), (carol, 0, penalty)], sender=settler)
            paid += incentive
            charged += min(penalty, collateral)
            assert_conserved(dr, gusd)
        assert dr.balanceOf(bob) == paid
        assert dr.collateralOf(PROGRAM, carol) == COLLATERAL - charged
        assert dr.programInfo(PROGRAM)[2] == BUDGET - paid + charged
    finally:
        chain.restore(snapshot)
