"""A chaos day: a simulated day of the neighbourhood on PostgreSQL + Redis while a seeded
schedule SIGKILLs every component once (indexer, API, matcher, worker, beat, MQTT
subscriber, the OpenADR VTN (recovered once /health reports it ok), the neighbourhood itself)
and restarts Anvil from its state file; a minimal supervisor (tests/fixtures/chaos.py)
restarts whatever died. At the end of the day the books must close: every trade settled
exactly once with the formula's payout, every device-hour issued at most once, tokens and Wh
conserved, the SQL mirror equal to the chain and no period left unsettled past its deadline.
Prints kills survived, trades, settlements and the time each component took to recover."""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import text
from web3 import Web3

from backend.chain.anvil import free_port, start_anvil
from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.settlement.allocation import settlement_amounts
from backend.settlement.services import terms
from scripts.deploy import deploy_all
from scripts.workload import Contracts
from tests.fixtures.books import exported_wh
from tests.fixtures.chaos import ANVIL, ChaosStack, Kill, schedule, wait_until
from tests.fixtures.mirror_check import assert_mirror_equals_chain
from tests.fixtures.services import TEST_REDIS_URL

pytestmark = [pytest.mark.chaos, pytest.mark.anvil, pytest.mark.mqtt]

SEED = 15
SECONDS_PER_DAY = 64  # wall seconds per simulated day
TRADING_HOURS = 20  # then the simulator's 4 h cool-down closes the day
BUDGET_S = 170  # the whole test, CI's limit is 3 minutes
ZERO = "0x" + "0" * 40


def clear_mqtt_session(client_id: str) -> None:
    """Drop the subscriber's persistent session on the shared broker (clean start, expiry 0)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    try:
        client.connect("127.0.0.1", 1883, clean_start=True)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


def rows(stack: ChaosStack, sql: str, **params) -> list:
    with stack.engine.connect() as connection:
        return list(connection.execute(text(sql), params))


@pytest.fixture
def chaos_stack(tmp_path, fresh_pg_url, redis_client):
    run_id = f"gl-chaos-{os.getpid()}-{tmp_path.name}"
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=fresh_pg_url,
        redis_url=TEST_REDIS_URL,
        rpc_url=f"http://127.0.0.1:{free_port()}",
        api_port=free_port(),
        anvil_state_interval_s=1,
        mqtt_topic_root=run_id,
        mqtt_client_id=f"{run_id}-ingest",
    )
    node = start_anvil(
        port=int(settings.rpc_url.rsplit(":", 1)[1]),
        chain_id=settings.chain_id,
        state_file=settings.anvil_state_file,
        state_interval_s=settings.anvil_state_interval_s,
    )
    deploy_all(Web3(Web3.HTTPProvider(node.rpc_url)), settings)
    env = {
        "GRIDLEDGER_DATA_DIR": str(tmp_path),
        "GRIDLEDGER_DATABASE_URL": fresh_pg_url,
        "GRIDLEDGER_REDIS_URL": TEST_REDIS_URL,
        "GRIDLEDGER_RPC_URL": node.rpc_url,
        "GRIDLEDGER_API_PORT": str(settings.api_port),
        "GRIDLEDGER_VTN_PORT": str(free_port()),
        "GRIDLEDGER_CLOCK": "chain",
        "GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S": str(round(SECONDS_PER_DAY / 96, 2)),
        "GRIDLEDGER_SETTLEMENT_LOCK_TIMEOUT_S": "3",
        "GRIDLEDGER_BEAT_LOCK_TTL_S": "3",  # a killed beat's lock frees within 3 s
        "GRIDLEDGER_HEARTBEAT_INTERVAL_S": "1",
        "GRIDLEDGER_MATCHER_INTERVAL_S": "0.5",
        "GRIDLEDGER_SIM_PROSUMERS": "4",
        "GRIDLEDGER_SIM_CONSUMERS": "5",
        "GRIDLEDGER_SIM_SECONDS_PER_DAY": str(SECONDS_PER_DAY),
        "GRIDLEDGER_SIM_START_HOUR_UTC": "4",
        "GRIDLEDGER_MQTT_TOPIC_ROOT": settings.mqtt_topic_root,
        "GRIDLEDGER_MQTT_CLIENT_ID": settings.mqtt_client_id,
    }
    stack = ChaosStack(settings, node, make_engine(fresh_pg_url), env)
    try:
        yield stack
    finally:
        stack.stop_all()
        stack.engine.dispose()
        clear_mqtt_session(f"{settings.mqtt_client_id}-0")


def run_the_day(stack: ChaosStack, started: float) -> tuple[list[Kill], int]:
    """Start every component, fire the schedule, restart what dies; returns the kills and the
    day's first chain second."""
    day: dict[str, int] = {}

    def remaining_hours() -> dict[str, str]:
        if "start" not in day:
            return {"GRIDLEDGER_SIM_HOURS": str(TRADING_HOURS)}
        left = day["start"] + TRADING_HOURS * 3600 - stack.figures()["chain_time"]
        return {"GRIDLEDGER_SIM_HOURS": str(round(max(left / 3600, 0.01), 3))}

    stack.env_for["neighbourhood"] = remaining_hours
    for component in stack.components:  # the neighbourhood waits for the API itself
        stack.start(component)
    wait_until(
        lambda: "neighbourhood: ready" in stack.log_path("neighbourhood").read_text(),
        60,
        "the neighbourhood's set-up",
    )
    day["start"] = stack.figures()["chain_time"]
    stack.phases["set_up_s"] = round(time.monotonic() - started, 1)
    kills = schedule(
        SEED,
        [c.name for c in stack.components] + [ANVIL],
        first_hour=1.5,
        last_hour=TRADING_HOURS - 3,
    )
    pending = list(kills)
    while "neighbourhood" not in stack.finished:
        assert time.monotonic() - started < BUDGET_S, (
            f"the day did not end in time: {[(k.target, k.recovered_s) for k in kills]}\n"
            + stack.tail("neighbourhood")
        )
        figures = stack.figures()
        hour = (figures["chain_time"] - day["start"]) / 3600
        while pending and pending[0].at_hour <= hour:
            kill = pending.pop(0)
            kill.before, kill.killed_at = figures, time.monotonic()
            if kill.target == ANVIL:
                stack.restart_anvil()
            else:
                stack.kill(kill.target)
        stack.supervise()
        for kill in kills:
            if kill.killed_at and kill.recovered_s is None and recovered(stack, kill):
                kill.recovered_s = round(time.monotonic() - kill.killed_at, 2)
        time.sleep(0.25)
    assert not pending, f"the day ended before every kill: {[k.target for k in pending]}"
    stack.phases["day_s"] = round(time.monotonic() - started - stack.phases["set_up_s"], 1)
    return kills, day["start"]


