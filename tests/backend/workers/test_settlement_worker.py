"""A real Celery worker (with beat) on its own Redis settles every trade exactly once, through
SIGKILLs mid-batch, a Redis restart and readings sent twice and out of order."""

from __future__ import annotations

from sqlmodel import func, select

from backend.settlement.models import Reconciliation, SettlementBatch
from tests.fixtures.workers import wait_for

BOOT_S = 60  # a worker process starting on a loaded machine, then its first beat
LOCK_TIMEOUT_S = 3  # how long a killed worker's locks keep the next one waiting


def in_mempool(w3, tx_hash: str) -> bool:
    """Whether the node knows the transaction (pending, with automine off)."""
    return w3.provider.make_request("eth_getTransactionByHash", [tx_hash])["result"] is not None


def token_total(market, accounts) -> int:
    token = market.devnet.workload.c.token
    return sum(token.functions.balanceOf(a).call() for a in accounts)


def test_worker_killed_mid_batch_settles_each_trade_once(market, own_redis, worker_factory):
    workload = market.devnet.workload
    w3 = market.devnet.w3
    for _ in range(10):
        workload.signed_fill()
    market.catch_up()
    trades = market.open_trades()
    assert len(trades) == 10
    workload.advance(3 * 900 + 120)
    exports = {}
    for n, trade in enumerate(trades):
        exports[(trade.seller_meter, trade.delivery_start)] = [0, 900, 2_500, 1_700][n % 4]
    items = list(exports.items())
    first = market.meter_readings(dict(items[::2]))
    market.meter_readings(dict(reversed(items)))  # every reading again, out of order
    assert market.meter_readings(dict(items)).duplicate == len(items)
    assert first.accepted == len(items[::2])

    holders = [p.address for p in workload.people] + [market.ctx.market.address]
    tokens_before = token_total(market, holders)
    payments = {t.trade_id: t.payment for t in trades}

    w3.provider.make_request("evm_setAutomine", [False])  # transactions wait: kills land mid-batch
    worker = worker_factory(
        GRIDLEDGER_DATABASE_URL=market.database_url,
        GRIDLEDGER_REDIS_URL=own_redis.url,
        GRIDLEDGER_RPC_URL=market.devnet.node.rpc_url,
        GRIDLEDGER_DATA_DIR=market.settings.data_dir,
        GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S=0.5,
        GRIDLEDGER_SETTLEMENT_BATCH_SIZE=3,
        GRIDLEDGER_SETTLEMENT_LOCK_TIMEOUT_S=LOCK_TIMEOUT_S,
        GRIDLEDGER_SETTLEMENT_GATE_DELAY_S=60,
        GRIDLEDGER_SETTLEMENT_MISSING_DATA_DEADLINE_S=1_800,
    )

    def signed_batches():
        with market.session() as session:
            return session.exec(
                select(SettlementBatch).where(
                    SettlementBatch.kind == "settle", SettlementBatch.status == "signed"
                )
            ).all()

    # 1. killed after logging its first batch but before broadcasting it (the kill may land
    # either side of the broadcast: the node forgets it, as if it had never been sent)
    worker.start()
    first_batch = wait_for(signed_batches, BOOT_S, "a first logged batch", worker)[0]
    worker.kill()
    w3.provider.make_request("anvil_dropTransaction", [first_batch.tx_hash])
    own_redis.restart()  # queued tasks are lost; beat re-issues them

    # 2. restarted: re-broadcasts the logged bytes (same hash), sends the next batch once that
    # one is mined, and is killed again after logging it
    worker.start()
    wait_for(lambda: in_mempool(w3, first_batch.tx_hash), BOOT_S, "the re-broadcast", worker)
    w3.provider.make_request("evm_mine", [])
    second_batch = wait_for(
        lambda: [b for b in signed_batches() if b.id != first_batch.id],
        BOOT_S,
        "a second batch",
        worker,
    )[0]
    worker.kill()

    # 3. the second batch was broadcast before the kill and is mined while no worker runs;
    # restarted with automine back (after the dead worker's locks expire): finds it mined,
    # finishes the rest
    w3.provider.make_request("eth_sendRawTransaction", ["0x" + second_batch.raw_tx])  # or known
    w3.provider.make_request("evm_setAutomine", [True])
    w3.provider.make_request("evm_mine", [])
    worker.start()

    def all_settled():
        with market.session() as session:
            return (
                session.exec(
                    select(func.count())
                    .select_from(Reconciliation)
                    .where(Reconciliation.status.in_(("settled", "closed")))
                ).one()
                == 10
            )

    wait_for(all_settled, BOOT_S + LOCK_TIMEOUT_S + 30, "every trade settled", worker)
    worker.kill()

    events = market.ctx.market.events.TradeSettled().get_logs(from_block=0)
    per_trade: dict[int, list] = {}
    for event in events:
        per_trade.setdefault(event["args"]["tradeId"], []).append(event["args"])
    assert sorted(per_trade) == sorted(payments) and all(len(v) == 1 for v in per_trade.values())
    with market.session() as session:
        records = {r.trade_id: r for r in session.exec(select(Reconciliation)).all()}
        mined = session.exec(
            select(func.sum(SettlementBatch.items)).where(
                SettlementBatch.kind == "settle", SettlementBatch.status == "mined"
            )
        ).one()
        outcomes = [session.get(SettlementBatch, b.id).status for b in (first_batch, second_batch)]
        statuses = session.exec(
            select(SettlementBatch.status).where(SettlementBatch.kind == "settle")
        ).all()
    assert mined == 10  # no batch settled anything twice, none was lost
    assert outcomes == ["mined", "mined"]  # recovered from the log after the kills, not re-signed
    assert "signed" not in statuses
    for trade_id, (args,) in per_trade.items():
        record = records[trade_id]
        assert record.status == "settled"
        assert (args["deliveredWh"], args["sellerPayout"], args["penalty"]) == (
            record.delivered_wh,
            record.expected_payout,
            record.expected_penalty,
        )
        assert args["sellerPayout"] + args["buyerRefund"] == payments[trade_id]
    market_contract = market.ctx.market
    assert token_total(market, holders) == tokens_before
    assert market_contract.functions.totalEscrowed().call() == 0
    assert (
        market_contract.functions.totalWithdrawable().call()
        == workload.c.token.functions.balanceOf(market_contract.address).call()
    )


