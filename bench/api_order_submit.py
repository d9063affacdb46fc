"""POST /v1/trading/orders: wallet-signed orders accepted per second and p99 latency.

Each request is a distinct EIP-712-signed energy offer (signed before the clock starts) from
a SIWE wallet session; the indexer has caught up with the chain first (as in `make run`), so
the API reads nonce and funds from its mirror (and chain time from the node at most once a
second: backend/market/mirror_state.py); it verifies the signature, checks
period, gate closure and funds (for an offer: the seller's free market balance against the
collateral of its open offers; the wallet deposits enough first), and stores the order.
Baseline in the same run: a plain FastAPI endpoint that only recovers the signer and stores the
row (bench/_baseline_app.py), and the floor: the same wrk load against an endpoint that does
nothing (`floor_*`). Each is measured with 1 and with 2 API worker processes (`*_2_workers`:
what a second core or machine buys). One wallet sends every order with one worker; with two,
MAKERS_2_WORKERS wallets take turns (one maker's orders are checked and stored under its
advisory lock, so a single maker would keep the two workers' writers waiting on each other,
which is not what a second worker is for).

`bid_orders_per_s` (`bid_p99_ms`, `bid_api_cpu_ms_per_order`): the same with wallet-signed
bids, one worker. A bid is checked against the wallet's GridUSD balance and its allowance to
the market (approved for a finite amount, so the mirror counts it down), both from the mirror,
with what the wallet's open bids already reserve; the batched writer stores it like an offer.

`orders_per_s_64c` (`p99_ms_64c`, `api_cpu_ms_per_order_64c`, `orders_per_batch_64c`,
`batch_cycle_ms_64c`): one worker with WIDE_CONNECTIONS instead of 32, whether the writer waits
for input at 32.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from coincurve import PrivateKey
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy import text
from web3 import Web3
from web3.types import RPCEndpoint

from backend.accounts.siwe import siwe_message
from backend.chain.deployment import Deployment
from backend.chain.transactions import send
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.market import order_publisher, order_writer
from backend.market import orders as eip712
from bench._api import api_environment, serve, serve_process
from bench._cpu import cpu_s_of, process_tree
from bench._wrk import WrkResult, run_wrk
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from scripts.workload import anvil_account

CONNECTIONS, DURATION_S, PRESIGNED = 32, 5.0, 24_000
WARMUP = 1_000  # orders sent before the clock starts: every worker has its connections open
COLLATERAL = 10**10  # 10,000 gUSD: covers every presigned offer's collateral (~0.02 gUSD each)
MAKERS_2_WORKERS = 8  # wallets taking turns in the 2-worker run
WIDE_CONNECTIONS = 64  # the `*_64c` run: one worker, more requests in flight
FIRST_EXTRA_WALLET = 10  # mnemonic indexes 10, 11, ...: wallets Anvil did not fund (gas given)


def deposit_collateral(
    w3: Web3,
    settings: Settings,
    deployment: Deployment,
    wallet: LocalAccount,
    *,
    deposit: bool = True,
) -> None:
    """Mint COLLATERAL to `wallet` (the deployer mints GridUSD), approve it to the market and
    deposit it there (without `deposit`: a bidder's funds, left in its wallet)."""
    token, market = (
        w3.eth.contract(
            address=Web3.to_checksum_address(deployment.contracts[name].address),
            abi=deployment.contracts[name].abi,
        )
        for name in ("GridUSD", "EnergyMarket")
    )
    deployer = EthAccount.from_key(settings.deployer_private_key.get_secret_value())
    for sender, contract, call, args in (
        (deployer, token, "mint", [wallet.address, COLLATERAL]),
        (wallet, token, "approve", [market.address, COLLATERAL]),
        (wallet, market, "deposit", [COLLATERAL]),
    ):
        if call != "deposit" or deposit:
            send(w3, sender, {"to": contract.address, "data": contract.encode_abi(call, args)})


def index_chain(settings: Settings, deployment: Deployment) -> None:
    """Run the indexer until it has caught up with the chain, as `make run`'s indexer would
    have: intake reads the wallet's nonce, free balance and the settlement terms from its
    mirror (the load itself mines no block, so the mirror stays current)."""
    engine = make_engine(settings.database_url)
    rpc = RpcClient(settings.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=5, max_delay_s=0.5))
    indexer = Indexer(engine, rpc, deployment, IndexerConfig(confirmation_depth=0))
    for _ in range(10_000):
        if indexer.step() == 0:
            break
    engine.dispose()


