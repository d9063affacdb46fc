"""Identical reads in flight share one statement (backend/api/shared_reads.py) without answering
a request from a read that began before it arrived."""

from __future__ import annotations

import asyncio

from backend.api.shared_reads import SharedReads


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_identical_reads_share_one_statement_that_began_after_each_caller():
    async def run() -> tuple[list[int], list[int], list[int]]:
        shared, started, gate = SharedReads(), [], asyncio.Event()

        async def read() -> int:
            started.append(len(started) + 1)
            round_ = len(started)
            await gate.wait()
            return round_

        first = [asyncio.ensure_future(shared.run("k", read)) for _ in range(3)]
        await settle()
        assert started == [1]  # three callers, one statement
        # arriving while round 1 runs: round 1 began before them, they wait for the next
        late = [asyncio.ensure_future(shared.run("k", read)) for _ in range(3)]
        other = asyncio.ensure_future(shared.run("other key", read))
        await settle()
        assert started == [1, 2]  # the other key is not held back; the next round waits
        gate.set()
        results = await asyncio.gather(*first), await asyncio.gather(*late)
        await other
        return list(results[0]), list(results[1]), started

    first, late, started = asyncio.run(run())
    assert first == [1, 1, 1]
    assert late == [3, 3, 3]  # one statement, begun after round 1 ended
    assert started == [1, 2, 3]


def test_a_failed_read_fails_its_callers_and_the_next_round_runs_again():
    async def run() -> tuple[list[object], int]:
        shared, calls = SharedReads(), []

        async def read() -> int:
            calls.append(1)
            await asyncio.sleep(0)
            if len(calls) == 1:
                raise RuntimeError("database gone")
            return len(calls)

        failed = await asyncio.gather(
            *(shared.run("k", read) for _ in range(2)), return_exceptions=True
        )
        assert len(calls) == 1
        again = await shared.run("k", read)
        return list(failed), again

    failed, again = asyncio.run(run())
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert again == 2


def test_a_caller_that_goes_away_does_not_cancel_the_others_read():
    async def run() -> int:
        shared, gate = SharedReads(), asyncio.Event()

        async def read() -> int:
            await gate.wait()
            return 7

        leaver = asyncio.ensure_future(shared.run("k", read))
        stayer = asyncio.ensure_future(shared.run("k", read))
        await asyncio.sleep(0)
        leaver.cancel()
        await asyncio.sleep(0)
        gate.set()
        return await stayer

    assert asyncio.run(run()) == 7
