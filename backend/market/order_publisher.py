"""The batched writer's publish step on a thread of its own: the `order.placed` messages of
committed batches go to the Redis stream while the writer stores the next batch.

Why: publishing after each commit (claim, XADD pipeline, commit of the claim: three round
trips) sat between two batches on the writer's thread, a third of its cycle under load. The
requests are answered after their batch's COMMIT and before the publish, as before; what
fails to go out stays unpublished (`published_at` NULL) for the next outbox relay.

Messages of every batch committed since the last publish go out together, in commit order:
one claim, one XADD pipeline and one commit for all of them. Publishes start at least
`intake_publish_interval_s` apart, so under load each carries several batches (the publish's
CPU is per call, and the writer's batches shrink as its cycle shortens).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from typing import Any

import psycopg
import redis

from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.market import order_events
from indexer.outbox import RedisStreamSink

log = logging.getLogger("gridledger.market")

# Like the outbox relay: the rows no other relay has published, marked (and so locked: a
# relay's FOR UPDATE SKIP LOCKED passes them by), sent, committed; a failure rolls the mark
# back (indexer/outbox.py).
_CLAIM = (
    "UPDATE outbox SET published_at = %(now)s "
    "WHERE id = ANY(%(ids)s::bigint[]) AND published_at IS NULL RETURNING id"
)
# The mark commits without waiting for its WAL flush: a crash may lose a mark that was sent,
# and its message goes out again through the relay, as it already could when the crash fell
# between the send and the commit (consumers see duplicates either way).
_NO_FLUSH = "SET LOCAL synchronous_commit = off"
APPLICATION_NAME = "gridledger-order-publisher"  # in pg_stat_activity


class OrderPublisher:
    """One thread that publishes the messages `put` hands it, until `close`."""

    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self.last = 0.0  # when the last publish started (time.monotonic)
        self.thread = threading.Thread(target=self._run, name="order-publisher", daemon=True)
        self.thread.start()

    def put(self, messages: list[dict[str, Any]]) -> None:
        """Publish `messages` (a committed batch's outbox rows, as the relay sends them)."""
        self.queue.put(messages)

    def close(self) -> None:
        """Publish what was put so far, then end the thread."""
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        sink = order_events.stream_sink(self.settings)
        try:
            stop = False
            while not stop:
                messages, stop = self._next()
                if not messages:
                    continue
                try:
                    if connection is None or connection.closed:
                        connection = psycopg.Connection.connect(
                            self.conninfo, application_name=APPLICATION_NAME
                        )
                    publish(connection, sink, messages)
                except (redis.RedisError, psycopg.Error) as exc:
                    log.warning("order events not published after commit (the relay will): %s", exc)
                    if connection is not None and connection.broken:
                        _close(connection)
                        connection = None
        finally:
            _close(connection)

    def _next(self) -> tuple[list[dict[str, Any]], bool]:
        """Every message queued (waiting for the first) and whether `close` came after them."""
        item = self.queue.get()
        pause = self.last + self.settings.intake_publish_interval_s - time.monotonic()
        if item is not None and pause > 0:
            time.sleep(pause)  # let the next batches join this publish
        self.last = time.monotonic()
        messages: list[dict[str, Any]] = []
        while item is not None:
            messages.extend(item)
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return messages, False
        return messages, True


def publish(
    connection: psycopg.Connection[Any],
    sink: RedisStreamSink,
    messages: list[dict[str, Any]],
) -> None:
    """Send the messages no relay has claimed to the stream and mark them published, in one
    transaction: a failure (raised) rolls the mark back, leaving them to the relay."""
    with connection.pipeline(), connection.transaction():  # BEGIN and claim at once
        connection.execute(_NO_FLUSH)
        claim = connection.execute(_CLAIM, {"ids": [m["id"] for m in messages], "now": utc_now()})
        claimed = {row[0] for row in claim.fetchall()}
        if claimed:
            sink.send([m for m in messages if m["id"] in claimed])


def _close(connection: psycopg.Connection[Any] | None) -> None:
    if connection is not None:
        with contextlib.suppress(psycopg.Error):
            connection.close()
