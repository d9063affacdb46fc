"""`python -m backend.workers.beat`: two beats on one Redis, only the lock holder ticks; the
holder killed, the other takes the lock within its TTL; a holder that loses the lock exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from backend.core.config import PROJECT_ROOT
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.health.models import ComponentHeartbeat
from backend.workers.beat import LOST_LOCK
from backend.workers.beat_lock import LOCK_NAME
from tests.fixtures.services import TEST_REDIS_URL
from tests.fixtures.workers import wait_for

TTL_S = 2.0


class Beat:
    def __init__(self, tmp_path: Path, name: str, database_url: str) -> None:
        self.log_file = tmp_path / f"beat-{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
        env.update(
            GRIDLEDGER_REDIS_URL=TEST_REDIS_URL,
            GRIDLEDGER_DATABASE_URL=database_url,
            GRIDLEDGER_DATA_DIR=str(tmp_path / name),  # two hosts: two data dirs
            GRIDLEDGER_BEAT_LOCK_TTL_S=str(TTL_S),
            GRIDLEDGER_HEARTBEAT_INTERVAL_S="0.2",
            GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S="0.5",
        )
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend.workers.beat"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.mark.redis
def test_two_beats_only_the_holder_ticks_and_the_other_takes_over(tmp_path, redis_client):
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(database_url)
    engine = make_engine(database_url)

    def ticking_pid() -> int | None:
        with Session(engine) as session:
            row = session.exec(select(ComponentHeartbeat)).first()
            return row.pid if row else None

    def holder() -> str:
        token = redis_client.get(LOCK_NAME)
        return token.decode().split(":")[0] if token else ""

    first = Beat(tmp_path, "a", database_url)
    second: Beat | None = None
    try:
        wait_for(lambda: ticking_pid() == first.process.pid, 90, "the first beat to tick")
        second = Beat(tmp_path, "b", database_url)
        standby = second
        wait_for(lambda: "waiting for the beat lock" in standby.log(), 90, "the second beat")
        # both run for a while: only the holder ticks and sends tasks
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            assert ticking_pid() == first.process.pid
            assert holder() == str(first.process.pid)
            time.sleep(0.1)
        assert "Sending due task" in first.log()
        assert "Sending due task" not in second.log() and "holds the beat lock" not in second.log()
        assert second.process.poll() is None

        first.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: holder() == str(standby.process.pid), 30, "the standby to take the lock")
        took_over_s = time.monotonic() - killed_at
        assert took_over_s <= TTL_S + 1.0, took_over_s  # the TTL, plus the standby's poll
        wait_for(lambda: ticking_pid() == standby.process.pid, 30, "the new holder to tick")
        print(f"beat takeover after SIGKILL: lock in {took_over_s:.2f} s (TTL {TTL_S:g} s)")

        # a holder whose lock is taken from it stops at once instead of double scheduling
        redis_client.set(LOCK_NAME, "someone-else", px=60_000)
        assert second.process.wait(timeout=TTL_S + 5) == LOST_LOCK
        assert "beat lock lost" in second.log()
    finally:
        first.stop()
        if second is not None:
            second.stop()
        engine.dispose()