def recovered(stack: ChaosStack, kill: Kill) -> bool:
    if kill.target == ANVIL:
        now = stack.figures()
        return now["head"] > kill.before["head"] and now["indexed"] >= kill.before["head"]
    return stack.component(kill.target).probe(stack, kill.before)


def test_a_chaos_day_closes_its_books(chaos_stack):
    stack, started = chaos_stack, time.monotonic()
    kills, day_start = run_the_day(stack, started)
    settings, w3 = stack.settings, stack.w3
    deployment = json.loads(settings.deployment_file.read_text())
    contracts = {
        name: w3.eth.contract(address=Web3.to_checksum_address(c["address"]), abi=c["abi"])
        for name, c in deployment["contracts"].items()
    }
    market, token, registry = (
        contracts["EnergyMarket"],
        contracts["GridUSD"],
        contracts["RECRegistry"],
    )
    gate = settings.settlement_gate_delay_s + settings.settlement_missing_data_deadline_s

    def closed_and_indexed() -> bool:
        now = stack.figures()
        overdue = rows(
            stack,
            "SELECT count(*) FROM trades WHERE product = 'energy' AND status <> 'settled' "
            "AND delivery_end + :gate <= :now",
            gate=gate,
            now=now["chain_time"],
        )[0][0]
        return overdue == 0 and now["indexed"] >= now["head"]

    wait_until(closed_and_indexed, max(20, BUDGET_S - (time.monotonic() - started)), "the books")
    stack.phases["closing_s"] = round(time.monotonic() - started - sum(stack.phases.values()), 1)
    stack.supervise()
    now = w3.eth.get_block("latest")["timestamp"]

    # every trade settled exactly once, with the formula's payout, none left past its deadline
    trades = rows(stack, "SELECT * FROM trades WHERE product = 'energy' ORDER BY trade_id")
    assert len(trades) >= 20, "too few trades for a day"
    settled_events = market.events.TradeSettled().get_logs(from_block=0)
    per_trade = Counter(e["args"]["tradeId"] for e in settled_events)
    assert set(per_trade.values()) == {1}, "a trade settled twice"
    assert not market.events.TradeReclaimed().get_logs(from_block=0), "a buyer had to reclaim"
    records = {r.trade_id: r for r in rows(stack, "SELECT * FROM reconciliations")}
    for trade in trades:
        assert trade.delivery_end + gate <= now, "the day must end with every period closed"
        assert trade.status == "settled" and per_trade[trade.trade_id] == 1, trade.trade_id
    for event in settled_events:
        args, trade_id = event["args"], event["args"]["tradeId"]
        trade = next(t for t in trades if t.trade_id == trade_id)
        amounts = settlement_amounts(terms(trade), args["deliveredWh"])
        assert (args["sellerPayout"], args["penalty"], args["buyerRefund"]) == (
            amounts.payout,
            amounts.penalty,
            amounts.refund,
        )
        assert args["deliveredWh"] == records[trade_id].delivered_wh
        assert args["sellerPayout"] + args["buyerRefund"] == trade.payment

    # every device-hour issued at most once
    issued = registry.events.CertificateIssued().get_logs(from_block=0)
    hours = Counter((e["args"]["deviceId"], e["args"]["periodStart"]) for e in issued)
    assert issued and set(hours.values()) == {1}, "a device-hour was issued twice"

    # tokens conserved
    transfers = token.events.Transfer().get_logs(from_block=0)
    minted = sum(e["args"]["value"] for e in transfers if e["args"]["from"] == ZERO)
    holders = {e["args"][k] for e in transfers for k in ("from", "to")} - {ZERO}
    assert token.functions.totalSupply().call() == minted
    assert sum(token.functions.balanceOf(h).call() for h in holders) == minted
    assert token.functions.balanceOf(market.address).call() == (
        market.functions.totalEscrowed().call() + market.functions.totalWithdrawable().call()
    )
    assert market.functions.totalEscrowed().call() == 0  # every period closed: nothing held

    # Wh conserved: no seller is paid for more than its meter exported in the window
    delivered = defaultdict(int)
    for trade in trades:
        assert 0 <= trade.delivered_wh <= trade.quantity_wh
        delivered[(trade.seller_meter, trade.delivery_start, trade.delivery_end)] += (
            trade.delivered_wh
        )
    for (meter, start, end), wh in delivered.items():
        assert wh <= exported_wh(stack.engine, meter, start, end), (meter, start)

    # the SQL mirror equals the chain
    people = {r[0] for r in rows(stack, "SELECT address FROM accounts WHERE address IS NOT NULL")}
    people |= {p for t in trades for p in (t.seller, t.buyer)}
    deployment = Deployment.read(settings.deployment_file)
    view = SimpleNamespace(  # what the mirror check reads of a workload
        c=Contracts(w3, deployment),
        deployment=deployment,
        w3=w3,
        people=[SimpleNamespace(address=Web3.to_checksum_address(p)) for p in people],
    )
    counts = assert_mirror_equals_chain(stack.engine, view)

    survived = [k for k in kills if k.recovered_s is not None]
    report = {
        "kills": len(kills),
        "survived": len(survived),
        "restarts": stack.restarts,
        "trades": len(trades),
        "settlements": len(settled_events),
        "penalised": sum(1 for e in settled_events if e["args"]["penalty"] > 0),
        "certificates": counts["certificates"],
        "recover_s": {k.target: k.recovered_s for k in kills},
        "kill_hours": {k.target: k.at_hour for k in kills},
        "simulated_hours": round((now - day_start) / 3600, 1),
        **stack.phases,
        "checks_s": round(time.monotonic() - started - sum(stack.phases.values()), 1),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print("\nchaos day:", json.dumps(report))
    assert len(survived) == len(kills), report
