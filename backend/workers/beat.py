"""`python -m backend.workers.beat`: the Celery beat as a component of its own (what `make
run` supervises beside the worker), scheduling only while it holds the beat lock.

A second beat (another host) waits for the lock and takes over within the lock's TTL when
the holder dies. A holder that cannot renew the lock exits at once (status 3): another beat
may be scheduling already, and the supervisor restarts this one as a waiting standby.
Every scheduler tick writes the `beat` heartbeat that /health watches.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, ClassVar

from celery.beat import PersistentScheduler

from backend.core.startup import settings_or_exit
from backend.health.heartbeats import BEAT, Heartbeat

log = logging.getLogger("gridledger.beat")
LOST_LOCK = 3


class TickingScheduler(PersistentScheduler):
    """Celery's file-backed scheduler that writes a heartbeat on every tick."""

    heartbeat: ClassVar[Heartbeat | None] = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
        if self.heartbeat is not None:
            self.heartbeat.beat()
        return interval


def keep_renewing(renew: Any, every_s: float) -> threading.Thread:
    """Renew the lock every `every_s`; exit the process the moment it is lost."""

    def run() -> None:
        while True:
            time.sleep(every_s)
            if not renew():
                log.error("beat lock lost; exiting so that only one beat schedules")
                logging.shutdown()
                os._exit(LOST_LOCK)

    thread = threading.Thread(target=run, name="beat-lock", daemon=True)
    thread.start()
    return thread


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    settings = settings_or_exit("beat")  # before the Celery app reads them at import
    from backend.core.db import make_engine
    from backend.workers import settlement  # noqa: F401  (registers the tasks)
    from backend.workers.app import app
    from backend.workers.beat_lock import beat_lock

    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the schedule's file lives there
    engine = make_engine(settings.database_url)
    lock = beat_lock(settings, engine)
    wait_s = min(1.0, settings.beat_lock_ttl_s / 4)
    log.info("pid %s waiting for the beat lock (%s)", os.getpid(), type(lock).__name__)
    while not lock.acquire():
        time.sleep(wait_s)
    log.info("pid %s holds the beat lock; scheduling", os.getpid())
    keep_renewing(lock.renew, settings.beat_lock_ttl_s / 3)
    TickingScheduler.heartbeat = Heartbeat(engine, BEAT, settings.heartbeat_interval_s)
    try:
        app.Beat(
            scheduler=TickingScheduler,
            max_interval=min(settings.heartbeat_interval_s, settings.settlement_beat_interval_s),
            loglevel="INFO",
        ).run()
    finally:
        lock.release()


if __name__ == "__main__":
    main()
