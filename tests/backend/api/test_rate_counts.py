"""Rate-limit counts shared by concurrent requests (backend/api/rate_counts.py) on the test
Redis: every request is counted once and gets a count of its own, as if counted one by one,
in fewer round trips than requests."""

from __future__ import annotations

import asyncio

from backend.api.rate_counts import SharedCounts
from backend.core.config import Settings
from tests.fixtures.services import TEST_REDIS_URL

KEY = "gridledger:rl:i16-intake-test:1"


def test_concurrent_counts_share_round_trips_and_each_gets_its_own(redis_client):
    settings = Settings(_env_file=None, redis_url=TEST_REDIS_URL)
    counts = SharedCounts()

    async def burst(n: int) -> list[int]:
        return list(await asyncio.gather(*(counts.count(settings, KEY, 61) for _ in range(n))))

    async def run() -> tuple[list[int], list[int]]:
        first = await burst(40)
        return first, await burst(7)

    first, second = asyncio.run(run())

    assert sorted(first) == list(range(1, 41))
    assert sorted(second) == list(range(41, 48))
    assert int(redis_client.get(KEY)) == 47
    assert 0 < redis_client.ttl(KEY) <= 61
    assert counts.round_trips < 47  # joined: 40 requests in a tick do not take 40 round trips
    assert not counts.next and not counts.running


def test_without_redis_the_in_process_window_counts_the_same_way():
    settings = Settings(_env_file=None, redis_url="")
    counts = SharedCounts()
    key = KEY + ":memory"

    async def run() -> list[int]:
        return list(await asyncio.gather(*(counts.count(settings, key, 61) for _ in range(5))))

    assert sorted(asyncio.run(run())) == [1, 2, 3, 4, 5]
