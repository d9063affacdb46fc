"""CPU seconds of processes, for the benches' "where do the cores go" figures (Linux /proc).

`Accounting` sums the CPU a set of processes used between two snapshots: a process that
appears after the first snapshot counts from zero (a PostgreSQL backend a pool opened during
the run), one that ended before the second is lost (the benches keep theirs until after).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s_of(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far; 0 once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (uvicorn's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *map(int, children)]


def backends_of(url: str, application_name: str) -> Callable[[], list[int]]:
    """The PostgreSQL backends of connections opened with `application_name` (the server runs
    on this machine), as a function to call at each snapshot."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")

    def pids() -> list[int]:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).fetchall()
        return [pid for (pid,) in rows]

    return pids


class Accounting:
    """CPU seconds used by the processes `who()` names, from `start()` to `stop()`."""

    def __init__(self, who: Callable[[], Iterable[int]]) -> None:
        self.who = who
        self.before: dict[int, float] = {}
        self.seconds = 0.0

    def start(self) -> None:
        self.before = {pid: cpu_s_of(pid) for pid in self.who()}

    def stop(self) -> float:
        self.seconds = sum(cpu_s_of(pid) - self.before.get(pid, 0.0) for pid in self.who())
        return self.seconds
