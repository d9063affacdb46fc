"""The indexer's flow, one step at a time:

1. find relevant elements — check the cursor block still has our hash (else rewind), then
   take logs for the next range: a wide `eth_getLogs` range while backfilling final blocks
   (fetched and decoded ahead on a thread of its own, `indexer.pipeline`), block by block
   (with parent-hash continuity) near the head;
2. process elements — decode, apply handlers to the derived tables in memory, flush in bulk;
3. advance the cursor — in the same transaction as the rows, so a crash at any point
   resumes from the cursor with nothing duplicated and nothing missing.

Blocks deeper than `finality_depth` are final: processed without undo entries, and a reorg
reaching below them halts the indexer (`ReorgTooDeep`) instead of rewriting history.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import starmap

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import table_of
from backend.core.utc import utc_now
from indexer import fetch_process
from indexer.bulk import bulk_insert, insert_copy, insert_records
from indexer.decoder import LogDecoder
from indexer.fetch import (
    EVENT_COLUMNS,
    Batch,
    EventRows,
    Fetcher,
    LogFields,
    decode_fields,
    event_records,
)
from indexer.fetch_process import FetchProcess, ProcessJob, WorkerDied
from indexer.handlers import Log, handler_for, load_handlers
from indexer.mirror import Key, MirrorState
from indexer.models import Block, ChainEvent, IndexerCursor, UndoEntry
from indexer.outbox import OutboxPublisher
from indexer.pipeline import Prefetcher, paused_gc
from indexer.reorg import ReorgTooDeep, find_fork_point, rewind
from indexer.rpc import JsonObject, RangeTooLarge, RpcClient, RpcUnavailable
from indexer.write_behind import WriteBehind

log = logging.getLogger("gridledger.indexer")

__all__ = ["EVENT_COLUMNS", "Indexer", "IndexerConfig", "indexer_config"]

WORKER_RESTARTS = 3  # fetch workers that may die before the indexer keeps to the thread


@dataclass
class IndexerConfig:
    name: str = "events"
    finality_depth: int = 64
    confirmation_depth: int = 2
    initial_range: int = 200
    min_range: int = 1
    max_range: int = 50_000
    target_logs: int = 10_000
    live_batch: int = 200
    prefetch_depth: int = 2  # backfill ranges fetched and decoded ahead of the writer
    # fetch and decode the backfill in a worker process (`indexer.fetch_process`) where the
    # platform can fork; else on a thread
    fetch_process: bool = True
    # the backfill's writes on a thread of their own (`indexer.write_behind`)
    write_behind: bool = False


def indexer_config(settings: Settings) -> IndexerConfig:
    return IndexerConfig(
        finality_depth=settings.finality_depth,
        confirmation_depth=settings.confirmation_depth,
        initial_range=settings.indexer_initial_range,
        fetch_process=settings.indexer_fetch_process,
        write_behind=settings.indexer_write_behind,
    )


@dataclass
class Metrics:
    head_block: int = 0
    indexed_block: int = 0
    head_timestamp: int = 0
    indexed_timestamp: int = 0
    events_total: int = 0
    reorgs: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def lag_blocks(self) -> int:
        return max(0, self.head_block - self.indexed_block)

    @property
    def lag_seconds(self) -> int:
        return max(0, self.head_timestamp - self.indexed_timestamp)

    @property
    def events_per_second(self) -> float:
        return self.events_total / max(1e-9, time.monotonic() - self.started)


@dataclass
class Cursor:
    number: int
    hash: str
    timestamp: int
    stored: bool = True  # False: the start before the deployment block, no row yet


class CursorMoved(Exception):
    """Another writer (a second indexer, `python -m indexer rebuild`) moved the cursor since
    this step read it: the step's rows are dropped and the next step starts from the new one."""


