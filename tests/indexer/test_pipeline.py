"""The backfill's fetcher thread: batches in order, at most `depth` ahead, errors to the writer."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from indexer.pipeline import Batch, Prefetcher, paused_gc


def header(number: int) -> dict:
    return {"number": hex(number), "hash": f"0x{number:064x}", "timestamp": "0x1"}


class Producer:
    """Ranges of `span` blocks; counts calls; fails at `fail_at` if set."""

    def __init__(self, span: int = 10, fail_at: int | None = None):
        self.span, self.fail_at, self.calls = span, fail_at, 0

    def __call__(self, from_block: int, final_head: int) -> Batch:
        self.calls += 1
        if from_block == self.fail_at:
            raise RuntimeError(f"node down at {from_block}")
        to_block = min(from_block + self.span - 1, final_head)
        return Batch(from_block, to_block, [], header(to_block), [])


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_batches_come_in_order_up_to_the_final_head():
    prefetcher = Prefetcher(Producer(span=10), start=5, final_head=42, depth=2)
    ranges = []
    while not prefetcher.exhausted:
        batch = prefetcher.take()
        ranges.append((batch.from_block, batch.to_block))
    assert ranges == [(5, 14), (15, 24), (25, 34), (35, 42)]
    assert prefetcher.expected == 43


def test_the_fetcher_stays_at_most_depth_batches_ahead():
    producer = Producer(span=1)
    prefetcher = Prefetcher(producer, start=1, final_head=1_000, depth=2)
    try:
        wait_for(lambda: producer.calls >= 3)
        time.sleep(0.3)
        # two batches queued and a third one produced, waiting for room
        assert producer.calls == 3
        prefetcher.take()
        wait_for(lambda: producer.calls == 4)
    finally:
        prefetcher.stop()


def test_a_fetch_error_reaches_the_writer_after_the_batches_before_it():
    prefetcher = Prefetcher(Producer(span=10, fail_at=21), start=1, final_head=100)
    assert prefetcher.take().to_block == 10
    assert prefetcher.take().to_block == 20
    with pytest.raises(RuntimeError, match="node down at 21"):
        prefetcher.take()
    assert prefetcher.expected == 21  # the writer restarts from its cursor


def test_stop_ends_the_thread():
    before = {t.ident for t in threading.enumerate()}
    prefetcher = Prefetcher(Producer(span=1), start=1, final_head=10**9, depth=1)
    prefetcher.stop()
    wait_for(lambda: {t.ident for t in threading.enumerate()} <= before)


def test_paused_gc_restores_the_collector():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
