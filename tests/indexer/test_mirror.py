"""After a random workload, every derived table equals what the contracts report."""

from sqlalchemy import func, select

from indexer.models import ChainEvent, OutboxMessage
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, chain_log_count


def test_mirror_equals_chain_on_postgresql(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(80)
    indexer = make_indexer(fresh_pg_url, finality_depth=8, fetch_process=True)  # end to end
    catch_up(indexer)
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["trades"] > 5 and counts["certificates"] > 5 and counts["claims"] > 0
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)

    devnet.workload.run(20)  # live mode continues from the cursor
    catch_up(indexer)
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)


def test_mirror_equals_chain_on_sqlite(devnet, make_indexer, tmp_path):
    devnet.workload.run(30)
    from backend.core.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    upgrade(url)
    indexer = make_indexer(url, finality_depth=4, initial_range=3)
    catch_up(indexer)
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)


def test_stepping_again_writes_nothing_twice(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(15)
    indexer = make_indexer(fresh_pg_url)
    catch_up(indexer)
    with indexer.engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(ChainEvent)).scalar_one()
    assert indexer.step() == 0
    with indexer.engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(ChainEvent)).scalar_one()
    assert before == after == chain_log_count(devnet.workload, devnet.deployment.block_number)


def test_outbox_announces_trades_and_issuance(devnet, make_indexer, fresh_pg_url):
    devnet.workload.signed_fill()
    devnet.workload.issue(batch=3)
    indexer = make_indexer(fresh_pg_url)
    catch_up(indexer)
    t = OutboxMessage.__table__
    with indexer.engine.connect() as connection:
        messages = connection.execute(select(t.c.topic, t.c.payload).order_by(t.c.id)).all()
    topics = [topic for topic, _ in messages]
    assert topics.count("trade.created") == 1
    assert topics.count("certificate.issued") == 1  # one message per issuance transaction
    issued = next(payload for topic, payload in messages if topic == "certificate.issued")
    assert len(issued["certificate_ids"]) == 3


def test_outbox_is_published_to_redis_once(devnet, make_indexer, fresh_pg_url, redis_client):
    from indexer.outbox import OutboxPublisher, RedisStreamSink
    from tests.fixtures.services import TEST_REDIS_URL

    devnet.workload.signed_fill()
    devnet.workload.signed_fill()
    indexer = make_indexer(fresh_pg_url)
    catch_up(indexer)  # no publisher yet: messages wait in the table
    sink = RedisStreamSink(TEST_REDIS_URL, stream="gridledger:test-outbox")
    publisher = OutboxPublisher(indexer.engine, sink)
    assert publisher.publish_pending() == 2
    assert publisher.publish_pending() == 0  # published rows are not sent again
    entries = redis_client.xrange("gridledger:test-outbox")
    assert [fields[b"topic"] for _, fields in entries] == [b"trade.created", b"trade.created"]
    with indexer.engine.connect() as connection:
        unpublished = connection.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None))
        ).scalar_one()
    assert unpublished == 0
