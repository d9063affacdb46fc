"""End to end: `python -m scripts.devnet` (what `make run` runs) with a small neighbourhood on a
fast clock, headless, on free ports and a scratch data folder. After the simulated period
(trading, then a cool-down until every period has closed) we check the books on the chain
and in the mirror, then stop the stack with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select
from web3 import Web3

from backend.accounts.models import Account
from backend.chain.anvil import free_port
from backend.chain.deployment import Deployment
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.core.processes import stop_process
from backend.recs.verify import passed, verify_certificate
from backend.vpp.adherence import adherence
from backend.vpp.models import DispatchCommand, Vpp, VppSchedule
from scripts.neighbourhood.profiles import PvSystem
from tests.fixtures.books import exported_wh
from tests.fixtures.processes import child_running

GATE_DELAY_S = 300  # Settings.settlement_gate_delay_s
SETTLED = 2  # IEnergyMarket.TradeStatus.Settled
ZERO = "0x" + "0" * 40

# The stack starts its own Anvil and its meters publish to the shared MQTT broker.
pytestmark = [pytest.mark.anvil, pytest.mark.mqtt]


@dataclass
class Stack:
    process: subprocess.Popen
    output: Path
    data_dir: Path
    rpc_url: str
    w3: Web3
    deployment: Deployment
    engine: object
    api_url: str

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def contract(self, name: str):
        deployed = self.deployment.contracts[name]
        return self.w3.eth.contract(address=deployed.address, abi=deployed.abi)

    def log(self) -> str:
        return self.output.read_text()


def wait_for(stack_process: subprocess.Popen, output: Path, marker: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while marker not in output.read_text():
        if stack_process.poll() is not None:
            raise AssertionError(
                f"the stack exited ({stack_process.returncode}):\n{output.read_text()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout_s} s:\n{output.read_text()}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    rpc_url, api_port = f"http://127.0.0.1:{free_port()}", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_") and k != "RESET"}
    env.update(
        {
            "GRIDLEDGER_DATA_DIR": str(data_dir),
            "GRIDLEDGER_RPC_URL": rpc_url,
            "GRIDLEDGER_API_PORT": str(api_port),
            "GRIDLEDGER_VTN_PORT": str(free_port()),
            "GRIDLEDGER_SIM_PROSUMERS": "5",
            "GRIDLEDGER_SIM_CONSUMERS": "7",
            "GRIDLEDGER_SIM_SECONDS_PER_DAY": "60",
            "GRIDLEDGER_SIM_HOURS": "5",
            "GRIDLEDGER_SIM_START_HOUR_UTC": "8",
            # the shared test broker (127.0.0.1:1883), on topics and a session of our own
            "GRIDLEDGER_MQTT_TOPIC_ROOT": f"gl-e2e-{data_dir.name}-{os.getpid()}",
            "GRIDLEDGER_MQTT_CLIENT_ID": f"gl-e2e-ingest-{data_dir.name}-{os.getpid()}",
        }
    )
    output = data_dir / "make-run.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.devnet"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(process, output, "finished its simulated period", timeout_s=240)
        w3 = Web3(Web3.HTTPProvider(rpc_url))
        yield Stack(
            process,
            output,
            data_dir,
            rpc_url,
            w3,
            Deployment.read(data_dir / "deployment.json"),
            make_engine(f"sqlite:///{data_dir / 'gridledger.db'}"),
            f"http://127.0.0.1:{api_port}",
        )
    finally:
        stop_process(process, signal.SIGINT, timeout_s=60)


def settled_everything(stack: Stack, timeout_s: float = 30) -> list:
    """Energy trades, once every closed period is settled in the mirror (the indexer may lag)."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = stack.w3.eth.get_block("latest")["timestamp"]
        trades = stack.rows("SELECT * FROM trades WHERE product = 'energy' ORDER BY trade_id")
        pending = [
            t for t in trades if t.delivery_end + GATE_DELAY_S <= now and t.status != "settled"
        ]
        if not pending or time.monotonic() > deadline:
            return trades
        time.sleep(0.5)


