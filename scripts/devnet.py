"""`make run`: start Anvil (state kept in the data folder), deploy once, report, serve.

Re-running resumes the same chain and deployment; `make run RESET=1` starts empty.
`--exit-after-deploy` stops after reporting (used by tests and scripted set-ups).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from web3 import Web3

from backend.chain.anvil import start_anvil
from backend.chain.deployment import Deployment, DeploymentNotFound
from backend.core.config import PROJECT_ROOT, Settings, settings as default_settings
from backend.core.db import get_engine
from backend.core.errors import GridLedgerError
from backend.core.migrate import upgrade
from indexer.reset import clear_mirror


class DevnetError(GridLedgerError):
    pass


def say(component: str, message: str) -> None:
    print(f"[{component:>8}] {message}", flush=True)


def start_component(name: str, module: str) -> subprocess.Popen:
    """A component as its own process (`python -m module`), sharing our settings."""
    return subprocess.Popen([sys.executable, "-m", module], cwd=PROJECT_ROOT)


def stop_component(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


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
    """Forget the chain: its saved state, the deployment file and (for SQLite) the database."""
    for path in (config.anvil_state_file, config.deployment_file):
        path.unlink(missing_ok=True)
    if config.is_sqlite:
        database = Path(config.database_url.removeprefix("sqlite:///"))
        for path in (database, database.with_name(database.name + "-wal"),
                     database.with_name(database.name + "-shm")):
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
    components: dict[str, subprocess.Popen] = {}
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
            clear_mirror(get_engine())  # the old mirror described another chain
            say("deploy", f"deployed at block {deployment.block_number}")
        else:
            say("deploy", "resumed the existing deployment")
        for name, deployed in deployment.contracts.items():
            say("deploy", f"{name:<13} {deployed.address}")
        say("deploy", f"deployment file {config.deployment_file}")
        if args.exit_after_deploy:
            return 0
        components["indexer"] = start_component("indexer", "indexer")
        say("indexer", f"following the contracts into {config.database_url}")
        components["workers"] = start_component("workers", "backend.workers")
        say("workers", f"settlement and REC issuance on {config.resolved_broker_url}")
        components["mqtt"] = start_component("mqtt", "backend.meters.mqtt")
        say("mqtt", f"meter readings from {config.mqtt_host}:{config.mqtt_port} {config.mqtt_topic_root}/+/+/+/+")
        say("ready", "Ctrl-C stops every component")
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(0.5)
            if anvil is not None and anvil.process.poll() is not None:
                raise DevnetError(f"anvil exited unexpectedly with code {anvil.process.returncode}")
            for name, process in components.items():
                if process.poll() is not None:
                    raise DevnetError(f"{name} exited with code {process.returncode}")
    except KeyboardInterrupt:
        return 0
    finally:
        for name, process in components.items():
            stop_component(process)
            say(name, "stopped")
        if anvil is not None:
            anvil.stop()
            say("anvil", "stopped (state saved)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GridLedgerError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        sys.exit(1)
