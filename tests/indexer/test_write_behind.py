"""The backfill's writes on a thread of their own: in order, the first error raised and the
rest (the commit among them) skipped; and an indexer with it on mirrors the chain exactly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from indexer.write_behind import WriteBehind
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, chain_log_count


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def test_writes_run_in_order_on_another_thread(executor):
    done: list[tuple[int, str]] = []
    writes = WriteBehind(executor)
    for i in range(50):
        writes.submit(lambda i=i: done.append((i, threading.current_thread().name)))
    writes.wait()
    assert [i for i, _ in done] == list(range(50))
    assert {name for _, name in done} != {threading.current_thread().name}


def test_after_an_error_the_rest_is_skipped_and_wait_raises_it(executor):
    done: list[str] = []

    def fail() -> None:
        raise ValueError("copy failed")

    writes = WriteBehind(executor)
    writes.submit(done.append, "rows")
    writes.submit(fail)
    writes.submit(done.append, "commit")
    with pytest.raises(ValueError, match="copy failed"):
        writes.wait()
    assert done == ["rows"]


def test_inline_writes_run_in_submit_and_raise_there():
    done: list[str] = []
    writes = WriteBehind(None)
    writes.submit(done.append, "rows")
    assert done == ["rows"] and not writes.behind
    with pytest.raises(ZeroDivisionError):
        writes.submit(lambda: 1 / 0)


def test_a_backfill_with_writes_behind_mirrors_the_chain(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(30)
    for _ in range(4):
        devnet.workload.issue(batch=10)
    indexer = make_indexer(fresh_pg_url, finality_depth=2, initial_range=2, write_behind=True)
    catch_up(indexer)
    assert indexer._writer is not None  # the write thread was used
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)
    indexer.close()