def test_make_run_prints_each_component_and_the_urls(stack):
    log = stack.log()
    for component in (
        "database",
        "anvil",
        "deploy",
        "indexer",
        "api",
        "matcher",
        "workers",
        "beat",
        "mqtt",
        "dispatcher",
        "vtn",
        "vens",
        "sim",
        "urls",
    ):
        assert f"[{component:>8}]" in log, component
    assert "OpenADR 2.0b VTN at http://127.0.0.1:" in log and "[     vtn] died" not in log
    assert "[    vens] died" not in log
    assert f"{stack.w3.provider.endpoint_uri}" in log and "/docs" in log
    status_lines = [line for line in log.splitlines() if line.startswith("[  status]")]
    assert (
        status_lines and "energy trades" in status_lines[-1] and "indexer lag" in status_lines[-1]
    )


def test_household_meters_report_over_mqtt_and_the_rest_over_rest(stack):
    sources = dict(
        stack.rows(
            "SELECT m.kind, group_concat(DISTINCT r.source) FROM meter_readings r JOIN meters m "
            "ON m.meter_id = r.meter_id GROUP BY m.kind"
        )
    )
    assert sources == {"import": "mqtt", "both": "rest"}


def test_every_meter_is_approved_and_signs_every_reading(stack):
    """Settlement runs on signed data only: every meter approved with its key, every reading
    (REST and MQTT) signed by that key and verified, no slot settled on unverified data."""
    meters = stack.rows("SELECT meter_id, status, signing_key FROM meters")
    assert meters and all(m.status == "approved" and m.signing_key for m in meters)
    keys = {m.meter_id: m.signing_key for m in meters}
    readings = stack.rows(
        "SELECT meter_id, verified, signature, signer, source FROM meter_readings"
    )
    assert {r.source for r in readings} == {"mqtt", "rest"}
    assert all(r.verified and r.signature and r.signer == keys[r.meter_id] for r in readings)
    assert stack.rows("SELECT count(*) FROM reconciliations WHERE unverified_slots > 0")[0][0] == 0


def test_trades_happened_between_custodial_and_wallet_participants(stack):
    trades = settled_everything(stack)
    assert len(trades) >= 10
    kinds = dict(stack.rows("SELECT lower(address), kind FROM accounts"))
    assert {kinds[t.buyer] for t in trades} == {"custodial", "wallet"}
    assert len({t.seller for t in trades}) >= 3


def test_every_closed_period_trade_is_settled_exactly_once(stack):
    trades = settled_everything(stack)
    now = stack.w3.eth.get_block("latest")["timestamp"]
    closed = [t for t in trades if t.delivery_end + GATE_DELAY_S <= now]
    assert closed == trades  # the cool-down closes every period traded
    market = stack.contract("EnergyMarket")
    settlements = market.events.TradeSettled().get_logs(from_block=0)
    per_trade = Counter(e["args"]["tradeId"] for e in settlements)
    energy_ids = {t.trade_id for t in trades}
    assert set(per_trade) == energy_ids and set(per_trade.values()) == {1}
    delivered = {e["args"]["tradeId"]: e["args"]["deliveredWh"] for e in settlements}
    for trade in closed:
        assert trade.status == "settled", trade.trade_id
        assert market.functions.tradeStatus(trade.trade_id).call() == SETTLED
        assert trade.delivered_wh == delivered[trade.trade_id]
    assert any(t.penalty > 0 for t in closed), "some sellers fall short: penalties"
    # the silent meter's trades waited for the missing-data deadline, then settled on what reported
    missing = stack.rows("SELECT trade_id, delivered_wh FROM reconciliations WHERE data_missing")
    assert missing and all(trade_id in energy_ids for trade_id, _ in missing)


