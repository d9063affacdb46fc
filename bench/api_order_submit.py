"""POST /v1/trading/orders: wallet-signed orders accepted per second and p99 latency.

Each request is a distinct EIP-712-signed energy offer (signed before the clock starts) from
a SIWE wallet session; the indexer has caught up with the chain first (as in `make run`), so
the API reads nonce and funds from its mirror (and chain time from the node at most once a
second: backend/market/mirror_state.py); it verifies the signature, checks
period, gate closure and funds (for an offer: the seller's free market balance against the
collateral of its open offers; the wallet deposits enough first), and stores the order.
Baseline in the same run: a plain FastAPI endpoint that only recovers the signer and stores the
row (bench/_baseline_app.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.accounts.siwe import siwe_message
from backend.chain.deployment import Deployment
from backend.chain.transactions import send
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.market import orders as eip712
from bench._api import api_environment, serve
from bench._wrk import run_wrk
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from scripts.workload import anvil_account

CONNECTIONS, DURATION_S, PRESIGNED = 32, 5.0, 2_500
COLLATERAL = 10**9  # 1,000 gUSD: covers every presigned offer's collateral (~0.02 gUSD each)


def deposit_collateral(
    w3: Web3, settings: Settings, deployment: Deployment, wallet: LocalAccount
) -> None:
    """Mint COLLATERAL to `wallet` (the deployer mints GridUSD) and deposit it in the market."""
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
    wallet: LocalAccount, *, chain_id: int, market: str, start: int, expiry: int
) -> list[tuple[eip712.Order, str]]:
    meter = eip712.default_meter_id(wallet.address)
    signed = []
    for salt in range(PRESIGNED):
        order = eip712.Order(
            maker=wallet.address,
            side=eip712.SELL,
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
        signed.append((order, "0x" + eip712.sign_order(order, wallet.key, chain_id, market).hex()))
    return signed


def run() -> Iterator[dict[str, Any]]:
    with api_environment() as (settings, deployment):
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url))
        now = w3.eth.get_block("latest")["timestamp"]
        start = (now // eip712.SLOT_SECONDS + 8) * eip712.SLOT_SECONDS
        market = deployment.contracts["EnergyMarket"].address
        wallet = anvil_account(5)
        deposit_collateral(w3, settings, deployment, wallet)
        index_chain(settings, deployment)
        orders = presign(
            wallet, chain_id=deployment.chain_id, market=market, start=start, expiry=start - 1
        )
        with serve("backend.main:app", settings) as base:
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
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            account_id = httpx.get(f"{base}/v1/auth/me", headers=headers).json()["id"]

            def body(i: int) -> dict[str, Any]:
                order, sig = orders[i % PRESIGNED]
                return {
                    "side": "sell",
                    "product": "energy",
                    "delivery_start": order.deliveryStart,
                    "delivery_end": order.deliveryEnd,
                    "quantity_wh": order.quantityWh,
                    "price": order.price,
                    "expiry": order.expiry,
                    "meter_id": "0x" + order.meterId.hex(),
                    "nonce": order.nonce,
                    "salt": str(order.salt),
                    "signature": sig,
                }

            ours = run_wrk(
                f"{base}/v1/trading/orders",
                connections=CONNECTIONS,
                duration_s=DURATION_S,
                headers=headers,
                bodies=[json.dumps(body(i)) for i in range(PRESIGNED)],
            )
        accepted = ours["requests"] - ours["errors"]
        if ours["requests"] > PRESIGNED:
            raise RuntimeError(f"only {PRESIGNED} distinct orders were signed; raise PRESIGNED")
        orders = presign(
            anvil_account(6),
            chain_id=deployment.chain_id,
            market=market,
            start=start,
            expiry=start - 1,
        )
        with serve("bench._baseline_app:app", settings) as base:

            def baseline_body(i: int) -> dict[str, Any]:
                order, sig = orders[i % PRESIGNED]
                return {
                    "order": order.message(),
                    "signature": sig,
                    "chain_id": deployment.chain_id,
                    "market": market,
                    "account_id": account_id,
                    "meter_id": "0x" + order.meterId.hex(),
                }

            baseline = run_wrk(
                f"{base}/orders",
                connections=CONNECTIONS,
                duration_s=DURATION_S,
                bodies=[json.dumps(baseline_body(i)) for i in range(PRESIGNED)],
            )
    yield {
        "metric": "orders_per_s",
        "value": round(accepted / DURATION_S, 1),
        "unit": "orders/s",
        "errors": ours["errors"],
        "requests": ours["requests"],
        "connections": CONNECTIONS,
        "ratio_to_baseline": round(ours["rps"] / max(baseline["rps"], 1), 3),
    }
    yield {"metric": "p50_ms", "value": ours["p50_ms"], "unit": "ms"}
    yield {"metric": "p99_ms", "value": ours["p99_ms"], "unit": "ms"}
    yield {
        "metric": "baseline_orders_per_s",
        "value": baseline["rps"],
        "unit": "orders/s",
        "p99_ms": baseline["p99_ms"],
        "errors": baseline["errors"],
    }
