"""The backfill's fetch worker process: batches in order and in time, errors and retries
reported to the parent, stale jobs dropped, no orphan whichever side dies, and the indexer
going on (another worker, or the thread) when the worker is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, cast

import pytest

from backend.core.config import PROJECT_ROOT
from backend.core.db import make_engine
from indexer.fetch import Fetched, Fetcher
from indexer.fetch_process import FetchProcess, WorkerDied
from indexer.handlers import Log
from indexer.rpc import RpcUnavailable
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, chain_log_count
from tests.indexer.test_faults import cursor_block, start_indexer_process

BIG = 2**255 + 7  # a uint256 beyond any machine integer


class FakeRpc:
    retries_done = 0


class FakeFetcher:
    """Ranges of `range` blocks with one log each; `retries` RPC retries per batch; fails
    at `fail_at`; waits `delay_s` per batch."""

    def __init__(self, fail_at: int | None = None, retries: int = 0, delay_s: float = 0.0):
        self.range, self.rpc = 10, FakeRpc()
        self.fail_at, self.retries, self.delay_s = fail_at, retries, delay_s

    def fetch(self, from_block: int, final_head: int) -> Fetched:
        time.sleep(self.delay_s)
        if from_block == self.fail_at:
            raise RpcUnavailable(f"node down at {from_block}")
        self.rpc.retries_done += self.retries
        to_block = min(from_block + self.range - 1, final_head)
        fields = (
            "RECRegistry",
            "TransferBatch",
            {"ids": [BIG, 1], "to": "0x" + "ab" * 20, "nested": {"ok": True}},
            "0x" + "cd" * 20,
            to_block,
            f"0x{to_block:064x}",
            1_700_000_000 + to_block,
            "0x" + "ef" * 32,
            3,
        )
        header = {"number": hex(to_block), "hash": f"0x{to_block:064x}", "timestamp": "0x1"}
        return from_block, to_block, [fields], header, b"copy bytes"


def worker_of(fetcher: FakeFetcher) -> FetchProcess:
    return FetchProcess(lambda: cast(Fetcher, fetcher))


def gone(pid: int, timeout_s: float = 10.0) -> bool:
    """Whether process `pid` is gone (or a zombie) within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            found += [int(c) for c in children.read().split()]
    return found


def test_batches_come_in_order_with_the_worker_retries_counted():
    worker = worker_of(FakeFetcher(retries=2))
    counted: list[int] = []
    worker.on_retries = counted.append
    try:
        assert worker.process.pid != os.getpid()
        job = worker.start(5, 42, range_=10, depth=2)
        batches = []
        while not job.exhausted:
            batches.append(job.take())
    finally:
        worker.close()
    assert [(b.from_block, b.to_block) for b in batches] == [(5, 14), (15, 24), (25, 34), (35, 42)]
    assert sum(counted) == 2 * 4
    first = batches[0].logs[0]
    assert isinstance(first, Log)
    assert first.args == {"ids": [BIG, 1], "to": "0x" + "ab" * 20, "nested": {"ok": True}}
    assert (first.block_number, first.log_index) == (14, 3)
    assert batches[0].event_records == b"copy bytes"
    assert not worker.alive


def test_the_worker_stays_at_most_depth_batches_ahead():
    worker = worker_of(FakeFetcher())
    try:
        job = worker.start(1, 10_000, range_=1, depth=2)
        time.sleep(0.5)
        assert worker._conn.poll()
        received = 0
        while worker._conn.poll(0.2):  # what it sent before any credit: `depth` batches
            worker._conn.recv_bytes()
            received += 1
        assert received == 2
        job.stop()
    finally:
        worker.close()


def test_a_fetch_error_reaches_the_writer_after_the_batches_before_it():
    worker = worker_of(FakeFetcher(fail_at=21))
    try:
        job = worker.start(1, 100, range_=10, depth=2)
        assert job.take().to_block == 10
        assert job.take().to_block == 20
        with pytest.raises(RpcUnavailable, match="node down at 21"):
            job.take()
        assert job.expected == 21  # the writer restarts from its cursor
        again = worker.start(21, 100, range_=10, depth=2)  # the same worker goes on
        with pytest.raises(RpcUnavailable):
            again.take()
    finally:
        worker.close()


