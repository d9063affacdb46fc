"""A fresh Anvil with GridLedger deployed, a workload driver, and indexer factories."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from web3 import Web3

from backend.chain.anvil import AnvilNode
from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import make_engine
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from scripts.deploy import deploy_all
from scripts.workload import Workload


@dataclass
class Devnet:
    node: AnvilNode
    w3: Web3
    deployment: Deployment
    settings: Settings
    workload: Workload


@pytest.fixture
def devnet(fresh_anvil, tmp_path) -> Devnet:
    settings = Settings(_env_file=None, data_dir=tmp_path, rpc_url=fresh_anvil.rpc_url)
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url))
    deployment = deploy_all(w3, settings)
    workload = Workload(w3, deployment, seed=7)
    workload.setup()
    return Devnet(fresh_anvil, w3, deployment, settings, workload)


@pytest.fixture
def make_indexer(devnet):
    engines = []

    def build(database_url: str, rpc_url: str | None = None, rpc_timeout_s: float = 5, **config) -> Indexer:
        engine = make_engine(database_url)
        engines.append(engine)
        retry = RetryPolicy(attempts=30, max_delay_s=0.5)
        rpc = RpcClient(rpc_url or devnet.node.rpc_url, timeout_s=rpc_timeout_s, retry=retry)
        return Indexer(engine, rpc, devnet.deployment, IndexerConfig(**config))

    yield build
    for engine in engines:
        engine.dispose()


def catch_up(indexer: Indexer, max_steps: int = 10_000) -> None:
    """Step until the indexer reports nothing left to do."""
    for _ in range(max_steps):
        if indexer.step() == 0:
            return
    raise AssertionError("indexer did not catch up")
