"""Redis locks last as long as their holder works, and expire soon after it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from backend.settlement.locks import RedisLocks
from tests.fixtures.services import TEST_REDIS_URL


def test_lock_outlives_its_timeout_while_the_holder_works(redis_client):
    locks, rival = RedisLocks(redis_client), RedisLocks(redis_client)
    with locks.hold("settle:period:1", timeout_s=2) as held:
        assert held
        time.sleep(5)  # a settlement run waiting for receipts, well beyond the timeout
        with rival.hold("settle:period:1", timeout_s=2) as taken:
            assert not taken
    with rival.hold("settle:period:1", timeout_s=2) as taken:
        assert taken  # released when the holder is done


def test_lock_of_a_killed_holder_expires(redis_client):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, redis\n"
            "from backend.settlement.locks import RedisLocks\n"
            f"locks = RedisLocks(redis.Redis.from_url({TEST_REDIS_URL!r}))\n"
            "with locks.hold('settler-key', timeout_s=2) as held:\n"
            "    print(held, flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        time.sleep(5)  # renewed meanwhile
        with RedisLocks(redis_client).hold("settler-key", timeout_s=2) as taken:
            assert not taken
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # expires after its timeout, not after however long its holder meant to work
    with RedisLocks(redis_client).hold("settler-key", timeout_s=2, wait_s=30) as taken:
        assert taken