def test_duplicated_tasks_settle_once(market, own_redis, worker_factory):
    from celery import Celery

    workload = market.devnet.workload
    for _ in range(6):
        workload.signed_fill()
    market.catch_up()
    trades = market.open_trades()
    workload.advance(3 * 900 + 120)
    market.meter_readings({(t.seller_meter, t.delivery_start): 1_500 for t in trades})
    worker = worker_factory(
        GRIDLEDGER_DATABASE_URL=market.database_url,
        GRIDLEDGER_REDIS_URL=own_redis.url,
        GRIDLEDGER_RPC_URL=market.devnet.node.rpc_url,
        GRIDLEDGER_DATA_DIR=market.settings.data_dir,
        GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S=3_600,
        GRIDLEDGER_SETTLEMENT_BATCH_SIZE=2,
        GRIDLEDGER_SETTLEMENT_GATE_DELAY_S=60,
    )
    client = Celery(broker=own_redis.url)
    for _ in range(8):  # the same task, many times, before the worker even runs
        client.send_task("settlement.close_periods", queue="gridledger")
    worker.start()

    def settled():
        with market.session() as session:
            return session.exec(
                select(func.count())
                .select_from(Reconciliation)
                .where(Reconciliation.status == "settled")
            ).one() == len(trades)

    wait_for(settled, BOOT_S, "settlement by duplicated tasks", worker)
    wait_for(  # every duplicate has run (and found nothing left to send)
        lambda: worker.succeeded("settlement.close_periods") >= 8,
        BOOT_S,
        "the remaining duplicates",
        worker,
    )
    worker.kill()
    events = market.ctx.market.events.TradeSettled().get_logs(from_block=0)
    ids = [e["args"]["tradeId"] for e in events]
    assert sorted(ids) == sorted(t.trade_id for t in trades)  # once each
    with market.session() as session:
        mined = session.exec(
            select(func.sum(SettlementBatch.items)).where(SettlementBatch.status == "mined")
        ).one()
    assert mined == len(trades)
