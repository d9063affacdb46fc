"""A simulated neighbourhood on an accelerated chain clock: `python -m scripts.neighbourhood`.

Who: solar prosumers (custodial; a rooftop PV device registered in the REC registry),
consumers (every third custodial, the others wallet users signing EIP-712 orders), a
community battery (buys midday surplus, sells in the evening) and an aggregator (buys the
prosumers' certificates and retires them for a beneficiary). Everything goes through the
REST API; the only other actors are the chain's own: the deployer funds accounts (ETH for
gas, gUSD minted) and the simulator moves Anvil's clock. The operator, as registrar, approves
each meter with its signing key (a demo key per meter, scripts/neighbourhood/meter_keys.py)
through the API, which sends `approveMeter` on chain.

The clock: every `sim_seconds_per_day / 96` wall seconds the chain jumps to the next
15-minute boundary (`evm_setNextBlockTimestamp` + `anvil_mine`), so chain time is simulated
time; services run with GRIDLEDGER_CLOCK=chain. At each boundary the ended slot's readings
go out: household (consumer) meters publish their own over MQTT (QoS 1) when a broker
answers, and the head-end (the operator account) posts the others in one REST bulk
request (all of them without a broker). Every meter signs its readings (EIP-712
`MeterReading`) with its own key, whose address the owner gives at registration and the
operator, as registrar, approves: only signed readings settle and issue. One meter goes
silent for half an hour a day; at
each hour
agents place orders for the hour after next, prosumers offer new certificates, the
aggregator buys and retires.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from sqlmodel import Session, select
from web3 import Web3
from web3.types import Nonce, RPCEndpoint

from backend.accounts.models import Account, Role
from backend.chain.deployment import Deployment
from backend.chain.transactions import send, signer
from backend.core.config import Settings
from backend.core.db import get_engine
from backend.core.errors import GridLedgerError
from backend.core.tls import http_verify, secure_mqtt
from indexer.models import DeviceStatus
from scripts.neighbourhood.client import ApiError, Participant
from scripts.neighbourhood.history import (
    Wh,
    backfill_readings,
    community_battery_wh,
    signed_reading,
)
from scripts.neighbourhood.meter_keys import meter_key
from scripts.neighbourhood.profiles import SLOT_SECONDS, Household, PvSystem
from scripts.neighbourhood.vpp import NeighbourhoodVpp

log = logging.getLogger("gridledger.neighbourhood")

HOUR = 3600
# What an agent's action may run into without stopping the neighbourhood: a refusal by the API,
# a timeout or dropped connection (the stack is busy or restarting), a chain RPC hiccup.
AGENT_ERRORS = (ApiError, httpx.HTTPError, OSError)
ORDER_LEAD_S = 2 * HOUR  # orders are placed for the hour after next
# After the last orders: keep the clock and meters going so every trade settles.
COOLDOWN_S = 4 * HOUR
GUSD = 10**6
# Each seller's market balance: the collateral its energy offers lock when they trade (a day of
# a prosumer's offers locks a few gUSD at the default 5 % tolerance and 20 % penalty).
COLLATERAL = 100 * GUSD
SELLERS = ("prosumer", "battery", "aggregator")  # the aggregator sells for its VPP
GRID_AREA = "GL-SIM"
TECHNOLOGY = "SOLAR_PV"


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MeterPublisher:
    """Household meters publishing `{root}/{region}/household/{meterId}/reading` at QoS 1."""

    def __init__(self, settings: Settings):
        self.root = settings.mqtt_topic_root
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"gridledger-sim-meters-{settings.sim_seed}-{id(self)}",
        )
        if settings.mqtt_username:
            self.client.username_pw_set(
                settings.mqtt_username, settings.mqtt_password.get_secret_value()
            )
        secure_mqtt(self.client, settings)
        self.client.connect(settings.mqtt_host, settings.mqtt_broker_port, keepalive=30)
        self.client.loop_start()

    def publish(self, reading: dict[str, Any]) -> None:
        topic = f"{self.root}/{GRID_AREA}/household/{reading['meterId']}/reading"
        self.client.publish(topic, orjson.dumps(reading), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def connect_publisher(settings: Settings) -> MeterPublisher | None:
    if not settings.sim_mqtt:
        return None
    try:
        return MeterPublisher(settings)
    except OSError as exc:
        log.info(
            "no MQTT broker at %s:%s (%s): every reading goes over REST",
            settings.mqtt_host,
            settings.mqtt_broker_port,
            exc,
        )
        return None


class ChainClock:
    """Simulated time is chain time; only the simulator moves it forward."""

    def __init__(self, w3: Web3):
        self.w3 = w3

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_to(self, moment: int) -> int:
        if self.now() < moment:
            self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [moment])
            self.w3.provider.make_request(RPCEndpoint("anvil_mine"), [1])
        return self.now()


@dataclass
class Agent:
    participant: Participant
    role: str  # prosumer | consumer | battery | aggregator
    household: Household | None = None
    pv: PvSystem | None = None
    optimism: float = 1.0  # offered / forecast export; > 1.05 means shortfalls and penalties
    meter_id: str | None = None
    meter_key: LocalAccount | None = None  # signs the meter's readings (demo key)
    # a home's battery and EV (run by the VPP) sit behind a meter of their own, never the PV
    # device's: REC issuance certifies the device meter's export as solar
    storage_meter_id: str | None = None
    device_id: int | None = None
    offered_certificates: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.participant.name

    @property
    def solar(self) -> PvSystem:
        """The rooftop PV system: prosumers have one."""
        if self.pv is None:
            raise GridLedgerError(f"{self.name} ({self.role}) has no PV system")
        return self.pv

    @property
    def home(self) -> Household:
        """The household load: prosumers and consumers have one."""
        if self.household is None:
            raise GridLedgerError(f"{self.name} ({self.role}) has no household")
        return self.household


@dataclass
class GridOperator(Participant):
    """The operator's session: signing in again (an expired token) re-runs the neighbourhood's
    bootstrap of the operator account instead of the participants' register-and-login."""

    bootstrap: Callable[[], object] | None = None

    def sign_in(self) -> None:
        if self.bootstrap is None:
            raise GridLedgerError("the grid operator signs in through the neighbourhood bootstrap")
        self.bootstrap()


