"""The DemandResponse mirror: programs, per-participant results and pull balances follow the
contract's events through settlement, closing, collateral release and withdrawals."""

from __future__ import annotations

from sqlmodel import select

from backend.dr.onchain import bytes32_id
from backend.dr.settlement import settle_due_events
from indexer.models import DrChainBalance, DrChainProgram, DrChainResult
from tests.fixtures.dr_chain import BUDGET, COLLATERAL, build_dr_world

INCENTIVE = 720_000


def test_mirror_follows_demand_response(market):
    world = build_dr_world(market)
    with market.session() as session:
        settle_due_events(
            session,
            market.ctx,
            market.locks,
            market.settings,
            now=world.end + market.settings.dr_missing_data_deadline_s,
        )
    program = "0x" + bytes32_id(world.program_id).hex()
    utility, delivering, short = (
        a.address.lower() for a in (world.utility, world.delivering, world.short)
    )
    market.catch_up()
    with market.session() as session:
        mirrored = session.get(DrChainProgram, program)
        assert mirrored is not None
        assert (mirrored.utility, mirrored.budget, mirrored.closed) == (
            utility,
            BUDGET - INCENTIVE + COLLATERAL,
            False,
        )
        results = session.exec(select(DrChainResult).order_by(DrChainResult.participant)).all()
        assert sorted(
            (r.participant, r.incentive, r.penalty_owed, r.penalty_charged) for r in results
        ) == sorted([(delivering, INCENTIVE, 0, 0), (short, 0, 300_000, COLLATERAL)])
        assert {r.event_id for r in results} == {"0x" + bytes32_id(world.event_id).hex()}
        balances = {
            b.account: (b.withdrawable, b.collateral) for b in session.exec(select(DrChainBalance))
        }
        assert balances == {delivering: (INCENTIVE, 0), short: (0, 0)}

    workload = market.devnet.workload
    dr = world.dr.functions
    workload.tx(world.utility, dr.closeProgram(bytes32_id(world.program_id)))
    workload.tx(world.delivering, dr.withdraw())
    workload.tx(world.utility, dr.withdraw())
    market.catch_up()
    with market.session() as session:
        mirrored = session.get(DrChainProgram, program)
        assert mirrored is not None and (mirrored.budget, mirrored.closed) == (0, True)
        balances = {
            b.account: (b.withdrawable, b.collateral) for b in session.exec(select(DrChainBalance))
        }
        assert balances == {delivering: (0, 0), short: (0, 0), utility: (0, 0)}
        for account, (withdrawable, _) in balances.items():
            assert (
                world.dr.functions.balanceOf(world.dr.w3.to_checksum_address(account)).call()
                == withdrawable
            )
    assert world.conserved()
