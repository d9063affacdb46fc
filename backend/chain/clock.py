"""The "now" of services that judge time: wall time, or the latest block's timestamp.

With `GRIDLEDGER_CLOCK=chain` (what `make run` sets while it simulates an accelerated day
on Anvil) readings, gates and deadlines follow simulated time, which runs ahead of the wall.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache

from web3 import Web3

from backend.core.config import Settings
from backend.core.errors import ServiceUnavailable


@lru_cache
def _web3(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))


def now(settings: Settings) -> int:
    if settings.clock == "wall":
        return int(time.time())
    try:
        return int(_web3(settings.rpc_url).eth.get_block("latest")["timestamp"])
    except (OSError, ConnectionError) as exc:
        raise ServiceUnavailable("chain RPC unreachable (clock=chain)") from exc


def utc_now(settings: Settings) -> datetime:
    """`now` as an aware UTC datetime (services that plan days and slots)."""
    return datetime.fromtimestamp(now(settings), UTC)
