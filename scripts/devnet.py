"""`make run`: start Anvil (state kept in the data folder), deploy once, report, serve.

Re-running resumes the same chain and deployment; `make run RESET=1` starts empty.
`--exit-after-deploy` stops after reporting (used by tests and scripted set-ups).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from urllib.parse import urlparse

from web3 import Web3

from backend.chain.anvil import start_anvil
from backend.chain.deployment import Deployment, DeploymentNotFound
from backend.core.config import Settings, settings as default_settings
from backend.core.errors import GridLedgerError
from backend.core.migrate import upgrade


class DevnetError(GridLedgerError):
    pass


def say(component: str, message: str) -> None:
    print(f"[{component:>8}] {message}", flush=True)


def current_deployment(w3: Web3, config: Settings) -> Deployment | None:
    """The deployment on file if it matches this chain (same genesis, code present)."""
    try:
        deployment = Deployment.read(config.deployment_file)
    except DeploymentNotFound:
        return None
    if deployment.genesis_hash != w3.eth.get_block(0)["hash"].to_0x_hex():
        return None
    if any(not w3.eth.get_code(c.address) for c in deployment.contracts.values()):
        return None
    return deployment


def reset(config: Settings) -> None:
    for path in (config.anvil_state_file, config.deployment_file):
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit-after-deploy", action="store_true")
    args = parser.parse_args(argv)
    config = default_settings
    if os.environ.get("RESET") == "1":
        reset(config)
        say("reset", "removed chain state and deployment file")

    upgrade(config.database_url)
    say("database", f"migrated {config.database_url}")

    w3 = Web3(Web3.HTTPProvider(config.rpc_url))
    anvil = None
    if w3.is_connected():
        say("anvil", f"using the node already at {config.rpc_url}")
    else:
        anvil = start_anvil(
            port=urlparse(config.rpc_url).port or 8545,
            chain_id=config.chain_id,
            state_file=config.anvil_state_file,
        )
        say("anvil", f"chain {w3.eth.chain_id} at {config.rpc_url} (block {w3.eth.block_number})")

    try:
        deployment = current_deployment(w3, config)
        if deployment is None:
            from scripts.deploy import deploy_all

            deployment = deploy_all(w3, config)
            say("deploy", f"deployed at block {deployment.block_number}")
        else:
            say("deploy", "resumed the existing deployment")
        for name, deployed in deployment.contracts.items():
            say("deploy", f"{name:<13} {deployed.address}")
        say("deploy", f"deployment file {config.deployment_file}")
        if args.exit_after_deploy:
            return 0
        say("ready", "Ctrl-C stops every component")
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while anvil is None or anvil.process.poll() is None:
            time.sleep(0.5)
        raise DevnetError(f"anvil exited unexpectedly with code {anvil.process.returncode}")
    except KeyboardInterrupt:
        return 0
    finally:
        if anvil is not None:
            anvil.stop()
            say("anvil", "stopped (state saved)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GridLedgerError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        sys.exit(1)