def test_recs_only_from_metered_renewable_export(stack):
    certificates = stack.rows(
        "SELECT c.certificate_id, c.device_id, c.period_start, c.period_end, c.volume_wh, "
        "d.meter_id, d.technology FROM certificates c JOIN devices d ON d.device_id = c.device_id"
    )
    assert certificates
    assert len({(c.device_id, c.period_start) for c in certificates}) == len(certificates)
    incomplete = 0
    for cert in certificates:
        assert cert.technology == "SOLAR_PV" and cert.period_end - cert.period_start == 3600
        exported, quarters = stack.rows(
            "SELECT coalesce(sum(export_wh), 0), count(*) FROM meter_readings "
            "WHERE meter_id = :meter AND verified AND interval_start >= :start "
            "AND interval_start < :end",
            meter=cert.meter_id.lower(),
            start=cert.period_start,
            end=cert.period_end,
        )[0]
        assert 0 < cert.volume_wh <= exported, cert.certificate_id
        incomplete += quarters < 4
    assert incomplete == 1  # the silent meter's hour, issued after the missing-data deadline
    registry = stack.contract("RECRegistry")
    for cert in certificates:
        assert registry.functions.isPeriodIssued(
            cert.device_id, cert.period_start, cert.period_end
        ).call()
    # certificates change hands on the market and are retired with a claim
    assert stack.rows("SELECT count(*) FROM trades WHERE product = 'rec'")[0][0] > 0
    assert stack.rows("SELECT count(*) FROM claims")[0][0] > 0


def test_no_storage_energy_is_certified_as_solar(stack):
    """A REC device's meter measures its PV (and the home's load) only: the VPP's home
    batteries and EVs sit behind storage meters of their own, which are no REC devices, and
    no certificate holds more than the PV behind it generated in the simulation."""
    devices = stack.rows("SELECT device_id, lower(meter_id) AS meter, capacity_w FROM devices")
    device_meters = {d.meter for d in devices}
    storage = stack.rows(
        "SELECT lower(r.meter_id) AS meter, m.name, m.kind FROM der_resources r "
        "JOIN meters m ON lower(m.meter_id) = lower(r.meter_id) "
        "WHERE r.kind IN ('battery', 'ev_charger')"
    )
    homes = [r for r in storage if r.name.endswith("-storage-meter")]
    assert len(homes) >= 2, "home batteries and an EV behind storage meters"
    assert not {r.meter for r in storage} & device_meters
    active = stack.rows(
        "SELECT DISTINCT lower(meter_id) FROM meter_readings "
        "WHERE verified AND (import_wh > 0 OR export_wh > 0)"
    )
    assert {r.meter for r in homes} & {m for (m,) in active}, "the home storage ran"
    seed = Settings(_env_file=None).sim_seed
    names = dict(stack.rows("SELECT lower(meter_id), name FROM meters"))
    checked = 0
    for device in devices:
        household = names[device.meter].removesuffix("-meter")
        pv = PvSystem(peak_w=device.capacity_w)
        for start, volume in stack.rows(
            "SELECT period_start, volume_wh FROM certificates WHERE device_id = :device",
            device=device.device_id,
        ):
            generated = sum(
                pv.generation_wh(slot, seed=seed, household=household)
                for slot in range(start, start + 3600, 900)
            )
            assert volume <= generated, (device.device_id, start, volume, generated)
            checked += 1
    assert checked


def test_certificate_proofs_verify(stack):
    """A third party with the API and an RPC checks every certificate down to the meters'
    signatures and the registrar's approval (`gridledger recs verify`)."""
    ids = [row[0] for row in stack.rows("SELECT certificate_id FROM certificates")]
    assert ids
    rpc_url = str(stack.w3.provider.endpoint_uri)
    with ThreadPoolExecutor(4) as pool:  # the waits on the API and the node overlap
        verdicts = list(pool.map(lambda i: verify_certificate(stack.api_url, rpc_url, i), ids))
    for checks in verdicts:
        assert passed(checks), [c.line() for c in checks if not c.ok]
        signatures = [c for c in checks if c.name.endswith(" signature")]
        assert signatures and all("the meter's key" in c.detail for c in signatures)


