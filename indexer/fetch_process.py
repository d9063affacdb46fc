"""The backfill's fetch stage in a process of its own, so that fetching, parsing and decoding
(half of the backfill's Python work) no longer shares the writer's GIL.

One worker per `Indexer`, forked on its first backfill and kept for its life (a fork shares
the modules already imported: ready in milliseconds, where a spawned interpreter would spend
seconds importing). It runs a `Fetcher` and sends each batch back over a pipe in a cheap form:
the logs as plain tuples, the `chain_events` rows as the bytes of their binary COPY, which the
writer sends to PostgreSQL as they are.

Protocol (parent → worker, pickled): `("start", generation, first block, final head, range,
depth)` begins a job: the worker produces batches from that block on, at most `depth` ahead
of the parent, which sends `("credit", generation)` for each batch it takes; `("cancel",
generation)` ends the job; `("exit",)` or the pipe closing ends the worker. Worker → parent
(marshal): `("batch" | "error", generation, retries, range, body)`; a message of an earlier
generation (a job cancelled after the cursor moved) is dropped on arrival, its retries still
counted. So exactly-once, reorg safety and restarts stay the writer's, as with the thread: it
stores a batch only if it starts right after its cursor, with the cursor, in one transaction.

No orphan: the worker dies with its parent (`PR_SET_PDEATHSIG` on Linux, plus a check of its
parent's pid between batches and the pipe's end-of-file), ignores SIGINT (the parent stops
it), and takes SIGTERM's default. Linux ties `PR_SET_PDEATHSIG` to the *thread* that forked,
not to the process: a worker forked on a short-lived thread (an indexer run on one) would be
killed when that thread ends. So it is forked on the main thread or else on a daemon thread
kept for the life of the process (`_fork_on_lasting_thread`). The parent notices a dead
worker within `POLL_S` (`WorkerDied`) and its `close` waits for, then terminates, then kills
the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import marshal
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from indexer.fetch import Batch, Fetcher, batch_of
from indexer.pipeline import paused_gc

log = logging.getLogger("gridledger.indexer")

POLL_S = 0.2  # how often a parent waiting for a batch checks that the worker lives
_PR_SET_PDEATHSIG = 1


class WorkerDied(Exception):
    """The fetch worker exited or its pipe broke; the indexer starts another one."""


def available() -> bool:
    """Whether this platform can fork the worker."""
    return "fork" in multiprocessing.get_all_start_methods()


class FetchProcess:
    """The parent's handle on one fetch worker. `make_fetcher` runs in the worker."""

    def __init__(self, make_fetcher: Callable[[], Fetcher]):
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe(duplex=True)
        self.process: BaseProcess = context.Process(
            target=_serve,
            args=(child, self._conn, make_fetcher, os.getpid()),
            name="gridledger-fetch",
            daemon=True,  # also terminated by multiprocessing when the parent exits normally
        )
        _fork_on_lasting_thread(self.process.start)
        child.close()
        self._generation = 0
        self.range: int | None = None  # the worker's range after its last batch
        self.on_retries: Callable[[int], None] = lambda count: None

    def start(self, start: int, final_head: int, *, range_: int, depth: int) -> ProcessJob:
        self._generation += 1
        self._send(("start", self._generation, start, final_head, range_, depth))
        return ProcessJob(self, self._generation, start, final_head)

    def take(self, job: ProcessJob) -> Batch:
        """The job's next batch (or its error), skipping messages of earlier jobs."""
        while True:
            kind, generation, retries, range_, body = self._receive()
            if retries:
                self.on_retries(retries)
            if generation != job.generation:
                continue
            self.range = range_
            if kind == "error":
                raise pickle.loads(body)
            self._send(("credit", generation))
            return batch_of(body)

    def cancel(self, job: ProcessJob) -> None:
        with contextlib.suppress(WorkerDied):
            self._send(("cancel", job.generation))

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the worker: asked first, then SIGTERM, then SIGKILL."""
        with contextlib.suppress(OSError):
            self._conn.send(("exit",))
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:  # BrokenPipeError: the worker is gone
            raise WorkerDied(f"fetch worker {self.process.pid}: {exc}") from exc

    def _receive(self) -> tuple[Any, ...]:
        try:
            while not self._conn.poll(POLL_S):
                if not self.process.is_alive():
                    break
            return _load(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise WorkerDied(
                f"fetch worker {self.process.pid} exited ({self.process.exitcode})"
            ) from exc


class ProcessJob:
    """One run of the worker from `start` up to `final_head`: what `pipeline.Prefetcher` is
    for the thread (same `expected`, `exhausted`, `take`, `stop`)."""

    def __init__(self, owner: FetchProcess, generation: int, start: int, final_head: int):
        self._owner = owner
        self.generation = generation
        self.expected = start
        self.final_head = final_head

    @property
    def exhausted(self) -> bool:
        return self.expected > self.final_head

    def take(self) -> Batch:
        batch = self._owner.take(self)
        self.expected = batch.to_block + 1
        return batch

    def stop(self) -> None:
        self._owner.cancel(self)


_ForkRequest = tuple[Callable[[], None], "Future[None]"]
_fork_requests: queue.SimpleQueue[_ForkRequest] | None = None
_fork_lock = threading.Lock()


def _fork_on_lasting_thread(start: Callable[[], None]) -> None:
    """Run `start` (which forks) on a thread that lives as long as the process: this one if
    it is the main thread, else the daemon `gridledger-forker` thread, made on first use.
    The child's `PR_SET_PDEATHSIG` then fires when the process ends, not when the calling
    thread does."""
    if threading.current_thread() is threading.main_thread():
        start()
        return
    global _fork_requests
    with _fork_lock:
        if _fork_requests is None:
            _fork_requests = queue.SimpleQueue()
            threading.Thread(
                target=_serve_forks, args=(_fork_requests,), name="gridledger-forker", daemon=True
            ).start()
        requests = _fork_requests
    done: Future[None] = Future()
    requests.put((start, done))
    done.result()


def _serve_forks(requests: queue.SimpleQueue[_ForkRequest]) -> None:
    while True:
        start, done = requests.get()
        try:
            start()
        except BaseException as exc:  # handed to the thread that asked
            done.set_exception(exc)
        else:
            done.set_result(None)


# ------------------------------------------------------------------------- the worker


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL when the parent dies (Linux), whatever kills it: the signal follows the thread
    that forked, which `_fork_on_lasting_thread` keeps for the life of the process."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # it died before the call above
        os._exit(0)


def _serve(
    conn: Connection,
    parent_end: Connection,
    make_fetcher: Callable[[], Fetcher],
    parent_pid: int,
) -> None:
    parent_end.close()  # else the pipe would not report the parent's end closing
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
    fetcher = make_fetcher()
    worker = _Worker(conn, fetcher, parent_pid)
    with contextlib.suppress(EOFError, OSError):  # the parent is gone
        worker.run()


class _Worker:
    def __init__(self, conn: Connection, fetcher: Fetcher, parent_pid: int):
        self.conn = conn
        self.fetcher = fetcher
        self.parent_pid = parent_pid
        self.generation = 0
        self.next_block = 0
        self.final_head = -1
        self.credits = 0
        self.reported_retries = 0

    def run(self) -> None:
        while True:
            busy = self.credits > 0 and self.next_block <= self.final_head
            if not busy or self.conn.poll():
                if not self.handle(self.conn.recv()):
                    return
                continue
            if os.getppid() != self.parent_pid:
                return
            self.produce_one()

    def handle(self, message: tuple[Any, ...]) -> bool:
        kind = message[0]
        if kind == "exit":
            return False
        if kind == "start":
            _, self.generation, self.next_block, self.final_head, range_, self.credits = message
            self.fetcher.range = range_
        elif message[1] == self.generation:
            if kind == "credit":
                self.credits += 1
            elif kind == "cancel":
                self.final_head = -1
        return True

    def produce_one(self) -> None:
        try:
            with paused_gc():
                fetched = self.fetcher.fetch(self.next_block, self.final_head)
        except Exception as exc:  # the writer decides; this job ends
            self.final_head = -1
            self.send("error", _picklable(exc))
            return
        self.credits -= 1
        self.next_block = fetched[1] + 1
        if fetched[3] is None:  # no end header: the writer retries from its cursor
            self.final_head = -1
        self.send("batch", fetched)

    def send(self, kind: str, body: Any) -> None:
        retries = self.fetcher.rpc.retries_done
        message = (kind, self.generation, retries - self.reported_retries, self.fetcher.range, body)
        self.conn.send_bytes(_dump(message))
        self.reported_retries = retries


def _dump(message: tuple[Any, ...]) -> bytes:
    """marshal: a batch is plain values (tuples, dicts, str, int, bytes), and marshal writes
    and reads them in about half pickle's time; pickle for anything else."""
    try:
        return b"M" + marshal.dumps(message)
    except ValueError:
        return b"P" + pickle.dumps(message)


def _load(data: bytes) -> tuple[Any, ...]:
    view = memoryview(data)[1:]
    message: tuple[Any, ...] = marshal.loads(view) if data[:1] == b"M" else pickle.loads(view)
    return message


def _picklable(exc: BaseException) -> bytes:
    try:
        return pickle.dumps(exc)
    except Exception:  # an exception holding something unpicklable
        return pickle.dumps(RuntimeError(f"fetch worker: {exc!r}"))
