"""A JavaScript wallet places an order: Node fetches `GET /v1/trading/order-typed-data` over
HTTP, `JSON.parse`s the body as served, signs it with MetaMask's `@metamask/eth-sig-util`
(`signTypedData` V4) or with viem, and posts the order; the matcher fills it on Anvil against
a custodial offer. The served salt is above 2^53: a document carrying it as a JSON number
is rounded by `JSON.parse` and the signature recovers to a stranger (`invalid-signature`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session, select

from backend.market.models import SignedOrder
from tests.fixtures.api import match
from tests.fixtures.indexing import catch_up
from tests.fixtures.server import serve

SCRIPT = Path(__file__).resolve().parents[3] / "fixtures" / "sign_order.mjs"
JS_SAFE = 2**53 - 1


def node_sign_and_post(base_url: str, token: str, key: str, signer: str, terms: dict) -> dict:
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript client"
    done = subprocess.run(
        [node, str(SCRIPT), base_url, token, key, signer, json.dumps(terms)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("signer", ["eth-sig-util", "viem"])
def test_order_signed_in_javascript_is_accepted_and_filled(market, signer):
    client, api = market["client"], market["api"]
    period = market["period"]
    offer = client.post(
        "/v1/trading/orders",
        headers=market["seller"],
        json={"side": "sell", "delivery_start": period, "quantity_wh": 4_000, "price": 90_000},
    )
    assert offer.status_code == 202, offer.text
    terms = {"side": "buy", "delivery_start": period, "quantity_wh": 4_000, "price": 95_000}
    token = market["buyer"]["Authorization"].removeprefix("Bearer ")
    with serve(client.app) as base_url:
        placed = node_sign_and_post(
            base_url, token, "0x" + bytes(market["wallet"].key).hex(), signer, terms
        )

    message = placed["typed_data"]["message"]
    assert int(message["salt"]) > JS_SAFE  # the case a JSON number cannot carry
    assert placed["status"] == 202, placed["body"]
    assert placed["body"]["id"] == placed["order_hash"]
    with Session(api.engine) as session:
        stored = session.exec(
            select(SignedOrder).where(SignedOrder.order_hash == placed["order_hash"])
        ).one()
    assert stored.salt == message["salt"] and stored.signature == placed["signature"]

    sent = match(api)
    assert len(sent) == 1
    receipt = api.devnet.w3.eth.wait_for_transaction_receipt(sent[0])
    assert receipt.status == 1
    catch_up(market["indexer"])
    filled = client.get(f"/v1/trading/orders/{placed['order_hash']}", headers=market["buyer"])
    assert filled.json()["status"] == "filled" and filled.json()["filled_wh"] == "4000"
