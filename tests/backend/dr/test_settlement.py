"""A DR event settled on Anvil end to end: baseline from verified readings, incentive and
penalty posted once to DemandResponse, tokens conserved; crashes around the submission never
pay twice."""

from __future__ import annotations

import pytest
from sqlmodel import select

import backend.settlement.chain as settlement_chain
from backend.accounts.models import Account
from backend.dr.models import DrProgram, DrSettlement, DrSettlementStatus
from backend.dr.onchain import bytes32_id
from backend.dr.settlement import settle_due_events
from backend.settlement.models import BatchKind, SettlementBatch
from tests.fixtures.dr_chain import BUDGET, COLLATERAL, DrWorld, build_dr_world

INCENTIVE = 720_000  # 4 x 600 Wh credited = 2.4 kWh x 300,000
PENALTY = 300_000  # 4 x 500 Wh short = 2 kWh x 150,000; only COLLATERAL can be taken


class Crash(BaseException):
    """A worker killed mid-flight (not an Exception: nothing may catch it)."""


@pytest.fixture
def world(any_market) -> DrWorld:
    """On PostgreSQL and on the embedded SQLite file `make run` uses."""
    return build_dr_world(any_market)


def settle(world: DrWorld, now: int):
    market = world.market
    with market.session() as session:
        return settle_due_events(session, market.ctx, market.locks, market.settings, now=now)


def rows(world: DrWorld) -> dict[str, DrSettlement]:
    with world.market.session() as session:
        return {r.address: r for r in session.exec(select(DrSettlement)).all()}


def after_deadline(world: DrWorld) -> int:
    return world.end + world.market.settings.dr_missing_data_deadline_s


def assert_paid_once(world: DrWorld) -> None:
    f = world.dr.functions
    logs = world.settled_logs()
    assert sorted((log["args"]["participant"], log["args"]["incentive"]) for log in logs) == sorted(
        [(world.delivering.address, INCENTIVE), (world.short.address, 0)]
    )
    assert f.balanceOf(world.delivering.address).call() == INCENTIVE
    assert f.collateralOf(bytes32_id(world.program_id), world.short.address).call() == 0
    assert f.programInfo(bytes32_id(world.program_id)).call()[2] == BUDGET - INCENTIVE + COLLATERAL
    assert world.conserved()


def test_event_settled_once_from_verified_readings(world):
    # ended, but the short participant's event intervals have no verified reading yet: wait
    (report,) = settle(world, world.end + world.market.settings.dr_settlement_delay_s)
    assert report.waiting and rows(world) == {}

    (report,) = settle(world, after_deadline(world))
    assert (report.settled, report.failed, report.unfunded) == (2, 0, False)
    found = rows(world)
    delivering = found[world.delivering.address.lower()]
    short = found[world.short.address.lower()]
    away = found[world.away.address.lower()]
    assert (delivering.credited_wh, delivering.incentive, delivering.penalty) == (
        2_400,
        INCENTIVE,
        0,
    )
    assert (short.shortfall_wh, short.incentive, short.penalty, short.data_missing) == (
        2_000,
        0,
        PENALTY,
        True,
    )
    assert delivering.status == short.status == DrSettlementStatus.SETTLED
    assert delivering.settled_tx and delivering.settled_tx == short.settled_tx  # one batch
    assert away.status == DrSettlementStatus.NOTHING_DUE and away.settled_tx is None
    penalty_log = next(
        log for log in world.settled_logs() if log["args"]["participant"] == world.short.address
    )
    assert (penalty_log["args"]["penaltyOwed"], penalty_log["args"]["penaltyCharged"]) == (
        PENALTY,
        COLLATERAL,
    )
    assert_paid_once(world)

    # a duplicated task sends nothing
    assert settle(world, after_deadline(world) + 60) == []
    assert_paid_once(world)

    # the participant pulls its incentive; tokens still conserved
    workload = world.market.devnet.workload
    before = workload.c.token.functions.balanceOf(world.delivering.address).call()
    workload.tx(world.delivering, world.dr.functions.withdraw())
    after = workload.c.token.functions.balanceOf(world.delivering.address).call()
    assert after - before == INCENTIVE and world.conserved()


def test_crash_after_broadcast_before_commit_does_not_pay_twice(world, monkeypatch):
    def killed(*args, **kwargs):
        raise Crash

    # the worker dies right after broadcasting: the outcome never reaches the database
    monkeypatch.setattr(settlement_chain, "resolve_batch", killed)
    with pytest.raises(Crash):
        settle(world, after_deadline(world))
    monkeypatch.undo()
    assert {r.status for r in rows(world).values()} == {
        DrSettlementStatus.SUBMITTED,
        DrSettlementStatus.NOTHING_DUE,
    }
    assert len(world.settled_logs()) == 2  # mined: the chain paid already

    (report,) = settle(world, after_deadline(world))
    assert report.settled == 0 and report.already_settled == 0  # recovered, not re-sent
    assert {r.status for r in rows(world).values()} == {
        DrSettlementStatus.SETTLED,
        DrSettlementStatus.NOTHING_DUE,
    }
    assert_paid_once(world)


def test_crash_before_broadcast_resends_the_same_transaction(world, monkeypatch):
    def killed(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(settlement_chain, "broadcast", killed)
    with pytest.raises(Crash):
        settle(world, after_deadline(world))
    monkeypatch.undo()
    assert world.settled_logs() == []  # logged, never sent
    with world.market.session() as session:
        (logged,) = session.exec(
            select(SettlementBatch).where(SettlementBatch.kind == BatchKind.DR_SETTLE)
        ).all()

    settle(world, after_deadline(world))
    found = rows(world)
    assert found[world.delivering.address.lower()].settled_tx == logged.tx_hash  # same bytes
    assert_paid_once(world)


def test_lost_status_is_recovered_from_the_contract(world):
    settle(world, after_deadline(world))
    with world.market.session() as session:  # as if the SETTLED commit were lost
        for row in session.exec(select(DrSettlement)).all():
            if row.status == DrSettlementStatus.SETTLED:
                row.status, row.batch_id = DrSettlementStatus.PENDING, None
                session.add(row)
        session.commit()
    (report,) = settle(world, after_deadline(world))
    assert (report.settled, report.already_settled) == (0, 2)
    assert {r.status for r in rows(world).values()} == {
        DrSettlementStatus.CLOSED,
        DrSettlementStatus.NOTHING_DUE,
    }
    assert_paid_once(world)


def test_a_program_not_escrowed_by_its_operator_is_not_settled(market):
    world = build_dr_world(market)
    with market.session() as session:  # another account now operates the program
        program = session.get(DrProgram, world.program_id)
        other = next(p for p in market.devnet.workload.people if p.address != world.utility.address)
        program.operator_id = (
            session.exec(select(Account).where(Account.address == other.address.lower())).one().id
        )
        session.add(program)
        session.commit()
    (report,) = settle(world, after_deadline(world))
    assert report.unfunded and report.settled == 0
    assert world.settled_logs() == []
    assert world.conserved()