@dataclass
class Battery:
    capacity_wh: int = 60_000
    soc_wh: int = 20_000
    charge_per_slot: int = 0
    discharge_per_slot: int = 0


@dataclass
class Stats:
    orders: int = 0
    rejected: int = 0
    readings: int = 0  # stored from REST
    verified: int = 0  # of those, verified (meter-signed)
    published: int = 0  # sent over MQTT
    rec_offers: int = 0
    claims: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, exc: Exception) -> None:
        self.rejected += 1
        if len(self.errors) < 50:
            self.errors.append(str(exc)[:240])
        log.warning("%s", exc)


class Neighbourhood:
    def __init__(self, settings: Settings, api_url: str):
        self.settings = settings
        self.seed = settings.sim_seed
        self.http = httpx.Client(base_url=api_url, timeout=60, verify=http_verify(settings))
        self.w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 60}))
        self.clock = ChainClock(self.w3)
        self.deployment = Deployment.read(settings.deployment_file)
        c = self.deployment.contracts
        self.token = self.w3.eth.contract(
            address=to_checksum_address(c["GridUSD"].address), abi=c["GridUSD"].abi
        )
        self.market_address = c["EnergyMarket"].address
        self.market = self.w3.eth.contract(
            address=to_checksum_address(self.market_address), abi=c["EnergyMarket"].abi
        )
        self.registry = self.w3.eth.contract(
            address=to_checksum_address(c["RECRegistry"].address), abi=c["RECRegistry"].abi
        )
        self.registry_address = self.registry.address
        self.deployer = signer(settings.deployer_private_key.get_secret_value())
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent")
        self.stats = Stats()
        self.battery = Battery()
        self.agents: list[Agent] = []
        self.operator = GridOperator(
            self.http, settings, "operator", bootstrap=self._bootstrap_operator
        )
        self.publisher = connect_publisher(settings)
        self._build_agents()
        self.vpp = NeighbourhoodVpp(self)
        self.vpp.plan_members()

    # --------------------------------------------------------------------- who is who

    def _wallet(self, name: str) -> LocalAccount:
        return EthAccount.from_key(keccak(text=f"gridledger-neighbourhood|{self.seed}|{name}"))

    def meter_key(self, agent: Agent) -> LocalAccount:
        """The key in the agent's meter (deterministic: the same neighbourhood, the same keys)."""
        return meter_key(self.seed, f"{agent.name}-meter")

    def storage_meter_key(self, agent: Agent) -> LocalAccount:
        """The key in the meter of the agent's home storage."""
        return meter_key(self.seed, f"{agent.name}-storage-meter")

    def _build_agents(self) -> None:
        rng = random.Random(f"agents|{self.seed}")
        for i in range(1, self.settings.sim_prosumers + 1):
            name = f"prosumer{i:02d}"
            self.agents.append(
                Agent(
                    Participant(self.http, self.settings, name),
                    "prosumer",
                    household=Household(name, annual_kwh=rng.randint(2_500, 5_000)),
                    pv=PvSystem(peak_w=rng.choice([4_000, 5_000, 6_000, 8_000, 10_000])),
                    optimism=1.25 if rng.random() < 0.2 else 0.9,
                )
            )
        for i in range(1, self.settings.sim_consumers + 1):
            name = f"consumer{i:02d}"
            wallet = None if i % 3 == 0 else self._wallet(name)
            self.agents.append(
                Agent(
                    Participant(self.http, self.settings, name, wallet),
                    "consumer",
                    household=Household(name, annual_kwh=rng.randint(2_000, 6_000)),
                )
            )
        self.agents.append(Agent(Participant(self.http, self.settings, "battery"), "battery"))
        self.agents.append(Agent(Participant(self.http, self.settings, "aggregator"), "aggregator"))

    def of_role(self, role: str) -> list[Agent]:
        return [a for a in self.agents if a.role == role]

    # ---------------------------------------------------------------------- set-up

    def setup(self) -> bool:
        """Accounts, funds, approvals, meters and devices; safe to repeat. True on a new chain."""
        fresh = self._bootstrap_operator()
        if fresh:
            now = self.clock.now()
            start = (now // 86_400) * 86_400 + self.settings.sim_start_hour_utc * HOUR
            if start <= now:
                start += 86_400
            self.clock.advance_to(start)
            log.info("new neighbourhood: chain clock moved to %s", iso(start))
        list(self.pool.map(lambda a: a.participant.sign_in(), self.agents))
        self._fund()
        list(self.pool.map(self._approve, self.agents))
        sellers = [a for a in self.agents if a.role in SELLERS and not self.vpp.is_member(a)]
        list(self.pool.map(self._deposit_collateral, sellers))  # the VPP sells for its members
        metered = [a for a in self.agents if a.role != "aggregator"]
        list(self.pool.map(self._register_meter, metered))
        homes = [a for a in self.of_role("prosumer") if self.vpp.storage_w(a)]
        list(self.pool.map(self._register_storage_meter, homes))
        for agent in self.of_role("prosumer"):
            self._register_device(agent)
        self.vpp.setup()
        backfill_readings(self)  # the week the VPP's demand forecast needs
        return fresh

    def _bootstrap_operator(self) -> bool:
        """The grid operator's account (operator + registrar roles): the one account the stack
        provisions itself, like a first superuser. It posts the head-end's meter readings."""
        reply = self.http.post(
            "/v1/auth/register",
            json={
                "email": self.operator.email,
                "password": "operator-sim",
                "display_name": "Grid operator (simulation)",
            },
        )
        fresh = reply.status_code == 201
        with Session(get_engine()) as session:
            account = session.exec(
                select(Account).where(Account.email == self.operator.email)
            ).one()
            account.roles = sorted(
                {Role.PARTICIPANT.value, Role.OPERATOR.value, Role.REGISTRAR.value}
            )
            session.add(account)
            session.commit()
        tokens = self.http.post(
            "/v1/auth/login", json={"email": self.operator.email, "password": "operator-sim"}
        )
        if tokens.status_code != 200:
            raise ApiError("POST", "/v1/auth/login", tokens)
        self.operator.headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        return fresh

    def _fund(self) -> None:
        """ETH for gas, gUSD for buyers and sellers' collateral, from the deployer (GridUSD
        minter)."""
        nonce: int = self.w3.eth.get_transaction_count(self.deployer.address, "pending")
        hashes = []
        for agent in self.agents:
            address = Web3.to_checksum_address(agent.participant.address)
            if self.w3.eth.get_balance(address) < 10**18:
                hashes.append(
                    self._send_deployer({"to": address, "value": 10 * 10**18, "gas": 21_000}, nonce)
                )
                nonce += 1
            if (
                agent.role != "prosumer"
                and self.token.functions.balanceOf(address).call() < 100 * GUSD
            ):
                call = self.token.functions.mint(address, 10_000 * GUSD).build_transaction(
                    {"from": self.deployer.address, "gas": 100_000, "nonce": Nonce(nonce)}
                )
                hashes.append(self._send_deployer(dict(call), nonce))
                nonce += 1
            seller = agent.role in SELLERS and not self.vpp.is_member(agent)
            if seller and not self._has_collateral(address):
                call = self.token.functions.mint(address, COLLATERAL).build_transaction(
                    {"from": self.deployer.address, "gas": 100_000, "nonce": Nonce(nonce)}
                )
                hashes.append(self._send_deployer(dict(call), nonce))
                nonce += 1
        for tx_hash in hashes:
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)

    def _send_deployer(self, tx: dict[str, Any], nonce: int) -> HexBytes:
        tx = {
            **tx,
            "nonce": nonce,
            "chainId": self.w3.eth.chain_id,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
        tx.pop("from", None)
        return self.w3.eth.send_raw_transaction(self.deployer.sign_transaction(tx).raw_transaction)

    def _approve(self, agent: Agent) -> None:
        address = Web3.to_checksum_address(agent.participant.address)
        if self.token.functions.allowance(address, self.market_address).call() > 2**200:
            return
        wallet = agent.participant.wallet
        if wallet is None:
            agent.participant.request("POST", "/v1/trading/approvals")
        else:
            send(
                self.w3,
                wallet,
                {
                    "to": self.token.address,
                    "data": self.token.encode_abi("approve", [self.market_address, 2**256 - 1]),
                },
            )

    def _has_collateral(self, address: str) -> bool:
        return int(self.market.functions.balanceOf(address).call()) >= COLLATERAL // 2

    def _deposit_collateral(self, agent: Agent) -> None:
        """A seller deposits COLLATERAL into its market balance (once: safe to repeat)."""
        address = Web3.to_checksum_address(agent.participant.address)
        if self._has_collateral(address):
            return
        wallet = agent.participant.wallet
        if wallet is None:
            agent.participant.request(
                "POST", "/v1/energy/deposits", json={"amount": str(COLLATERAL)}
            )
        else:
            send(
                self.w3,
                wallet,
                {
                    "to": self.market.address,
                    "data": self.market.encode_abi("deposit", [COLLATERAL]),
                },
            )

    def _register_meter(self, agent: Agent) -> None:
        """The owner registers the meter with its key's address; the operator, as registrar,
        approves the declared capacity and that key, in the database and on chain (the API
        sends `approveMeter`; again on a re-run: idempotent)."""
        kind = {"prosumer": "both", "consumer": "import", "battery": "both"}[agent.role]
        capacity = agent.pv.peak_w if agent.pv else 30_000  # its PV, or the building's connection
        agent.meter_key = self.meter_key(agent)
        agent.meter_id = self._approved_meter(
            agent, f"{agent.name}-meter", kind, capacity, agent.meter_key
        )

    def _register_storage_meter(self, agent: Agent) -> None:
        """The meter of a home's battery and EV (their rated power), approved like the others;
        no REC device sits on it, and the VPP's storage resources are registered behind it."""
        agent.storage_meter_id = self._approved_meter(
            agent,
            f"{agent.name}-storage-meter",
            "both",
            self.vpp.storage_w(agent),
            self.storage_meter_key(agent),
        )

    def _approved_meter(
        self, agent: Agent, name: str, kind: str, capacity: int, key: LocalAccount
    ) -> str:
        reply = agent.participant.request(
            "POST",
            "/v1/meters",
            ok=(409,),
            json={"name": name, "kind": kind, "capacity_w": capacity, "signing_key": key.address},
        )
        meter_id: str = reply["meter_id"]
        self.operator.request(
            "POST",
            f"/v1/meters/{meter_id}/approval",
            json={"capacity_w": capacity, "signing_key": key.address},
        )
        return meter_id

    def _register_device(self, agent: Agent) -> None:
        mine = agent.participant.request(
            "GET", "/v1/recs/devices", params={"owner": agent.participant.address}
        )
        if mine["items"]:
            device = mine["items"][0]
            agent.device_id = device["device_id"]
            if device["status"] == DeviceStatus.APPROVED:
                return
        else:
            accepted = agent.participant.request(
                "POST",
                "/v1/recs/devices",
                json={
                    "technology": TECHNOLOGY,
                    "capacity_w": agent.solar.peak_w,
                    "grid_area": GRID_AREA,
                    # the start's hour: the backfilled past (history.py) issues nothing
                    "commissioned_at": self.clock.now() // HOUR * HOUR,
                    "meter_id": agent.meter_id,
                },
            )
            agent.device_id = int(accepted["id"])
        self.operator.request("POST", f"/v1/recs/devices/{agent.device_id}/approve")

    # ------------------------------------------------------------------ the meters

    def export_forecast(self, agent: Agent, start: int, end: int) -> int:
        return sum(
            max(
                agent.solar.generation_wh(s, seed=self.seed, household=agent.name)
                - agent.home.consumption_wh(s, seed=self.seed),
                0,
            )
            for s in range(start, end, SLOT_SECONDS)
        )

    def offline(self, agent: Agent, slot: int) -> bool:
        """The second prosumer's meter loses its link 12:00-12:30 UTC every day: those slots
        never report, settle as zero delivered after the missing-data deadline, and the hour's
        certificate is issued late from the quarters that did report."""
        prosumers = self.of_role("prosumer")
        return (
            len(prosumers) > 1
            and agent is prosumers[1]
            and 12 * HOUR <= slot % 86_400 < 12 * HOUR + 1_800
        )

    def home_wh(self, agent: Agent, slot: int) -> tuple[int, int] | None:
        """(import, export) Wh of a home's meter in a slot; None while the meter is silent. A
        prosumer's is the PV device's meter: its PV and the home's load only."""
        if self.offline(agent, slot):
            return None
        if agent.role == "prosumer":
            generated = agent.solar.generation_wh(slot, seed=self.seed, household=agent.name)
            net = generated - agent.home.consumption_wh(slot, seed=self.seed)
            return max(-net, 0), max(net, 0)
        return agent.home.consumption_wh(slot, seed=self.seed), 0

    def past_wh(self, agent: Agent) -> Wh:
        """What the agent's meter measured in a slot before the start (history.py)."""
        if agent.role == "battery":
            return community_battery_wh
        return lambda slot: self.home_wh(agent, slot)

    def readings(
        self, slot: int, roles: tuple[str, ...] = ("prosumer", "consumer", "battery")
    ) -> list[dict[str, Any]]:
        rows = []
        for agent in self.agents:
            if agent.meter_id is None or agent.role not in roles:
                continue
            if agent.role == "battery":
                wh: tuple[int, int] | None = (
                    self.battery.charge_per_slot,
                    self.battery.discharge_per_slot,
                )
            else:
                wh = self.home_wh(agent, slot)
            if wh is None:
                continue
            rows.append(self.signed(agent.meter_id, self.meter_key(agent), slot, *wh))
            if agent.storage_meter_id is not None:  # its battery or EV, as the VPP runs them
                fed = self.vpp.fed.get(agent.name, 0)
                rows.append(
                    self.signed(
                        agent.storage_meter_id,
                        self.storage_meter_key(agent),
                        slot,
                        max(-fed, 0),
                        max(fed, 0),
                    )
                )
        return rows

    def signed(
        self, meter_id: str, key: LocalAccount, slot: int, import_wh: int, export_wh: int
    ) -> dict[str, Any]:
        """One meter's reading of a slot, signed with the meter's key."""
        return signed_reading(
            meter_id,
            key,
            slot,
            import_wh,
            export_wh,
            chain_id=self.deployment.chain_id,
            registry=self.registry_address,
        )

    def post_readings(self, slot: int) -> None:
        self.vpp.report(slot)
        if self.publisher is not None:
            for reading in self.readings(slot, ("consumer",)):
                self.publisher.publish(reading)
                self.stats.published += 1
            rest = self.readings(slot, ("prosumer", "battery"))
        else:
            rest = self.readings(slot)
        result = self.operator.request("POST", "/v1/energy/readings/bulk", json=rest)
        self.stats.readings += result["accepted"] + result["corrected"]
        self.stats.verified += result["verified"]
        if result["rejected"]:
            log.warning(
                "slot %s: %s readings rejected: %s",
                iso(slot),
                result["rejected"],
                result["rejections"][:3],
            )

    # ------------------------------------------------------------------ the market

    def _order(self, agent: Agent, **terms: Any) -> None:
        try:
            agent.participant.place_order(**terms)
            self.stats.orders += 1
        except AGENT_ERRORS as exc:
            self.stats.fail(exc)

    def energy_orders(self, start: int) -> list[tuple[Agent, dict[str, Any]]]:
        """What everyone offers and bids for the hour starting at `start`."""
        end = start + HOUR
        rng = random.Random(f"orders|{self.seed}|{start}")
        common = {
            "product": "energy",
            "delivery_start": start,
            "delivery_end": end,
            "expiry": start - 1,
        }
        orders: list[tuple[Agent, dict[str, Any]]] = []
        for agent in self.of_role("prosumer"):
            if self.vpp.is_member(agent):
                continue  # the VPP sells its members' export
            offered = int(self.export_forecast(agent, start, end) * agent.optimism)
            if offered >= 100:
                orders.append(
                    (
                        agent,
                        {
                            **common,
                            "side": "sell",
                            "quantity_wh": offered,
                            "price": rng.randrange(70_000, 115_000, 1_000),
                            "meter_id": agent.meter_id,
                        },
                    )
                )
        for agent in self.of_role("consumer"):
            need = sum(
                agent.home.consumption_wh(s, seed=self.seed)
                for s in range(start, end, SLOT_SECONDS)
            )
            orders.append(
                (
                    agent,
                    {
                        **common,
                        "side": "buy",
                        "quantity_wh": max(int(need * rng.uniform(0.4, 0.8)), 50),
                        "price": rng.randrange(90_000, 150_000, 1_000),
                        "meter_id": agent.meter_id,
                    },
                )
            )
        battery = self.of_role("battery")[0]
        hour = (start % 86_400) // HOUR
        if 9 <= hour <= 14:
            orders.append(
                (
                    battery,
                    {
                        **common,
                        "side": "buy",
                        "quantity_wh": 8_000,
                        "price": 100_000,
                        "meter_id": battery.meter_id,
                    },
                )
            )
        elif 17 <= hour <= 21 and not self.vpp.is_member(battery):
            orders.append(
                (
                    battery,
                    {
                        **common,
                        "side": "sell",
                        "quantity_wh": 6_000,
                        "price": 125_000,
                        "meter_id": battery.meter_id,
                    },
                )
            )
        return orders

    def battery_hour(self, start: int) -> None:
        """The battery charges what it bought for this hour and delivers what it sold (as far as
        its charge goes): its meter readings for the hour's four slots. A battery the VPP's
        device runs follows the VPP's schedule instead (`NeighbourhoodVpp.run_devices`)."""
        battery = self.of_role("battery")[0]
        if self.vpp.drives(battery):
            return
        mine = battery.participant.request("GET", "/v1/trading/orders", params={"limit": 500})[
            "items"
        ]
        bought = sum(
            int(o["filled_wh"]) for o in mine if o["delivery_start"] == start and o["side"] == "buy"
        )
        sold = sum(
            int(o["filled_wh"])
            for o in mine
            if o["delivery_start"] == start and o["side"] == "sell"
        )
        state = self.battery
        if self.vpp.is_member(battery) and 17 <= (start % 86_400) // HOUR <= 21:
            sold = 6_000  # the VPP's evening discharge (its aggregator sells it)
        charge = min(bought, state.capacity_wh - state.soc_wh)
        discharge = min(sold, state.soc_wh + charge)
        state.soc_wh += charge - discharge
        state.charge_per_slot, state.discharge_per_slot = charge // 4, discharge // 4

    def certificates(self, start: int) -> None:
        """Some prosumers offer their new certificates; the aggregator bids for each one,
        then retires (claims) whatever it holds for the neighbourhood school."""
        rng = random.Random(f"recs|{self.seed}|{start}")
        prosumers = self.of_role("prosumer")
        sellers = rng.sample(prosumers, k=max(1, len(prosumers) // 3))
        prices = {agent.name: rng.randrange(10_000, 15_000, 500) for agent in sellers}
        list(
            self.pool.map(lambda agent: self.offer_certificates(agent, prices[agent.name]), sellers)
        )
        self.retire_certificates(start)

    def offer_certificates(self, agent: Agent, price: int) -> None:
        aggregator = self.of_role("aggregator")[0]
        try:
            held = agent.participant.request(
                "GET",
                "/v1/recs/certificates",
                params={"holder": agent.participant.address, "limit": 50},
            )["items"]
        except AGENT_ERRORS as exc:
            self.stats.fail(exc)
            return
        for cert in held:
            if cert["certificate_id"] in agent.offered_certificates or int(cert["supply_wh"]) < 1:
                continue
            agent.offered_certificates.add(cert["certificate_id"])
            terms = {
                "product": "rec",
                "asset_id": cert["certificate_id"],
                "quantity_wh": cert["volume_wh"],
            }
            self._order(agent, side="sell", price=price, **terms)
            self._order(aggregator, side="buy", price=15_000, **terms)
            self.stats.rec_offers += 1

    def retire_certificates(self, start: int) -> None:
        """The aggregator claims, one transaction at a time (one custodial key), what it holds."""
        aggregator = self.of_role("aggregator")[0].participant
        try:
            held = aggregator.request(
                "GET", "/v1/recs/certificates", params={"holder": aggregator.address, "limit": 100}
            )["items"]
            for cert in held:
                detail = aggregator.request(
                    "GET", f"/v1/recs/certificates/{cert['certificate_id']}"
                )
                amount = int(detail["holders"].get(aggregator.address.lower(), 0))
                if amount > 0:
                    aggregator.request(
                        "POST",
                        f"/v1/recs/certificates/{cert['certificate_id']}/claim",
                        json={
                            "amount_wh": amount,
                            "beneficiary": "Neighbourhood primary school",
                            "purpose": "24/7 matched renewable electricity",
                            "consumption_start": cert["period_start"],
                            "consumption_end": cert["period_end"],
                            "location": GRID_AREA,
                        },
                    )
                    self.stats.claims += 1
        except AGENT_ERRORS as exc:
            self.stats.fail(exc)

    def hour(self, start: int, trading: bool) -> None:
        try:
            self.battery_hour(start)
        except AGENT_ERRORS as exc:
            self.stats.fail(exc)
        if trading:
            list(
                self.pool.map(
                    lambda pair: self._order(pair[0], **pair[1]),
                    self.energy_orders(start + ORDER_LEAD_S),
                )
            )
            try:
                self.stats.orders += self.vpp.trade(start, start + ORDER_LEAD_S + HOUR)
            except AGENT_ERRORS as exc:
                self.stats.fail(exc)
        self.certificates(start)

    # ------------------------------------------------------------------ the loop

    def run(self, hours: float = 0, status: Callable[[int, Stats], None] | None = None) -> None:
        """Step the clock slot by slot; `hours` > 0: trade that long, then cool down and return."""
        tick = self.settings.sim_seconds_per_day / (86_400 / SLOT_SECONDS)
        began = self.clock.now()
        trade_until = began + hours * HOUR if hours else None
        stop_at = trade_until + COOLDOWN_S if trade_until else None
        deadline = time.monotonic()
        while True:
            now = self.clock.now()
            slot = (now // SLOT_SECONDS + 1) * SLOT_SECONDS
            if stop_at is not None and slot > stop_at:
                return
            deadline += tick
            time.sleep(max(deadline - time.monotonic(), 0))
            self.clock.advance_to(slot)
            try:
                self.post_readings(slot - SLOT_SECONDS)
            except AGENT_ERRORS as exc:
                self.stats.fail(exc)
            if slot % HOUR == 0:
                self.hour(slot, trading=trade_until is None or slot < trade_until)
            try:
                self.vpp.deliver(slot)
            except AGENT_ERRORS as exc:
                self.stats.fail(exc)
            if status:
                status(slot, self.stats)
            if time.monotonic() > deadline + 5 * tick:
                deadline = time.monotonic()  # fell behind: slow the clock rather than rush it