def test_tokens_are_conserved(stack):
    trades = settled_everything(stack)
    token, market = stack.contract("GridUSD"), stack.contract("EnergyMarket")
    transfers = token.events.Transfer().get_logs(from_block=0)
    minted = sum(e["args"]["value"] for e in transfers if e["args"]["from"] == ZERO)
    holders = {e["args"]["to"] for e in transfers} | {e["args"]["from"] for e in transfers}
    holders.discard(ZERO)
    assert minted > 0 and token.functions.totalSupply().call() == minted
    assert sum(token.functions.balanceOf(h).call() for h in holders) == minted
    escrowed, withdrawable = (
        market.functions.totalEscrowed().call(),
        market.functions.totalWithdrawable().call(),
    )
    assert token.functions.balanceOf(market.address).call() == escrowed + withdrawable
    parties = {Web3.to_checksum_address(a) for t in trades for a in (t.seller, t.buyer)}
    assert sum(market.functions.withdrawable(p).call() for p in parties) == withdrawable
    assert escrowed == sum(t.payment for t in trades if t.status == "open")
    for trade in trades:
        assert trade.seller_payout + trade.buyer_refund == trade.payment
        assert trade.penalty <= trade.delivered_wh * trade.price // 1000


def test_energy_is_conserved(stack):
    trades = settled_everything(stack)
    delivered_per_window = defaultdict(int)
    for trade in trades:
        assert 0 <= trade.delivered_wh <= trade.quantity_wh
        delivered_per_window[(trade.seller_meter, trade.delivery_start, trade.delivery_end)] += (
            trade.delivered_wh
        )
    assert sum(delivered_per_window.values()) > 0
    assert stack.rows("SELECT count(*) FROM vpp_orders")[0][0], "the neighbourhood's VPP traded"
    for (meter, start, end), delivered in delivered_per_window.items():
        exported = exported_wh(stack.engine, meter, start, end)  # a VPP's: its members'
        assert delivered <= exported, (meter, start)


def test_vpp_trades_are_allocated_to_member_meters_in_full(stack):
    """The VPP's settled trades, split over its members' meters: each sum is the chain's."""
    trades = settled_everything(stack)
    vpp_meters = {m for (m,) in stack.rows("SELECT DISTINCT lower(meter_id) FROM vpp_orders")}
    mine = [t for t in trades if t.seller_meter.lower() in vpp_meters and t.status == "settled"]
    assert mine, "the neighbourhood's VPP sold energy"
    deadline = time.monotonic() + 60  # the beat allocates behind settlement
    while time.monotonic() < deadline:
        done = {t for (t,) in stack.rows("SELECT DISTINCT trade_id FROM vpp_allocations")}
        if {t.trade_id for t in mine} <= done:
            break
        time.sleep(1)
    for trade in mine:
        payout, penalty = stack.rows(
            "SELECT sum(payout), sum(penalty) FROM vpp_allocations WHERE trade_id = :trade",
            trade=trade.trade_id,
        )[0]
        assert (payout, penalty) == (trade.seller_payout, trade.penalty), trade.trade_id


def test_the_vpps_storage_follows_its_dispatched_schedule_over_mqtt(stack):
    """The aggregator's schedule went down to the storage devices over MQTT, they acknowledged
    it and reported what they did: adherence measures real slots with real setpoints."""
    states = dict(stack.rows("SELECT state, count(*) FROM dispatch_commands GROUP BY state"))
    assert states.get("acked", 0) >= 4, states  # the community battery, 2 home batteries, an EV
    assert stack.rows("SELECT count(*) FROM der_telemetry WHERE metric = 'soc'")[0][0] > 0
    now = datetime.fromtimestamp(stack.w3.eth.get_block("latest")["timestamp"], UTC)
    with Session(stack.engine) as session:
        dispatched = select(DispatchCommand.schedule_id).where(DispatchCommand.kind == "schedule")
        schedules = session.exec(
            select(VppSchedule).where(col(VppSchedule.id).in_(dispatched))
        ).all()
        assert schedules, "no schedule was dispatched"
        followed = []
        for schedule in schedules:
            vpp = session.get(Vpp, schedule.vpp_id)
            aggregator = session.get(Account, vpp.aggregator_id)
            found = adherence(session, Settings(), aggregator, vpp.id, schedule.id, now=now)
            followed += [slot for r in found.resources for slot in r.slots if slot.followed]
    assert len(followed) >= 8
    assert any(slot.plannedWh and slot.actualWh for slot in followed), "only idle slots"
    # what the storage did is what its meters measured, within their approved capacity
    simulated = (stack.data_dir / "logs" / "neighbourhood.log").read_text()
    assert "readings rejected" not in simulated and "could not report" not in simulated


