"""`make run`: the whole stack on one machine, and a simulated neighbourhood trading on it.

Anvil (state kept in the data folder), deployment (once), then one process per component:
indexer, API, operator matcher, Celery worker with beat, MQTT subscriber and the
neighbourhood simulator; their logs go to data/logs/. A status line follows simulated time,
trades, settlements, RECs and indexer lag. Ctrl-C stops every process; re-running resumes
the same chain, database and deployment; `make run RESET=1` starts empty.
`--exit-after-deploy` stops after reporting (used by tests and scripted set-ups).

With GRIDLEDGER_SIMULATE=true (the default) the simulator moves Anvil's clock, so every
service runs with GRIDLEDGER_CLOCK=chain and the settlement beat follows the faster clock.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import httpx
from eth_utils import to_checksum_address
from sqlalchemy import Engine, text
from sqlmodel import Session
from web3 import Web3

from backend.chain.anvil import AnvilNode, start_anvil
from backend.chain.anvil_state import backup_of, prepare_state_file
from backend.chain.deployment import Deployment, DeploymentNotFound
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import get_engine
from backend.core.errors import GridLedgerError
from backend.core.migrate import upgrade
from backend.core.processes import stop_process
from backend.core.startup import settings_or_exit
from backend.settlement.rewind import forget_lost_batches
from indexer.base import indexer_config
from indexer.models import TradeStatus
from indexer.rebuild import mirror_lost_blocks, rebuild_mirror
from indexer.reset import clear_mirror
from indexer.rpc import RpcClient


class DevnetError(GridLedgerError):
    pass


def say(component: str, message: str) -> None:
    print(f"[{component:>8}] {message}", flush=True)


def component_env(config: Settings) -> dict[str, str]:
    """Our environment for the components; simulated time when the neighbourhood runs."""
    env = dict(os.environ)
    if config.simulate:
        env["GRIDLEDGER_CLOCK"] = "chain"
        if "settlement_beat_interval_s" not in config.model_fields_set:
            slot_wall_s = config.sim_seconds_per_day / 96
            env["GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S"] = str(round(max(slot_wall_s, 0.5), 2))
    return env


def start_component(name: str, *, module: str, config: Settings) -> subprocess.Popen[bytes]:
    """A component as its own process (`python -m module`), sharing our settings, its output
    in data/logs/<name>.log. Its own session: Ctrl-C reaches only us, and we stop it in order."""
    logs = config.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=PROJECT_ROOT,
            env=component_env(config),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_component(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, signal.SIGTERM)


def wait_for_api(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise DevnetError(f"the API did not come up at {url} (see data/logs/api.log)")


class StatusLine:
    """Simulated time, trades, settled, RECs issued and indexer lag, from the chain and the
    DB mirror: rewritten in place on a terminal, a plain line every 10 s otherwise."""

    def __init__(
        self, w3: Web3, engine: Engine, *, simulated: bool, interval_s: float = 1.0
    ) -> None:
        self.w3, self.engine, self.interval_s = w3, engine, interval_s
        self.label = "sim" if simulated else "chain"
        self.tty = sys.stdout.isatty()
        self.last = 0.0
        self.shown = False

    def text(self) -> str:
        head = self.w3.eth.get_block("latest")
        with self.engine.connect() as connection:
            trades, settled, penalised, swaps = connection.execute(
                text(
                    "SELECT coalesce(sum(CASE WHEN product = 'energy' THEN 1 ELSE 0 END), 0), "
                    "coalesce(sum(CASE WHEN status = :settled THEN 1 ELSE 0 END), 0), "
                    "coalesce(sum(CASE WHEN coalesce(penalty, 0) > 0 THEN 1 ELSE 0 END), 0), "
                    "coalesce(sum(CASE WHEN product <> 'energy' THEN 1 ELSE 0 END), 0) FROM trades"
                ),
                {"settled": TradeStatus.SETTLED.value},
            ).one()
            certificates, claims = connection.execute(
                text("SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM claims)")
            ).one()
            indexed = connection.execute(
                text("SELECT max(block_number) FROM indexer_cursors")
            ).scalar()
        moment = datetime.fromtimestamp(head["timestamp"], UTC).strftime("%Y-%m-%d %H:%M")
        lag = "-" if indexed is None else f"{max(head['number'] - indexed, 0)} blocks"
        return (
            f"{self.label} {moment} UTC | energy trades {trades}, settled {settled} "
            f"({penalised} penalised) | RECs {certificates} issued, {swaps} sold, "
            f"{claims} retired | block {head['number']} | indexer lag {lag}"
        )

    def update(self) -> None:
        now = time.monotonic()
        if now - self.last < (self.interval_s if self.tty else 10):
            return
        self.last = now
        try:
            line = self.text()
        except Exception as exc:  # a status line never stops the stack
            line = f"status unavailable: {type(exc).__name__}"
        if self.tty:
            print(f"\r\033[K[  status] {line}", end="", flush=True)
            self.shown = True
        else:
            say("status", line)

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", flush=True)
            self.shown = False


def current_deployment(w3: Web3, config: Settings) -> Deployment | None:
    """The deployment on file if it matches this chain (same genesis, code present)."""
    try:
        deployment = Deployment.read(config.deployment_file)
    except DeploymentNotFound:
        return None
    if deployment.genesis_hash != w3.eth.get_block(0)["hash"].to_0x_hex():
        return None
    if any(
        not w3.eth.get_code(to_checksum_address(c.address)) for c in deployment.contracts.values()
    ):
        return None
    return deployment


def reset(config: Settings) -> None:
    """Forget the chain: its saved state, the deployment file and (for SQLite) the database."""
    for path in (
        config.anvil_state_file,
        backup_of(config.anvil_state_file),
        config.deployment_file,
    ):
        path.unlink(missing_ok=True)
    if config.is_sqlite:
        database = Path(config.database_url.removeprefix("sqlite:///"))
        for path in (
            database,
            database.with_name(database.name + "-wal"),
            database.with_name(database.name + "-shm"),
        ):
            path.unlink(missing_ok=True)


def prepare_database(config: Settings) -> None:
    """`RESET=1` forgets the previous chain first; then the schema is brought up to date."""
    if os.environ.get("RESET") == "1":
        reset(config)
        say("reset", "removed chain state and deployment file")
    upgrade(config.database_url)
    say("database", f"migrated {config.database_url}")


def start_chain(w3: Web3, config: Settings) -> AnvilNode | None:
    """Anvil on the configured RPC port, resuming its saved state; None when a node already
    answers there (we then leave it running on exit)."""
    if w3.is_connected():
        say("anvil", f"using the node already at {config.rpc_url}")
        return None
    repaired = prepare_state_file(config.anvil_state_file)
    if repaired:
        say("anvil", repaired)
    anvil = start_anvil(
        port=urlparse(config.rpc_url).port or 8545,
        chain_id=config.chain_id,
        state_file=config.anvil_state_file,
        state_interval_s=config.anvil_state_interval_s,
    )
    say("anvil", f"chain {w3.eth.chain_id} at {config.rpc_url} (block {w3.eth.block_number})")
    return anvil


def deploy_or_resume(w3: Web3, config: Settings) -> Deployment:
    """The deployment on file when it matches this chain; otherwise deploy afresh and empty
    the database mirror, which described another chain."""
    deployment = current_deployment(w3, config)
    if deployment is None:
        from scripts.deploy import deploy_all

        deployment = deploy_all(w3, config)
        clear_mirror(get_engine())
        say("deploy", f"deployed at block {deployment.block_number}")
    else:
        say("deploy", "resumed the existing deployment")
        resync_mirror(deployment, config, get_engine())
    for name, deployed in deployment.contracts.items():
        say("deploy", f"{name:<13} {deployed.address}")
    say("deploy", f"deployment file {config.deployment_file}")
    return deployment


def resync_mirror(deployment: Deployment, config: Settings, engine: Engine) -> None:
    """A node killed between two state dumps resumes from the last one: the mirror may have
    indexed blocks the chain no longer has. It is then rebuilt from the chain
    (indexer/rebuild.py), and the settlement log forgets the transactions that went with the
    lost blocks (backend/settlement/rewind.py); a mirror that matches the chain is left as is."""
    rpc = RpcClient(config.rpc_url)
    lost = mirror_lost_blocks(engine, rpc, deployment.chain_id)
    if lost is None:
        return
    report = rebuild_mirror(engine, rpc, deployment, indexer_config(config))
    say(
        "indexer",
        f"the chain no longer has indexed block {lost} (resumed from an older state): "
        f"mirror rebuilt up to block {report.head_block} in {report.seconds:.1f} s",
    )
    with Session(engine) as session:
        dropped = forget_lost_batches(session, Web3(Web3.HTTPProvider(config.rpc_url)))
    if dropped:
        say(
            "workers",
            f"{dropped} logged batches lost with those blocks: their work is pending again",
        )


@dataclass
class Stack:
    """The running devnet: the node we started (if any) and the components, in start order."""

    config: Settings
    w3: Web3
    anvil: AnvilNode | None
    components: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    simulation_finished: bool = False  # the neighbourhood ran its simulated period and exited

    @property
    def api_url(self) -> str:
        return f"http://{self.config.api_host}:{self.config.api_port}"

    def start(self, name: str, *, module: str) -> subprocess.Popen[bytes]:
        """`python -m module` as component `name`, watched by `check` and stopped by `shut_down`."""
        self.components[name] = start_component(name, module=module, config=self.config)
        return self.components[name]

    def start_components(self) -> None:
        """Indexer, API (waited for), matcher, workers, MQTT subscriber and, when simulating,
        the neighbourhood; then where to find logs and URLs."""
        config, api_url = self.config, self.api_url
        self.start("indexer", module="indexer")
        say("indexer", f"following the contracts into {config.database_url}")
        wait_for_api(api_url, self.start("api", module="backend"))
        say("api", f"serving {api_url} (clock: {'chain' if config.simulate else config.clock})")
        self.start("matcher", module="backend.market.matching")
        say("matcher", f"operator matching every {config.matcher_interval_s:g} s")
        self.start("workers", module="backend.workers")
        say(
            "workers",
            f"settlement and REC issuance (worker + beat) on {config.resolved_broker_url}",
        )
        self.start("mqtt", module="backend.meters.mqtt")
        say(
            "mqtt",
            f"meter readings from {config.mqtt_host}:{config.mqtt_port} "
            f"{config.mqtt_topic_root}/+/+/+/+",
        )
        self.warn_if_chain_time_ahead()
        if config.simulate:
            self.start("neighbourhood", module="scripts.neighbourhood")
            say(
                "sim",
                f"{config.sim_prosumers} prosumers, {config.sim_consumers} consumers, a battery "
                f"and an aggregator; one simulated day per {config.sim_seconds_per_day:g} s",
            )
        say("logs", str(config.data_dir / "logs"))
        say(
            "urls",
            f"API {api_url}/docs   health {api_url}/health   WebSocket ws://{config.api_host}:"
            f"{config.api_port}/v1/ws   chain RPC {config.rpc_url}",
        )
        say("ready", "Ctrl-C stops every component")

    def warn_if_chain_time_ahead(self) -> None:
        """Without the simulator, a chain left far ahead by an earlier simulated run refuses
        orders for delivery periods that start before its own time."""
        ahead_s = self.w3.eth.get_block("latest")["timestamp"] - time.time()
        if not self.config.simulate and ahead_s > 3600:
            say(
                "clock",
                f"chain time is {ahead_s / 3600:.0f} h ahead of the wall clock (a simulated run): "
                "delivery periods must start after chain time",
            )

    def check(self, status: StatusLine) -> None:
        """Raise DevnetError when Anvil or a component has died. The neighbourhood finishing
        its simulated period with code 0 is reported once; the rest of the stack runs on."""
        if self.anvil is not None and self.anvil.process.poll() is not None:
            raise DevnetError(
                f"anvil exited unexpectedly with code {self.anvil.process.returncode}"
            )
        for name, process in self.components.items():
            if process.poll() is None:
                continue
            if name == "neighbourhood" and process.returncode == 0:
                if not self.simulation_finished:
                    status.clear()
                    say("sim", "finished its simulated period; the stack keeps running")
                    self.simulation_finished = True
                continue
            log_file = self.config.data_dir / "logs" / f"{name}.log"
            raise DevnetError(f"{name} exited with code {process.returncode} (see {log_file})")

    def watch(self) -> NoReturn:
        """Check the processes and refresh the status line until a component fails (raises
        DevnetError) or Ctrl-C / SIGTERM (raises KeyboardInterrupt)."""
        status = StatusLine(self.w3, get_engine(), simulated=self.config.simulate)
        try:
            while True:
                time.sleep(0.5)
                self.check(status)
                status.update()
        finally:
            status.clear()

    def shut_down(self) -> None:
        """Components in reverse start order, then Anvil with SIGINT so it saves its state."""
        for name, process in reversed(self.components.items()):
            stop_component(process)
            say(name, "stopped")
        if self.anvil is not None:
            self.anvil.stop()
            say("anvil", "stopped (state saved)")


def main(argv: list[str] | None = None) -> int:
    """Database, chain, deployment; then (unless `--exit-after-deploy`) every component,
    watched until Ctrl-C, SIGTERM or a failure, and stopped in reverse order in any case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit-after-deploy", action="store_true")
    args = parser.parse_args(argv)
    config = settings_or_exit("make run")
    prepare_database(config)
    w3 = Web3(Web3.HTTPProvider(config.rpc_url))
    stack = Stack(config, w3, anvil=start_chain(w3, config))
    try:
        deploy_or_resume(w3, config)
        if args.exit_after_deploy:
            return 0
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
        stack.start_components()
        stack.watch()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.shut_down()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GridLedgerError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        sys.exit(1)
