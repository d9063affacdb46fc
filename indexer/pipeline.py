"""The backfill's fetch stage on a thread of its own: it fetches, parses and decodes the next
block ranges while the writer stores the current one, through a bounded queue.

Only final blocks go through it (no reorg can replace them), so a range fetched ahead stays
valid. The writer still commits each range's rows with the cursor in one transaction, and
takes a range only if it starts right after its cursor: on any mismatch (the cursor moved,
a reorg, a restart) the pipeline is dropped and started again from the cursor. The time the
writer spends waiting for PostgreSQL and the fetcher for the node (both release the GIL)
overlaps; Python work of the two stages still shares one core.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from indexer.fetch import Batch

__all__ = ["Batch", "Prefetcher", "paused_gc"]

Produce = Callable[[int, int], Batch]  # (first block, last final block) → the next batch


class Prefetcher:
    """Runs `produce` from `start` up to `final_head` on a daemon thread, at most `depth`
    batches ahead of `take`. An exception in `produce` is raised by the `take` that reaches it,
    and ends the thread."""

    def __init__(self, produce: Produce, *, start: int, final_head: int, depth: int = 2):
        self.final_head = final_head
        self.expected = start  # the first block of the batch `take` returns next
        self._produce = produce
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(start,), name="backfill-fetch", daemon=True
        )
        self._thread.start()

    @property
    def exhausted(self) -> bool:
        return self.expected > self.final_head

    def take(self) -> Batch:
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.stop()
            raise item
        self.expected = item.to_block + 1
        return item

    def stop(self) -> None:
        self._stopped.set()

    def _run(self, block: int) -> None:
        while block <= self.final_head and not self._stopped.is_set():
            try:
                batch = self._produce(block, self.final_head)
            except Exception as exc:  # handed to the writer, which decides
                self._put(exc)
                return
            if not self._put(batch) or batch.end_header is None:
                return
            block = batch.to_block + 1

    def _put(self, item: Batch | BaseException) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for one backfill batch (restored after).

    A batch allocates some 10 objects per log and keeps them alive until its commit; the
    collector's generation thresholds then trigger full passes over them again and again
    (half the batch's time in the profile). Nothing in a batch forms reference cycles that
    outlive it, and the collector catches up once the batch is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
