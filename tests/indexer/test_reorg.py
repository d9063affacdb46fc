"""Reorgs on a real Anvil: same-height replacement, shorter chain, too deep, new genesis."""

import pytest
from sqlalchemy import func, select

from backend.chain.anvil import start_anvil
from indexer.models import ChainEvent, OutboxMessage, Trade
from indexer.reorg import ReorgTooDeep
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, chain_log_count


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def mint_request(devnet, to: str, amount: int) -> dict:
    token = devnet.workload.c.token
    return {
        "from": devnet.workload.admin.address,
        "to": token.address,
        "data": token.encode_abi("mint", [to, amount]),
        "gas": 200_000,
    }


def test_same_height_reorg_replaces_blocks_with_other_transactions(
    devnet, make_indexer, fresh_pg_url
):
    workload = devnet.workload
    workload.run(25)
    for _ in range(3):
        workload.signed_fill()  # trades in the blocks about to be replaced
    indexer = make_indexer(fresh_pg_url, finality_depth=16)
    catch_up(indexer)
    trades_before = count(indexer.engine, Trade)
    head = devnet.w3.eth.block_number
    stranger = workload.people[0].address
    devnet.node.request(
        "anvil_reorg",
        [3, [[mint_request(devnet, stranger, 777), 0], [mint_request(devnet, stranger, 888), 2]]],
    )
    workload.nonces.clear()
    assert devnet.w3.eth.block_number == head

    catch_up(indexer)
    assert indexer.metrics.reorgs == 1
    assert count(indexer.engine, Trade) == trades_before - 3
    counts = assert_mirror_equals_chain(indexer.engine, workload)
    assert counts["events"] == chain_log_count(workload, devnet.deployment.block_number)
    with indexer.engine.connect() as connection:
        topics = connection.execute(select(OutboxMessage.__table__.c.topic)).scalars().all()
    assert "chain.reorg" in topics


def test_revert_to_a_shorter_chain_then_new_blocks(devnet, make_indexer, fresh_pg_url):
    workload = devnet.workload
    workload.run(10)
    snapshot = devnet.node.request("evm_snapshot")
    workload.run(15)
    indexer = make_indexer(fresh_pg_url, finality_depth=64)
    catch_up(indexer)
    events_long = count(indexer.engine, ChainEvent)

    devnet.node.request("evm_revert", [snapshot])
    workload.nonces.clear()
    workload.open_trades.clear()
    workload.signed_fill()
    workload.issue(batch=2)
    catch_up(indexer)
    assert indexer.metrics.reorgs == 1
    counts = assert_mirror_equals_chain(indexer.engine, workload)
    assert (
        counts["events"] == chain_log_count(workload, devnet.deployment.block_number) < events_long
    )


def test_reorg_deeper_than_finality_halts_without_touching_the_mirror(
    devnet, make_indexer, fresh_pg_url
):
    workload = devnet.workload
    workload.run(10)
    indexer = make_indexer(fresh_pg_url, finality_depth=3)
    catch_up(indexer)
    events = count(indexer.engine, ChainEvent)
    devnet.node.request("anvil_rollback", [8])
    devnet.node.request("anvil_mine", [12])
    with pytest.raises(ReorgTooDeep, match="deeper than the finality depth"):
        indexer.step()
    assert count(indexer.engine, ChainEvent) == events


def test_chain_restarted_from_new_genesis_is_detected(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(5)
    indexer = make_indexer(fresh_pg_url)
    catch_up(indexer)
    port = int(devnet.node.rpc_url.rsplit(":", 1)[1])
    devnet.node.stop()
    replacement = start_anvil(port=port, extra_args=("--timestamp", "1000"))
    try:
        replacement.request("anvil_mine", [200])
        with pytest.raises(ReorgTooDeep, match="new genesis"):
            indexer.step()
    finally:
        replacement.stop()