def test_the_vpps_first_daily_plan_has_a_demand_forecast(stack):
    """A new neighbourhood backfills its VPP members' meters' past week, each reading signed by
    its meter and verified, so the first daily plan already serves a forecast demand; the
    backfilled past issues no certificate (the devices are commissioned at the start)."""
    simulated = (stack.data_dir / "logs" / "neighbourhood.log").read_text()
    plans = [line for line in simulated.splitlines() if "VPP: forecast" in line]
    assert plans and "(demand forecast)" in plans[0], plans[:1]
    start = stack.rows("SELECT min(commissioned_at) FROM devices")[0][0]
    past, verified = stack.rows(
        "SELECT count(*), coalesce(sum(CASE WHEN verified THEN 1 ELSE 0 END), 0) "
        "FROM meter_readings WHERE interval_start < :start",
        start=start,
    )[0]
    assert past >= 7 * 96 and verified == past
    early = stack.rows(
        "SELECT count(*) FROM certificates c JOIN devices d ON d.device_id = c.device_id "
        "WHERE c.period_start < d.commissioned_at"
    )
    assert early[0][0] == 0


def test_the_admin_command_proposes_on_the_running_devnet(stack):
    """Admin power is the timelock's, not the deployer's; the admin command proposes on it."""
    timelock = stack.deployment.timelock
    assert timelock is not None
    deployer = stack.deployment.roles["minter"]
    for name in ("GridUSD", "RECRegistry", "EnergyMarket", "DemandResponse"):
        functions = stack.contract(name).functions
        assert functions.hasRole(b"\0" * 32, timelock.address).call()
        assert not functions.hasRole(b"\0" * 32, deployer).call()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    env |= {"GRIDLEDGER_DATA_DIR": str(stack.data_dir), "GRIDLEDGER_RPC_URL": stack.rpc_url}

    def admin(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "backend.admin", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    proposed = admin("propose", "grant-role", "ISSUER_ROLE", "0x" + "e2" * 20, "--json")
    operation_id = json.loads(proposed)["id"]
    assert operation_id in admin("list")


def beat_heartbeat_pid(stack: Stack) -> int | None:
    rows = stack.rows("SELECT pid FROM component_heartbeats WHERE component = 'beat'")
    return rows[0][0] if rows else None


def test_a_killed_component_is_restarted_and_the_stack_runs_on(stack):
    """kill -9 on the beat (the failure in issue 15): the supervisor says what died, how often,
    restarts it, and the new beat ticks; nothing else stops."""
    beat = child_running(stack.process.pid, "backend.workers.beat")
    assert beat_heartbeat_pid(stack) == beat
    os.kill(beat, signal.SIGKILL)
    wait_for(stack.process, stack.output, "[    beat] restarted (restart 1)", timeout_s=60)
    assert "[    beat] died with exit code -9 (1 death(s) in the last 300 s)" in stack.log()
    deadline = time.monotonic() + 60
    while beat_heartbeat_pid(stack) in (beat, None):
        assert time.monotonic() < deadline, "the restarted beat does not tick"
        time.sleep(0.5)
    assert beat_heartbeat_pid(stack) == child_running(stack.process.pid, "backend.workers.beat")
    assert stack.process.poll() is None


def test_ctrl_c_stops_every_component(stack):
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    log = stack.log()
    for component in (
        "neighbourhood",
        "vens",
        "vtn",
        "dispatcher",
        "mqtt",
        "beat",
        "workers",
        "matcher",
        "api",
        "indexer",
    ):
        assert f"[{component:>8}] stopped" in log, component
    assert "stopped (state saved)" in log and (stack.data_dir / "anvil-state.json").is_file()
