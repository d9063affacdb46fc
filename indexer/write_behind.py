"""The backfill's database writes on a thread of their own, in order, so that the writer's
Python (applying handlers to batch N, taking batch N+1 from the fetch stage) runs while
PostgreSQL parses batch N's COPY data and flushes its commit.

A `WriteBehind` is one transaction's queue of writes on one connection: `submit` appends a
write (a COPY, a statement, the commit), `wait` returns when all are done and raises the first
error. After an error the rest are skipped (the commit among them), so the transaction rolls
back as it would have inline. Nothing else may use the connection until `wait` has returned:
reads in between call `wait` first (`MirrorState`'s `before_read`).

Off by default (`GRIDLEDGER_INDEXER_WRITE_BEHIND`): it pays only when a core is idle while
the writer waits for PostgreSQL. On the 2-core machine saturated by other jobs it measured no
gain (the write thread then waits for the GIL after each socket wait, up to the 5 ms switch
interval), so it is left to be measured on a quiet machine before it becomes the default.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class WriteBehind:
    """`executor`: one thread (writes run in submission order); None: each write runs inline
    in `submit`, which raises its error (the indexer's default, `indexer_write_behind`)."""

    def __init__(self, executor: ThreadPoolExecutor | None):
        self._executor = executor
        self._pending: list[Future[None]] = []
        self._failed = False

    @property
    def behind(self) -> bool:
        return self._executor is not None

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        if self._executor is None:
            write(*args)
            return
        self._pending.append(self._executor.submit(self._run, write, args))

    def _run(self, write: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._failed:
            return
        try:
            write(*args)
        except BaseException:
            self._failed = True
            raise

    def wait(self) -> None:
        """Block until every write submitted so far is done; raise the first error."""
        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for future in pending:
            exc = future.exception()  # waits
            if exc is not None and error is None:
                error = exc
        if error is not None:
            raise error

    def abandon(self) -> None:
        """Skip the writes not started yet and wait for the one running (errors dropped):
        the caller rolls the transaction back."""
        self._failed = True
        pending, self._pending = self._pending, []
        for future in pending:
            future.exception()
