"""Indexer factories over the shared `devnet` fixture (tests/fixtures/devnet.py)."""

from __future__ import annotations

import pytest

from backend.core.db import make_engine
from indexer.base import Indexer
from indexer.rpc import RetryPolicy, RpcClient
from tests.fixtures.indexing import thread_fetch_config


@pytest.fixture
def make_indexer(devnet):
    engines = []

    def build(
        database_url: str, rpc_url: str | None = None, rpc_timeout_s: float = 5, **config
    ) -> Indexer:
        engine = make_engine(database_url)
        engines.append(engine)
        retry = RetryPolicy(attempts=30, max_delay_s=0.5)
        rpc = RpcClient(rpc_url or devnet.node.rpc_url, timeout_s=rpc_timeout_s, retry=retry)
        return Indexer(engine, rpc, devnet.deployment, thread_fetch_config(**config))

    yield build
    for engine in engines:
        engine.dispose()
