"""A throw-away Anvil with GridLedger deployed and participants set up, for benchmarks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from web3 import Web3

from backend.chain.anvil import AnvilNode, start_anvil
from backend.chain.deployment import Deployment
from backend.core.config import Settings
from scripts.deploy import deploy_all
from scripts.workload import Workload


@contextmanager
def deployed_devnet(
    participants: int = 4, anvil_args: tuple[str, ...] = ()
) -> Iterator[tuple[AnvilNode, Web3, Deployment, Workload]]:
    node = start_anvil(extra_args=anvil_args)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(_env_file=None, data_dir=Path(data_dir), rpc_url=node.rpc_url)
            w3 = Web3(Web3.HTTPProvider(node.rpc_url))
            deployment = deploy_all(w3, settings)
            workload = Workload(w3, deployment, seed=1, participants=participants)
            workload.setup()
            yield node, w3, deployment, workload
    finally:
        node.stop()