def test_batches_of_a_cancelled_job_are_dropped():
    worker = worker_of(FakeFetcher(retries=1, delay_s=0.02))
    counted: list[int] = []
    worker.on_retries = counted.append
    try:
        old = worker.start(1, 1_000, range_=10, depth=2)
        assert old.take().from_block == 1
        old.stop()
        new = worker.start(501, 1_000, range_=10, depth=2)
        assert [new.take().from_block for _ in range(3)] == [501, 511, 521]
    finally:
        worker.close()
    assert sum(counted) >= 4  # the dropped batches' retries count too


def test_a_killed_worker_is_reported_not_waited_for():
    worker = worker_of(FakeFetcher(delay_s=60))
    try:
        job = worker.start(1, 100, range_=10, depth=2)
        os.kill(worker.process.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(WorkerDied):
            job.take()
        assert time.monotonic() - started < 5
    finally:
        worker.close()


def test_a_worker_forked_on_a_short_lived_thread_outlives_that_thread():
    """Linux ties PR_SET_PDEATHSIG to the forking thread: a worker forked on a thread that
    then ends must not be killed with it (it would be replaced after every such run)."""
    made: list[FetchProcess] = []
    thread = threading.Thread(target=lambda: made.append(worker_of(FakeFetcher())))
    thread.start()
    thread.join()
    (worker,) = made
    try:
        assert not gone(worker.process.pid, timeout_s=0.5)
        assert worker.alive
        job = worker.start(1, 100, range_=10, depth=2)
        assert [job.take().from_block for _ in range(2)] == [1, 11]
    finally:
        worker.close()
    assert not worker.alive


PARENT = textwrap.dedent(
    """
    import sys, threading, time
    from indexer.fetch_process import FetchProcess
    from tests.indexer.test_fetch_process import FakeFetcher
    made = []
    def make():
        made.append(FetchProcess(lambda: FakeFetcher(delay_s=0.05)))
    if sys.argv[1] == "thread":  # forked on a short-lived thread
        thread = threading.Thread(target=make)
        thread.start()
        thread.join()
    else:
        make()
    worker = made[0]
    job = worker.start(1, 10**9, range_=10, depth=2)
    job.take()
    print(worker.process.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("forked_on", ["main", "thread"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_worker_dies_with_its_parent(how, forked_on):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, forked_on],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        worker_pid = int(parent.stdout.readline())
        assert not gone(worker_pid, timeout_s=0.3)
        parent.send_signal(how)
        parent.wait(timeout=10)
        assert gone(worker_pid), f"worker {worker_pid} outlived its parent ({how.name})"
    finally:
        parent.kill()
        parent.wait()


def test_a_killed_worker_is_replaced_and_nothing_is_lost(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(30)
    for _ in range(4):
        devnet.workload.issue(batch=10)
    indexer = make_indexer(fresh_pg_url, finality_depth=2, initial_range=2, fetch_process=True)
    assert indexer.step() > 0
    first = indexer._worker
    assert first is not None and first.alive
    os.kill(first.process.pid, signal.SIGKILL)
    catch_up(indexer)
    second = indexer._worker
    assert indexer._worker_deaths == 1
    assert second is not None and second.alive and second.process.pid != first.process.pid
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)
    indexer.close()
    assert not second.alive


def test_the_thread_fetches_when_no_process_is_configured(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(20)
    indexer = make_indexer(fresh_pg_url, finality_depth=2, initial_range=2, fetch_process=False)
    catch_up(indexer)
    assert indexer._worker is None
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_indexer_process_leaves_no_worker_behind(devnet, fresh_pg_url, how):
    devnet.workload.run(40)
    engine = make_engine(fresh_pg_url)
    process = start_indexer_process(devnet, fresh_pg_url)
    try:
        deadline = time.monotonic() + 60
        workers: list[Any] = []
        while not workers and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            workers = children_of(process.pid) if cursor_block(engine) >= 0 else []
            time.sleep(0.05)
        assert workers, "the indexer started no fetch worker"
        process.send_signal(how)
        code = process.wait(timeout=30)
        assert code == (0 if how == signal.SIGTERM else -signal.SIGKILL)
        assert all(gone(pid) for pid in workers)
    finally:
        process.kill()
        process.wait()
        engine.dispose()