def presign(
    wallet: LocalAccount,
    *,
    chain_id: int,
    market: str,
    start: int,
    expiry: int,
    first_salt: int = 0,
    count: int = PRESIGNED,
    side: int = eip712.SELL,
) -> list[tuple[eip712.Order, str]]:
    """`count` distinct offers (bids with `side`; salts from `first_salt`), signed with
    libsecp256k1 directly (eth-account's signing would take minutes for this many; the
    signatures are the same)."""
    meter = eip712.default_meter_id(wallet.address)
    key = PrivateKey(bytes(wallet.key))
    signed = []
    for salt in range(first_salt, first_salt + count):
        order = eip712.Order(
            maker=wallet.address,
            side=side,
            product=eip712.ENERGY,
            assetId=0,
            meterId=meter,
            quantityWh=1_000 + salt % 97,
            price=100_000 + salt % 50,
            deliveryStart=start,
            deliveryEnd=start + eip712.SLOT_SECONDS,
            expiry=expiry,
            nonce=0,
            salt=salt,
        )
        rsv = key.sign_recoverable(eip712.order_digest(order, chain_id, market), hasher=None)
        signed.append((order, "0x" + (rsv[:64] + bytes([rsv[64] + 27])).hex()))
    return signed


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its children (uvicorn's workers), now."""
    return sum(cpu_s_of(each) for each in process_tree(pid))


def load(
    url: str, bodies: list[str], headers: dict[str, str] | None = None, *, distinct: bool = True
) -> WrkResult:
    """wrk's figures for POSTing `bodies` (each once when `distinct`; the floor reuses them),
    after a one-second warm-up with the first WARMUP of them (not counted)."""
    return load_measured(url, bodies, headers, distinct=distinct)[0]


def load_measured(
    url: str,
    bodies: list[str],
    headers: dict[str, str] | None = None,
    *,
    distinct: bool = True,
    server_pid: int | None = None,
    authorizations: list[str] | None = None,
    connections: int = CONNECTIONS,
) -> tuple[WrkResult, float]:
    """`load`, and the server's CPU seconds during the measured run (with `server_pid`): on a
    loaded machine CPU per order compares two versions more steadily than orders per second.
    `authorizations`: each body's own Authorization header (several makers' orders)."""
    auth = authorizations or []
    run_wrk(
        url,
        connections=connections,
        duration_s=1,
        headers=headers,
        bodies=bodies[:WARMUP],
        body_headers=("Authorization", auth[:WARMUP]) if auth else None,
    )
    bodies = bodies[WARMUP:]
    before = cpu_seconds(server_pid) if server_pid else 0.0
    result = run_wrk(
        url,
        connections=connections,
        duration_s=DURATION_S,
        headers=headers,
        bodies=bodies,
        body_headers=("Authorization", auth[WARMUP:]) if auth else None,
    )
    cpu = cpu_seconds(server_pid) - before if server_pid else 0.0
    if distinct and result["requests"] > len(bodies):
        raise RuntimeError(f"only {len(bodies)} distinct orders were signed; raise PRESIGNED")
    return result, cpu


def figures(
    name: str,
    ours: WrkResult,
    baseline: WrkResult,
    floor: WrkResult,
    cpu_s: float = 0.0,
    makers: int = 1,
) -> list[dict[str, Any]]:
    """The JSON lines of one worker count (`name`: "" or "_2_workers")."""
    return [
        {
            "metric": f"orders_per_s{name}",
            "value": round((ours["requests"] - ours["errors"]) / DURATION_S, 1),
            "unit": "orders/s",
            "errors": ours["errors"],
            "requests": ours["requests"],
            "connections": CONNECTIONS,
            "makers": makers,
            "ratio_to_baseline": round(ours["rps"] / max(baseline["rps"], 1), 3),
            "ratio_to_floor": round(ours["rps"] / max(floor["rps"], 1), 3),
        },
        {"metric": f"p50_ms{name}", "value": ours["p50_ms"], "unit": "ms"},
        {
            "metric": f"api_cpu_ms_per_order{name}",
            "value": round(1000 * cpu_s / max(ours["requests"] - ours["errors"], 1), 3),
            "unit": "ms",
        },
        {"metric": f"p99_ms{name}", "value": ours["p99_ms"], "unit": "ms"},
        {
            "metric": f"baseline_orders_per_s{name}",
            "value": baseline["rps"],
            "unit": "orders/s",
            "p99_ms": baseline["p99_ms"],
            "errors": baseline["errors"],
        },
        {
            "metric": f"floor_requests_per_s{name}",
            "value": floor["rps"],
            "unit": "requests/s",
            "p99_ms": floor["p99_ms"],
            "errors": floor["errors"],
        },
    ]


def run() -> Iterator[dict[str, Any]]:
    with api_environment() as (settings, deployment):
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url))
        now = w3.eth.get_block("latest")["timestamp"]
        start = (now // eip712.SLOT_SECONDS + 8) * eip712.SLOT_SECONDS
        market = deployment.contracts["EnergyMarket"].address
        wallet = anvil_account(5)
        extra = [anvil_account(FIRST_EXTRA_WALLET + i) for i in range(MAKERS_2_WORKERS - 1)]
        for each in extra:  # gas for approve and deposit
            w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [each.address, hex(10**20)])
        for each in (wallet, *extra):
            deposit_collateral(w3, settings, deployment, each)
        bidder = anvil_account(7)
        deposit_collateral(w3, settings, deployment, bidder, deposit=False)
        index_chain(settings, deployment)
        # every order for the slot at `start`, expiring just before it
        sign = partial(
            presign, chain_id=deployment.chain_id, market=market, start=start, expiry=start - 1
        )
        bids = sign(bidder, side=eip712.BUY)
        with serve_process("backend.main:app", settings) as (base, server):
            bid_figures = figures_of_bids(
                *load_measured(
                    f"{base}/v1/trading/orders",
                    [json.dumps(order_body(order, sig)) for order, sig in bids],
                    sign_in(base, settings, bidder),
                    server_pid=server.pid,
                )
            )
        ours: dict[int, WrkResult] = {}
        baseline: dict[int, WrkResult] = {}
        floor: dict[int, WrkResult] = {}
        cpu: dict[int, float] = {}  # the API's CPU seconds in the measured run
        account_id = ""
        for workers in (1, 2):
            makers = [wallet] if workers == 1 else [wallet, *extra]
            per_maker = [
                sign(maker, first_salt=workers * PRESIGNED, count=PRESIGNED // len(makers))
                for maker in makers
            ]
            with serve_process("backend.main:app", settings, workers=workers) as (base, server):
                sessions = [sign_in(base, settings, maker)["Authorization"] for maker in makers]
                headers = {"Authorization": sessions[0]}
                account_id = httpx.get(f"{base}/v1/auth/me", headers=headers).json()["id"]
                # the makers take turns, order by order
                turns = [
                    (json.dumps(order_body(*signed[i])), sessions[m])
                    for i in range(PRESIGNED // len(makers))
                    for m, signed in enumerate(per_maker)
                ]
                ours[workers], cpu[workers] = load_measured(
                    f"{base}/v1/trading/orders",
                    [body for body, _ in turns],
                    headers,
                    server_pid=server.pid,
                    authorizations=[auth for _, auth in turns] if len(makers) > 1 else None,
                )
                if workers == 1:  # does the writer wait for input at 32 connections?
                    more = sign(wallet, first_salt=3 * PRESIGNED)
                    stored_before = batches_stored(settings)
                    pg_before = writer_backends_cpu_s(settings)
                    wide = load_measured(
                        f"{base}/v1/trading/orders",
                        [json.dumps(order_body(*signed)) for signed in more],
                        headers,
                        server_pid=server.pid,
                        connections=WIDE_CONNECTIONS,
                    )
                    wide_batches = batches_stored(settings, after=stored_before)
                    wide_pg_cpu_s = writer_backends_cpu_s(settings) - pg_before
        for workers in (1, 2):
            orders = presign(
                anvil_account(6),
                chain_id=deployment.chain_id,
                market=market,
                start=start,
                expiry=start - 1,
                first_salt=workers * PRESIGNED,
            )
            bodies = [
                json.dumps(
                    {
                        "order": order.message(),
                        "signature": sig,
                        "chain_id": deployment.chain_id,
                        "market": market,
                        "account_id": account_id,
                        "meter_id": "0x" + order.meterId.hex(),
                    }
                )
                for order, sig in orders
            ]
            with serve("bench._baseline_app:app", settings, workers=workers) as base:
                baseline[workers] = load(f"{base}/orders", bodies)
                floor[workers] = load(f"{base}/nothing", bodies, distinct=False)
    yield from figures("", ours[1], baseline[1], floor[1], cpu[1])
    yield from figures("_2_workers", ours[2], baseline[2], floor[2], cpu[2], MAKERS_2_WORKERS)
    yield from figures_of_wide(*wide, wide_batches, wide_pg_cpu_s)
    yield from bid_figures


def figures_of_wide(
    ours: WrkResult, cpu_s: float, batches: tuple[int, int], pg_cpu_s: float
) -> list[dict[str, Any]]:
    """The JSON lines of the 1-worker run with WIDE_CONNECTIONS (`*_64c`): more requests in
    flight than the writer's batches take at 32, and the writer's batches (`orders_per_batch`,
    `batch_cycle_ms`: its cycle; `pg_writer_cpu_ms_per_order`: the CPU of the writer's and the
    publisher's PostgreSQL backends; from the batches stored during the run and its warm-up)."""
    orders, count = batches
    per_batch = orders / max(count, 1)
    per_s = (ours["requests"] - ours["errors"]) / DURATION_S
    return [
        *run_lines(ours, cpu_s, suffix="_64c", connections=WIDE_CONNECTIONS),
        {"metric": "orders_per_batch_64c", "value": round(per_batch, 1), "unit": "orders"},
        {
            "metric": "pg_writer_cpu_ms_per_order_64c",
            "value": round(1000 * pg_cpu_s / max(orders, 1), 3),
            "unit": "ms",
        },
        {
            "metric": "batch_cycle_ms_64c",
            "value": round(1000 * per_batch / max(per_s, 1), 1),
            "unit": "ms",
        },
    ]


def batches_stored(settings: Settings, after: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(orders, batches) stored so far, less `after`: a batch's orders share their created_at."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            orders, batches = connection.execute(
                text("SELECT count(*), count(DISTINCT created_at) FROM signed_orders")
            ).one()
    finally:
        engine.dispose()
    return orders - after[0], batches - after[1]


def writer_backends_cpu_s(settings: Settings) -> float:
    """CPU seconds of the PostgreSQL backends of the order writers and publishers now (the
    server runs on this machine: their /proc entries)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = ANY(:names)"),
                {"names": [order_writer.APPLICATION_NAME, order_publisher.APPLICATION_NAME]},
            ).scalars()
            return sum(cpu_seconds(pid) for pid in pids)
    finally:
        engine.dispose()


def figures_of_bids(bids: WrkResult, cpu_s: float) -> list[dict[str, Any]]:
    """The JSON lines of the bids' run (one worker)."""
    return run_lines(bids, cpu_s, prefix="bid_", connections=CONNECTIONS)


def run_lines(
    ours: WrkResult, cpu_s: float, *, prefix: str = "", suffix: str = "", connections: int
) -> list[dict[str, Any]]:
    """`{prefix}orders_per_s{suffix}`, `..p99_ms..` and `..api_cpu_ms_per_order..` of a run."""
    stored = ours["requests"] - ours["errors"]
    return [
        {
            "metric": f"{prefix}orders_per_s{suffix}",
            "value": round(stored / DURATION_S, 1),
            "unit": "orders/s",
            "errors": ours["errors"],
            "requests": ours["requests"],
            "connections": connections,
        },
        {"metric": f"{prefix}p99_ms{suffix}", "value": ours["p99_ms"], "unit": "ms"},
        {
            "metric": f"{prefix}api_cpu_ms_per_order{suffix}",
            "value": round(1000 * cpu_s / max(stored, 1), 3),
            "unit": "ms",
        },
    ]


def sign_in(base: str, settings: Settings, wallet: LocalAccount) -> dict[str, str]:
    """The Authorization header of a SIWE session of `wallet`."""
    nonce = httpx.get(f"{base}/v1/auth/siwe/nonce").json()["nonce"]
    message = siwe_message(
        uri=base,
        chain_id=settings.chain_id,
        address=wallet.address,
        nonce=nonce,
        issued_at=datetime.now(UTC),
    )
    signature = EthAccount.sign_message(encode_defunct(text=message), wallet.key).signature
    tokens = httpx.post(
        f"{base}/v1/auth/siwe/verify",
        json={"message": message, "signature": "0x" + bytes(signature).hex()},
    ).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def order_body(order: eip712.Order, signature: str) -> dict[str, Any]:
    return {
        "side": "buy" if order.side == eip712.BUY else "sell",
        "product": "energy",
        "delivery_start": order.deliveryStart,
        "delivery_end": order.deliveryEnd,
        "quantity_wh": order.quantityWh,
        "price": order.price,
        "expiry": order.expiry,
        "meter_id": "0x" + order.meterId.hex(),
        "nonce": order.nonce,
        "salt": str(order.salt),
        "signature": signature,
    }
