"""`GRIDLEDGER_CLOCK`: wall time, or the chain's latest block (what `make run` uses while its
simulator moves Anvil's clock ahead of the wall)."""

from __future__ import annotations

import time

from web3 import Web3

from backend.chain import clock
from backend.core.config import Settings
from scripts.neighbourhood.simulator import ChainClock


def test_chain_clock_follows_the_simulated_time_and_wall_clock_does_not(fresh_anvil, tmp_path):
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url))
    ahead = (int(time.time()) // 900 + 4 * 96) * 900  # four days ahead, on a slot boundary
    assert ChainClock(w3).advance_to(ahead) == ahead
    chain = Settings(_env_file=None, data_dir=tmp_path, rpc_url=fresh_anvil.rpc_url, clock="chain")
    wall = Settings(_env_file=None, data_dir=tmp_path, rpc_url=fresh_anvil.rpc_url, clock="wall")
    assert clock.now(chain) == ahead
    assert abs(clock.now(wall) - time.time()) < 5
    # the simulated clock only moves forward
    assert ChainClock(w3).advance_to(ahead - 900) == ahead
