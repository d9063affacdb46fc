"""`make run`: the whole stack on one machine, and a simulated neighbourhood trading on it.

Anvil (state kept in the data folder), deployment (once), then one process per component:
indexer, API, operator matcher, Celery worker, beat, MQTT subscriber and the neighbourhood
simulator; their logs go to data/logs/. Each component is supervised (backend/core/supervisor.py):
one that dies is restarted after a back-off, and the stack stops only when one keeps dying.
A status line follows simulated time, trades, settlements, RECs, indexer lag and what /health
finds late. Ctrl-C stops every process; re-running resumes
the same chain, database and deployment; `make run RESET=1` starts empty.
`--exit-after-deploy` stops after reporting (used by tests and scripted set-ups).

With GRIDLEDGER_SIMULATE=true (the default) the simulator moves Anvil's clock, so every
service runs with GRIDLEDGER_CLOCK=chain and the settlement beat follows the faster clock.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import deque
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
from backend.core.supervisor import ComponentKeepsDying, RestartPolicy, Supervisor
from backend.core.tls import client_context, http_verify, prepare
from backend.health.freshness import freshness_checks
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
        if "vpp_trading_beat" not in config.model_fields_set:  # the simulated aggregator trades
            env["GRIDLEDGER_VPP_TRADING_BEAT"] = "false"
        if "vpp_daily_beat" not in config.model_fields_set:  # and plans its day (plan_day)
            env["GRIDLEDGER_VPP_DAILY_BEAT"] = "false"
        if "vpp_ack_timeout_s" not in config.model_fields_set:
            # acknowledgements are judged on chain time, which jumps a slot at a time
            env["GRIDLEDGER_VPP_ACK_TIMEOUT_S"] = str(2 * 900)
        if "settlement_beat_interval_s" not in config.model_fields_set:
            slot_wall_s = config.sim_seconds_per_day / 96
            env["GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S"] = str(round(max(slot_wall_s, 0.5), 2))
    return env


def start_component(
    name: str, *, module: str, config: Settings, args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A component as its own process (`python -m module [args]`), sharing our settings, its
    output in data/logs/<name>.log. Its own session: Ctrl-C reaches only us, and we stop it in
    order."""
    logs = config.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=PROJECT_ROOT,
            env=component_env(config),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_component(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, signal.SIGTERM)


def wait_for_api(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = 60,
    verify: ssl.SSLContext | bool = True,
) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=2, verify=verify)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise DevnetError(f"the API did not come up at {url} (see data/logs/api.log)")


def tls_answers(address: tuple[str, int], context: ssl.SSLContext) -> bool:
    """A TLS server whose certificate `context` trusts completes a handshake at `address`."""
    try:
        with (
            socket.create_connection(address, timeout=1) as raw,
            context.wrap_socket(raw, server_hostname=address[0]),
        ):
            return True
    except OSError:  # refused, timed out, or a handshake that failed (ssl.SSLError)
        return False