class Indexer:
    def __init__(
        self,
        engine: Engine,
        rpc: RpcClient,
        deployment: Deployment,
        config: IndexerConfig | None = None,
        publisher: OutboxPublisher | None = None,
    ):
        load_handlers()
        self.engine = engine
        self.rpc = rpc
        self.deployment = deployment
        self.config = config or IndexerConfig()
        self.publisher = publisher
        self.chain_id = deployment.chain_id
        self.decoder = LogDecoder(
            {name: (c.address, c.abi) for name, c in deployment.contracts.items()}
        )
        self.metrics = Metrics()
        # the fetcher thread's own client: a requests.Session is not shared between threads;
        # a fetch worker's retries are counted in it too
        self._fetch_rpc = rpc.fork()
        dialect = getattr(engine, "dialect", None)  # the rebuild's stand-in has none
        self.fetcher = Fetcher(
            self._fetch_rpc,
            self.decoder,
            self.chain_id,
            initial_range=self.config.initial_range,
            min_range=self.config.min_range,
            max_range=self.config.max_range,
            target_logs=self.config.target_logs,
            binary_events=getattr(dialect, "name", None) == "postgresql",
        )
        self._prefetcher: Prefetcher | ProcessJob | None = None
        self._worker: FetchProcess | None = None
        self._worker_deaths = 0
        self._ahead: tuple[Prefetcher | ProcessJob, int, Batch | Exception] | None = None
        self._writer: ThreadPoolExecutor | None = None  # the backfill's write thread

    @property
    def range(self) -> int:
        """Blocks of the next `eth_getLogs` while backfilling (adapted by the fetcher)."""
        return self.fetcher.range

    @range.setter
    def range(self, blocks: int) -> None:
        self.fetcher.range = blocks

    # ---------------------------------------------------------------- public

    def run(
        self,
        poll_interval_s: float = 0.1,
        stop: Callable[[], bool] = lambda: False,
        report_every_s: float = 30,
    ) -> None:
        """Step until `stop()`; an unreachable node is waited for, not fatal."""
        backoff, last_report = poll_interval_s, time.monotonic()
        try:
            while not stop():
                try:
                    advanced = self.step()
                    backoff = poll_interval_s
                except RpcUnavailable as exc:
                    log.warning("node unavailable (%s); retrying in %.1f s", exc, backoff)
                    self.range = max(self.config.min_range, self.range // 2)
                    time.sleep(backoff)
                    backoff = min(30.0, backoff * 2)
                    continue
                if time.monotonic() - last_report >= report_every_s:
                    m = self.metrics
                    log.info(
                        "head %d indexed %d lag %d blocks / %d s, %.0f events/s, %d reorgs",
                        m.head_block,
                        m.indexed_block,
                        m.lag_blocks,
                        m.lag_seconds,
                        m.events_per_second,
                        m.reorgs,
                    )
                    last_report = time.monotonic()
                if advanced == 0:
                    time.sleep(poll_interval_s)
        finally:
            self.close()

    def step(self) -> int:
        """Do one unit of work; returns the number of blocks advanced (0: caught up, or the
        cursor moved under us)."""
        try:
            return self._step()
        except CursorMoved:
            log.info("the cursor moved under this step (a rebuild?); resuming from the new one")
            self._stop_prefetcher()
            return 0

    def _step(self) -> int:
        cursor = self.load_cursor()
        head, cursor_header = self.rpc.batch(
            [("eth_blockNumber", []), ("eth_getBlockByNumber", [hex(cursor.number), False])]
        )
        head = int(head, 16)
        self.metrics.head_block = head
        if cursor_header is None or cursor_header["hash"] != cursor.hash:
            self._stop_prefetcher()
            self.handle_reorg(cursor, head)
            return 1
        if cursor.number >= head:
            self.metrics.indexed_block = cursor.number
            return 0
        final_head = head - self.config.finality_depth
        if cursor.number < final_head:
            with paused_gc():
                return self.backfill(cursor, final_head=final_head, head=head)
        return self.follow(
            cursor, to_block=min(head, cursor.number + self.config.live_batch), head=head
        )

    # ------------------------------------------------------------------ cursor

    def load_cursor(self) -> Cursor:
        t = table_of(IndexerCursor)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(t.c.block_number, t.c.block_hash, t.c.block_timestamp).where(
                    t.c.name == self.config.name, t.c.chain_id == self.chain_id
                )
            ).first()
        if row is not None:
            return Cursor(*row)
        start = self.deployment.block_number - 1
        header = self.rpc.call("eth_getBlockByNumber", [hex(start), False])
        if header is None:
            raise ReorgTooDeep(f"deployment block {start + 1} is not on chain {self.chain_id}")
        return Cursor(start, header["hash"], int(header["timestamp"], 16), stored=False)

    def claim_cursor(self, connection: Connection, cursor: Cursor) -> None:
        """Compare-and-swap at the start of a write: lock the stored cursor until commit and
        raise CursorMoved unless it is still the one this step started from."""
        t = table_of(IndexerCursor)
        row = connection.execute(
            select(t.c.block_number, t.c.block_hash)
            .where(t.c.name == self.config.name, t.c.chain_id == self.chain_id)
            .with_for_update()
        ).first()
        expected = (cursor.number, cursor.hash) if cursor.stored else None
        if (tuple(row) if row is not None else None) != expected:
            raise CursorMoved

    def save_cursor(
        self, connection: Connection, cursor: Cursor, *, head: int, head_ts: int
    ) -> None:
        t = table_of(IndexerCursor)
        values = {
            "block_number": cursor.number,
            "block_hash": cursor.hash,
            "block_timestamp": cursor.timestamp,
            "head_block": head,
            "head_timestamp": head_ts,
            "updated_at": utc_now(),
        }
        updated = connection.execute(
            update(t).where(t.c.name == self.config.name, t.c.chain_id == self.chain_id), values
        )
        if updated.rowcount == 0:
            connection.execute(
                insert(t), [{"name": self.config.name, "chain_id": self.chain_id, **values}]
            )
        self.metrics.indexed_block = cursor.number
        self.metrics.indexed_timestamp = cursor.timestamp
        self.metrics.head_timestamp = max(head_ts, cursor.timestamp)

    # ---------------------------------------------------------------- backfill

    def backfill(self, cursor: Cursor, *, final_head: int, head: int) -> int:
        """Index the next range of final blocks after the cursor (up to `final_head`).

        The ranges come decoded from the fetch stage (`indexer.pipeline`, or a worker process,
        `indexer.fetch_process`), fetched ahead while this one is written; each aims at
        `target_logs` logs (and halves when the provider refuses it). The writes go to
        PostgreSQL from a thread of their own (`indexer.write_behind`): the `chain_events` COPY
        while the handlers run here, then the derived rows, block, cursor and commit while this
        thread takes the next batch. It returns once the commit is done: the next step reads
        this batch's cursor.
        """
        try:
            batch = self._next_batch(cursor.number + 1, final_head)
        except RangeTooLarge as exc:  # even one block: the provider's limit, retried later
            log.warning("eth_getLogs refuses block %d alone (%s)", cursor.number + 1, exc)
            return 0
        end_header = batch.end_header
        if end_header is None or int(end_header["number"], 16) != batch.to_block:
            self._stop_prefetcher()
            return 0
        logs = batch.logs
        timestamp = int(end_header["timestamp"], 16)
        end = Cursor(batch.to_block, end_header["hash"], timestamp)
        transaction = self.engine.begin()
        connection = transaction.__enter__()
        writes = WriteBehind(self._write_thread())
        ended = False

        def commit() -> None:
            nonlocal ended
            ended = True
            transaction.__exit__(None, None, None)

        try:
            self.claim_cursor(connection, cursor)
            writes.submit(self.store_events, connection, batch.event_records)
            state = MirrorState(
                connection, self.chain_id, self.decoder.address_to_contract, writes.wait
            )
            self.apply(state, logs)
            writes.submit(lambda: state.flush(undo_block=None, keep=False))
            writes.submit(lambda: self.store_blocks(connection, [end_header], confirmed=True))
            writes.submit(lambda: self.save_cursor(connection, end, head=head, head_ts=timestamp))
            writes.submit(commit)
            if writes.behind:
                self._take_ahead()
            writes.wait()
        except BaseException as exc:
            writes.abandon()  # a batch taken ahead is dropped by the next `_next_batch`
            if not ended:
                transaction.__exit__(type(exc), exc, exc.__traceback__)  # rolls back
            raise
        self.metrics.events_total += len(logs)
        self.publish()
        return batch.to_block - cursor.number

    def _write_thread(self) -> ThreadPoolExecutor | None:
        """The backfill's write thread (`indexer.write_behind`); None: writes run inline."""
        if not self.config.write_behind:
            return None
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-write")
        return self._writer

    def _take_ahead(self) -> None:
        """Take the fetch stage's next batch now, while the current one's writes run: the next
        `_next_batch` from that block returns it (or raises what taking it raised)."""
        prefetcher = self._prefetcher
        if prefetcher is None or prefetcher.exhausted:
            return
        first = prefetcher.expected
        try:
            self._ahead = (prefetcher, first, prefetcher.take())
        except Exception as exc:  # raised where the batch is wanted, as without taking ahead
            self._ahead = (prefetcher, first, exc)

    def _next_batch(self, from_block: int, final_head: int) -> Batch:
        """The fetcher's next batch if it starts at `from_block`; else (re)start the fetcher
        there. A fetch error is raised here and drops the fetcher; a fetch worker that died
        is replaced (after `WORKER_RESTARTS` deaths, the thread takes over)."""
        ahead, self._ahead = self._ahead, None
        prefetcher = self._prefetcher
        if ahead is not None and ahead[0] is prefetcher and ahead[1] == from_block:
            taken = ahead[2]

            def take() -> Batch:
                if isinstance(taken, Exception):
                    raise taken
                return taken

        else:
            if prefetcher is None or prefetcher.expected != from_block or prefetcher.exhausted:
                self._stop_prefetcher()
                prefetcher = self._prefetcher = self._start_prefetcher(from_block, final_head)
            take = prefetcher.take
        try:
            batch = take()
        except WorkerDied as exc:
            self._prefetcher = None
            self._worker_died(exc)
            return self._next_batch(from_block, final_head)
        except BaseException:
            self._prefetcher = None
            raise
        if self._worker is not None and self._worker.range is not None:
            self.fetcher.range = self._worker.range  # the worker adapts its own copy
        return batch

    def _start_prefetcher(self, from_block: int, final_head: int) -> Prefetcher | ProcessJob:
        worker = self._fetch_worker()
        if worker is not None:
            try:
                return worker.start(
                    from_block, final_head, range_=self.range, depth=self.config.prefetch_depth
                )
            except WorkerDied as exc:
                self._worker_died(exc)
                return self._start_prefetcher(from_block, final_head)
        return Prefetcher(
            self.fetcher.produce,
            start=from_block,
            final_head=final_head,
            depth=self.config.prefetch_depth,
        )

    def _fetch_worker(self) -> FetchProcess | None:
        """The fetch worker, forked on first use; None: the thread fetches."""
        if (
            not self.config.fetch_process
            or self._worker_deaths >= WORKER_RESTARTS
            or not fetch_process.available()
        ):
            return None
        if self._worker is None:
            try:
                self._worker = FetchProcess(self._worker_fetcher)
            except OSError as exc:  # no fork: out of processes or memory
                log.warning("cannot start a fetch worker (%s); fetching on a thread", exc)
                self._worker_deaths = WORKER_RESTARTS
                return None
            self._worker.on_retries = self._fetch_rpc.count_retries
        return self._worker

    def _worker_fetcher(self) -> Fetcher:
        """The fetcher of a worker process (runs there): a client of its own."""
        model = self._fetch_rpc  # a client like the thread's, with a session of its own
        rpc = RpcClient(model.url, timeout_s=model.timeout_s, retry=model.retry)
        fetcher = self.fetcher
        return Fetcher(
            rpc,
            self.decoder,
            self.chain_id,
            initial_range=fetcher.range,
            min_range=fetcher.min_range,
            max_range=fetcher.max_range,
            target_logs=fetcher.target_logs,
            binary_events=fetcher.binary_events,
        )

    def _worker_died(self, exc: WorkerDied) -> None:
        self._worker_deaths += 1
        log.warning(
            "%s; %s",
            exc,
            "starting another"
            if self._worker_deaths < WORKER_RESTARTS
            else "fetching on a thread from now on",
        )
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _stop_prefetcher(self) -> None:
        self._ahead = None
        if self._prefetcher is not None:
            self._prefetcher.stop()
            self._prefetcher = None

    def close(self) -> None:
        """Stop the fetcher thread and the fetch worker (both also end with the process)."""
        self._stop_prefetcher()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    # ------------------------------------------------------------------ follow

    def follow(self, cursor: Cursor, *, to_block: int, head: int) -> int:
        """Index blocks near the head one by one, recording undo entries for each."""
        numbers = list(range(cursor.number + 1, to_block + 1))
        headers: list[JsonObject] = []
        parent = cursor.hash
        for header in self.rpc.get_blocks(numbers):
            if header is None or header["parentHash"] != parent:
                return 0  # the chain moved under us; the next step re-checks from the cursor
            headers.append(header)
            parent = header["hash"]
        raw_logs = self.rpc.get_logs(numbers[0], numbers[-1], self.decoder.addresses)
        by_number = {int(h["number"], 16): h for h in headers}
        if any(by_number[int(r["blockNumber"], 16)]["hash"] != r["blockHash"] for r in raw_logs):
            return 0  # logs from a different fork than the headers: retry
        fields = self.decode(raw_logs, by_number)
        logs = list(starmap(Log, fields))
        per_block: dict[int, list[Log]] = defaultdict(list)
        for item in logs:
            per_block[item.block_number].append(item)
        confirmed_below = head - self.config.confirmation_depth
        with self.engine.begin() as connection:
            self.claim_cursor(connection, cursor)
            state = MirrorState(connection, self.chain_id, self.decoder.address_to_contract)
            for number in numbers:
                self.apply(state, per_block.get(number, []))
                state.flush(undo_block=number)
            self.store_events(connection, event_records(self.chain_id, fields))
            self.store_blocks(connection, headers, confirmed=False)
            self.mark_confirmed_and_prune(
                connection,
                confirmed_below=confirmed_below,
                final_below=head - self.config.finality_depth,
            )
            last = headers[-1]
            end = Cursor(to_block, last["hash"], int(last["timestamp"], 16))
            self.save_cursor(connection, end, head=head, head_ts=int(last["timestamp"], 16))
        self.metrics.events_total += len(logs)
        self.publish()
        return len(numbers)

    # ------------------------------------------------------------------- reorg

    def handle_reorg(self, cursor: Cursor, head: int) -> None:
        lowest = max(self.deployment.block_number - 1, cursor.number - self.config.finality_depth)
        with self.engine.begin() as connection:
            self.claim_cursor(connection, cursor)
            try:
                fork, fork_hash = find_fork_point(
                    connection,
                    self.rpc,
                    chain_id=self.chain_id,
                    cursor=cursor.number,
                    lowest_allowed=lowest,
                )
            except ReorgTooDeep as exc:
                genesis = self.rpc.call("eth_getBlockByNumber", ["0x0", False])
                if genesis is None or genesis["hash"] != self.deployment.genesis_hash:
                    raise ReorgTooDeep(
                        f"chain {self.chain_id} was restarted from a new genesis block; "
                        "the indexed data belongs to the old chain "
                        "(redeploy and reset the database)"
                    ) from exc
                raise
            restored = rewind(connection, chain_id=self.chain_id, fork_block=fork)
            fork_header = self.rpc.call("eth_getBlockByNumber", [hex(fork), False])
            fork_cursor = Cursor(fork, fork_hash, int(fork_header["timestamp"], 16))
            self.save_cursor(
                connection, fork_cursor, head=head, head_ts=self.metrics.head_timestamp
            )
            state = MirrorState(connection, self.chain_id, self.decoder.address_to_contract)
            state.emit(fork, "chain.reorg", {"fork_block": fork, "previous_cursor": cursor.number})
            state.flush(undo_block=None)
        self.metrics.reorgs += 1
        log.warning(
            "reorg: rewound from block %d to %d (%d rows restored)", cursor.number, fork, restored
        )

    # ----------------------------------------------------------------- helpers

    def decode(
        self, raw_logs: list[JsonObject], headers: dict[int, JsonObject] | None = None
    ) -> list[LogFields]:
        """Logs of our events, decoded in bulk (`fetch.decode_fields`; `Log(*fields)`)."""
        return decode_fields(self.decoder, self.rpc, raw_logs, headers)

    def apply(self, state: MirrorState, logs: list[Log]) -> None:
        handlers = [(item, handler_for(item)) for item in logs]
        wanted: dict[str, set[Key]] = defaultdict(set)
        for item, handler in handlers:
            if handler is not None:
                for name, key in handler.touches(item):
                    wanted[name].add(key)
        state.prefetch(wanted)
        for item, handler in handlers:
            if handler is not None:
                handler.apply(state, item)

    def store_events(self, connection: Connection, records: EventRows) -> None:
        """Insert `chain_events` rows (`fetch.event_records`, or their binary COPY from
        `Fetcher.events_of`); a log stored already is skipped."""
        if not records:
            return
        key = ["chain_id", "tx_hash", "log_index"]
        if isinstance(records, bytes):
            insert_copy(connection, table_of(ChainEvent), EVENT_COLUMNS, records, key=key)
        else:
            insert_records(connection, table_of(ChainEvent), EVENT_COLUMNS, records, key=key)

    def store_blocks(
        self, connection: Connection, headers: list[JsonObject], *, confirmed: bool
    ) -> None:
        bulk_insert(
            connection,
            table_of(Block),
            [
                {
                    "chain_id": self.chain_id,
                    "number": int(h["number"], 16),
                    "hash": h["hash"],
                    "parent_hash": h["parentHash"],
                    "timestamp": int(h["timestamp"], 16),
                    "confirmed": confirmed,
                }
                for h in headers
            ],
            conflict_columns=["chain_id", "number"],
        )

    def mark_confirmed_and_prune(
        self, connection: Connection, *, confirmed_below: int, final_below: int
    ) -> None:
        blocks, undo = table_of(Block), table_of(UndoEntry)
        connection.execute(
            update(blocks)
            .where(
                blocks.c.chain_id == self.chain_id,
                blocks.c.number <= confirmed_below,
                blocks.c.confirmed.is_(False),
            )
            .values(confirmed=True)
        )
        connection.execute(
            undo.delete().where(
                undo.c.chain_id == self.chain_id, undo.c.block_number <= final_below
            )
        )

    def publish(self) -> None:
        if self.publisher is not None:
            self.publisher.publish_pending()
