"""The contracts on a real node: wallet signatures from eth_signTypedData_v4, and
`ape run deploy`."""

from __future__ import annotations

import json
import os
import subprocess

from backend.core.config import PROJECT_ROOT
from backend.market.orders import SELL, default_meter_id, sign_order, typed_data


def test_order_signed_by_the_node_wallet_is_filled(devnet):
    workload = devnet.workload
    seller, buyer = workload.people[0], workload.people[1]
    offer = workload.order(seller, SELL, quantity=4_000)
    document = typed_data(offer, workload.chain_id, workload.c.market.address)
    # Anvil holds the seller's key like a browser wallet does and signs the v4 document.
    wallet_signature = devnet.node.request(
        "eth_signTypedData_v4", [seller.address, json.dumps(document)]
    )
    assert bytes.fromhex(wallet_signature[2:]) == sign_order(
        offer, seller.key, workload.chain_id, workload.c.market.address
    )
    market = workload.c.market.functions
    before = workload.c.token.functions.balanceOf(buyer.address).call()
    workload.tx(
        buyer,
        market.fillOrder(
            offer.as_tuple(),
            bytes.fromhex(wallet_signature[2:]),
            4_000,
            default_meter_id(buyer.address),
        ),
    )
    assert market.filled(market.orderHash(offer.as_tuple()).call()).call() == 4_000
    paid = before - workload.c.token.functions.balanceOf(buyer.address).call()
    assert paid == 4_000 * offer.price // 1000 == market.totalEscrowed().call()


def test_ape_run_deploy_on_the_in_process_network(tmp_path):
    env = {**os.environ, "GRIDLEDGER_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        ["ape", "run", "deploy"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    deployment = json.loads((tmp_path / "deployment.json").read_text())
    assert deployment["chain_id"] == 1337  # Ape's in-process EVM
    assert set(deployment["contracts"]) == {
        "GridUSD",
        "RECRegistry",
        "EnergyMarket",
        "DemandResponse",
    }
    assert "EnergyMarket" in result.stdout