class StatusLine:
    """Simulated time, trades, settled, RECs issued, indexer lag and what /health finds late,
    from the chain and the DB mirror: rewritten in place on a terminal, a plain line every
    10 s otherwise."""

    def __init__(
        self,
        w3: Web3,
        engine: Engine,
        *,
        simulated: bool,
        settings: Settings | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self.w3, self.engine, self.interval_s = w3, engine, interval_s
        self.settings = settings
        self.late: list[str] = []  # freshness checks found late, and when they were asked
        self.freshness_at = -math.inf
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
            f"{self.degraded(head['timestamp'])}"
        )

    def degraded(self, chain_now: int) -> str:
        """` | DEGRADED: beat, settlement` when freshness checks of /health are late, else
        empty; asked at most every 5 s (the issuance check scans a week of readings)."""
        if self.settings is None:
            return ""
        if time.monotonic() - self.freshness_at >= 5:
            with Session(self.engine) as session:
                checks = freshness_checks(session, self.settings, now=chain_now)
            self.late = [name for name, check in checks.items() if not check["ok"]]
            self.freshness_at = time.monotonic()
        return f" | DEGRADED: {', '.join(self.late)}" if self.late else ""

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
    """The deployment on file if it matches this chain: code at every address, and the same
    genesis or a head past the deployment block. (Anvil reloading a state file it wrote after
    an earlier reload can come back with another genesis hash but the same accounts, code and
    storage; a fresh chain has no code at the deployer's addresses.)"""
    try:
        deployment = Deployment.read(config.deployment_file)
    except DeploymentNotFound:
        return None
    addresses = [c.address for c in deployment.contracts.values()]
    if deployment.timelock is not None:
        addresses.append(deployment.timelock.address)
    if any(not w3.eth.get_code(to_checksum_address(a)) for a in addresses):
        return None
    if deployment.genesis_hash != w3.eth.get_block(0)["hash"].to_0x_hex():
        if w3.eth.block_number < deployment.block_number:
            return None
        say("deploy", "the node's genesis hash changed (a reloaded state); code and head match")
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
    if deployment.timelock is not None:
        say("deploy", f"{'Timelock':<13} {deployment.timelock.address} (python -m backend.admin)")
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
    """The running devnet: the node we started (if any) and the supervised components, in
    start order. Tests drive it too: `open_stack`, `start_components`, `check`, `shut_down`."""

    config: Settings
    w3: Web3
    anvil: AnvilNode | None
    supervisor: Supervisor = field(init=False)
    deployment: Deployment | None = None  # set by deploy_or_resume's caller
    anvil_deaths: deque[float] = field(default_factory=deque)
    status: StatusLine | None = None

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(RestartPolicy.from_settings(self.config), self.report)

    @property
    def components(self) -> dict[str, subprocess.Popen[bytes]]:
        """The live process of each component (a dead one awaiting its restart is left out)."""
        return {
            name: c.process
            for name, c in self.supervisor.components.items()
            if c.process is not None
        }

    def report(self, component: str, message: str) -> None:
        if self.status is not None:
            self.status.clear()
        if component == "neighbourhood" and message.startswith("finished"):
            say("sim", "finished its simulated period; the stack keeps running")
            return
        log_file = self.config.data_dir / "logs" / f"{component}.log"
        say(component, f"{message} (log {log_file})" if "died" in message else message)

    @property
    def api_url(self) -> str:
        return self.config.api_url

    def start(
        self, name: str, *, module: str, may_finish: bool = False, args: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """`python -m module [args]` as component `name`, supervised by `check` (restarted when
        it dies) and stopped by `shut_down`."""
        return self.supervisor.add(
            name,
            lambda: start_component(name, module=module, config=self.config, args=args),
            may_finish=may_finish,
        )

    def start_components(self) -> None:
        """Indexer, API (waited for), matcher, workers, MQTT subscriber and, when simulating,
        the neighbourhood; then where to find logs and URLs."""
        config, api_url = self.config, self.api_url
        self.start("indexer", module="indexer")
        say("indexer", f"following the contracts into {config.database_url}")
        self.start_tls_broker()
        wait_for_api(api_url, self.start("api", module="backend"), verify=http_verify(config))
        say("api", f"serving {api_url} (clock: {'chain' if config.simulate else config.clock})")
        self.start("matcher", module="backend.market.matching")
        say("matcher", f"operator matching every {config.matcher_interval_s:g} s")
        self.start("workers", module="backend.workers")
        say("workers", f"settlement and REC issuance on {config.resolved_broker_url}")
        self.start("beat", module="backend.workers.beat")
        interval = component_env(config).get(
            "GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S", str(config.settlement_beat_interval_s)
        )
        say("beat", f"schedules them every {float(interval):g} s (while it holds the beat lock)")
        self.start_subscribers()
        say(
            "mqtt",
            f"meter readings from {config.mqtt_host}:{config.mqtt_broker_port} "
            f"{config.mqtt_topic_root}/+/+/+/+ ({config.mqtt_subscribers} subscriber processes"
            f"{', shared group ' + config.mqtt_shared_group if config.mqtt_shared_group else ''})",
        )
        self.start("dispatcher", module="backend.vpp.dispatcher")
        say(
            "dispatcher",
            f"VPP commands on {config.mqtt_topic_root}/+/+/+/command|config, acknowledgements "
            f"within {config.vpp_ack_timeout_s} s",
        )
        self.start("vtn", module="backend.openadr")
        say("vtn", f"OpenADR 2.0b VTN at {config.vtn_url} (known VENs, client certificates)")
        if config.simulate and config.sim_vens:
            self.start("vens", module="scripts.vens")
            say(
                "vens",
                f"{config.sim_vens} households and the battery run openleadr VENs "
                f"(opt out with p={config.sim_ven_opt_out_probability:g})",
            )
        self.warn_if_chain_time_ahead()
        if config.simulate:
            self.start("neighbourhood", module="scripts.neighbourhood", may_finish=True)
            say(
                "sim",
                f"{config.sim_prosumers} prosumers, {config.sim_consumers} consumers, a battery "
                f"and an aggregator; one simulated day per {config.sim_seconds_per_day:g} s",
            )
        say("logs", str(config.data_dir / "logs"))
        say(
            "urls",
            f"API {api_url}/docs   health {api_url}/health   WebSocket "
            f"{api_url.replace('http', 'ws', 1)}/v1/ws   chain RPC {config.rpc_url}",
        )
        if config.tls == "dev":
            say("tls", f"clients trust the development CA {config.tls_ca_file}")
        say("ready", "Ctrl-C stops every component")

    def start_subscribers(self) -> None:
        """`mqtt_subscribers` ingest processes on one shared subscription: `mqtt`, `mqtt-1`, ...
        (`python -m backend.meters.mqtt INDEX`: the index keeps each one's client id)."""
        for index in range(self.config.mqtt_subscribers):
            name = "mqtt" if index == 0 else f"mqtt-{index}"
            self.start(name, module="backend.meters.mqtt", args=(str(index),))

    def start_tls_broker(self) -> None:
        """With GRIDLEDGER_TLS=dev: the development CA's files, and a Mosquitto with a TLS 1.3
        listener on `mqtt_tls_port` unless one already answers there."""
        config = self.config
        if config.tls != "dev":
            return
        files = prepare(config)
        say("tls", f"development CA {files.ca_file if files else config.tls_ca_file}")
        address = (config.mqtt_host, config.mqtt_tls_port)
        if tls_answers(address, client_context(config)):
            say("broker", f"using the TLS broker already at {address[0]}:{address[1]}")
            return
        self.start("broker", module="backend.meters.broker_tls")
        deadline = time.monotonic() + 10
        while not tls_answers(address, client_context(config)):
            if time.monotonic() > deadline:
                raise DevnetError(f"no MQTT TLS listener came up at {address[0]}:{address[1]}")
            time.sleep(0.1)
        say("broker", f"MQTT over TLS 1.3 on {address[0]}:{address[1]}")

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

    def check(self) -> None:
        """Restart components that died (after their back-off), Anvil included; raise
        ComponentKeepsDying when one keeps dying. The neighbourhood finishing its simulated
        period with code 0 is reported once; the rest of the stack runs on."""
        if self.anvil is not None and self.anvil.process.poll() is not None:
            self.restart_chain(self.anvil.process.returncode)
        self.supervisor.poll()

    def restart_chain(self, exit_code: int | None) -> None:
        """Anvil died: start it again from its last state dump (at most
        `anvil_state_interval_s` old) on the same port, and rebuild the mirror if it indexed
        blocks the restarted chain no longer has. Components that lost the RPC meanwhile die
        and are restarted by the supervisor like any other death."""
        policy = self.supervisor.policy
        delay = policy.delay_after(self.anvil_deaths, time.monotonic())
        deaths = policy.recent(self.anvil_deaths, time.monotonic())
        if delay is None:
            raise ComponentKeepsDying("anvil", deaths, policy.window_s, exit_code)
        self.report(
            "anvil",
            f"died with exit code {exit_code} ({deaths} death(s) in the last "
            f"{policy.window_s:g} s); restarting from its saved state in {delay:g} s",
        )
        time.sleep(delay)
        self.anvil = start_chain(self.w3, self.config)
        if self.deployment is not None:
            resync_mirror(self.deployment, self.config, get_engine())
        self.report("anvil", f"restarted at block {self.w3.eth.block_number}")

    @property
    def simulation_finished(self) -> bool:
        """The neighbourhood ran its simulated period and exited with code 0."""
        neighbourhood = self.supervisor.components.get("neighbourhood")
        return neighbourhood is not None and neighbourhood.finished

    def watch(self) -> NoReturn:
        """Supervise the processes and refresh the status line until one keeps dying or
        Anvil dies (raises GridLedgerError) or Ctrl-C / SIGTERM (raises KeyboardInterrupt)."""
        self.status = status = StatusLine(
            self.w3, get_engine(), simulated=self.config.simulate, settings=self.config
        )
        try:
            while True:
                time.sleep(0.5)
                self.check()
                status.update()
        finally:
            status.clear()

    def shut_down(self) -> None:
        """Components in reverse start order, then Anvil with SIGINT so it saves its state."""
        for name in reversed(self.supervisor.names()):
            self.supervisor.stop(name, signal.SIGTERM)
            say(name, "stopped")
        if self.anvil is not None:
            self.anvil.stop()
            say("anvil", "stopped (state saved)")


def open_stack(config: Settings) -> Stack:
    """Database migrated, Anvil started (or the node found); no component yet. Then
    `deploy_or_resume`, `Stack.start_components`, `Stack.check` in a loop, `Stack.shut_down`."""
    prepare_database(config)
    w3 = Web3(Web3.HTTPProvider(config.rpc_url))
    return Stack(config, w3, anvil=start_chain(w3, config))


def main(argv: list[str] | None = None) -> int:
    """Database, chain, deployment; then (unless `--exit-after-deploy`) every component,
    watched until Ctrl-C, SIGTERM or a failure, and stopped in reverse order in any case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit-after-deploy", action="store_true")
    args = parser.parse_args(argv)
    config = settings_or_exit("make run")
    stack = open_stack(config)
    try:
        stack.deployment = deploy_or_resume(stack.w3, config)
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
