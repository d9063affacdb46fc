"""A JavaScript wallet places an order: Node fetches `GET /v1/trading/order-typed-data` over
HTTP, `JSON.parse`s the body as served, signs it with MetaMask's `@metamask/eth-sig-util`
(`signTypedData` V4) or with viem, and posts the order; the matcher fills it on Anvil against
a custodial offer. The served salt is above 2^53: a document carrying it as a JSON number
is rounded by `JSON.parse` and the signature recovers to a stranger (`invalid-signature`).
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account as EthAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from backend.chain.contracts import chain_for
from backend.market import orders as eip712
from backend.market.models import SignedOrder
from tests.fixtures.api import match
from tests.fixtures.indexing import catch_up
from tests.fixtures.javascript import JS_SAFE, js_parse, json_numbers, run_node
from tests.fixtures.server import serve


def node_sign_and_post(base_url: str, token: str, key: str, signer: str, terms: dict) -> dict:
    return json.loads(run_node("sign_order.mjs", base_url, token, key, signer, json.dumps(terms)))


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


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    quantity_wh=st.integers(min_value=1, max_value=20_000),
    price=st.integers(min_value=1_000, max_value=10**6),
    expiry_in=st.integers(min_value=60, max_value=1_500),
)
def test_random_bids_survive_javascript_parsing_verify_and_fill_on_chain(
    market, quantity_wh, price, expiry_in
):
    """For random bids: the served document as `JSON.parse` reads it is the document (every
    number within 2^53, bigger values strings), a signature over it verifies in Python and
    the API, and the bid fills on chain against a crossing custodial offer."""
    client, api, period = market["client"], market["api"], market["period"]
    wallet, buyer = market["wallet"], market["buyer"]
    now = api.devnet.workload.now()
    terms = {
        "side": "buy",
        "delivery_start": period,
        "quantity_wh": quantity_wh,
        "price": price,
        "expiry": min(now + expiry_in, period - 1),
    }
    served = client.get("/v1/trading/order-typed-data", params=terms, headers=buyer)
    assert served.status_code == 200, served.text
    as_js = js_parse(served.text)
    assert as_js == served.json()
    assert all(abs(n) <= JS_SAFE for n in json_numbers(as_js))
    document = as_js["typed_data"]
    signature = bytes(EthAccount.sign_typed_data(wallet.key, full_message=document).signature)
    message = document["message"]
    order = eip712.Order(
        **{
            **message,
            "meterId": bytes.fromhex(message["meterId"][2:]),
            **{
                field["name"]: int(message[field["name"]])
                for field in eip712.ORDER_FIELDS
                if field["type"].startswith("uint")
            },
        }
    )
    chain = chain_for(api.settings)
    assert eip712.recover_maker(order, signature, chain.chain_id, chain.market.address) == (
        wallet.address
    )
    body = {
        **terms,
        **{k: message[k] for k in ("nonce", "salt", "expiry")},
        "signature": "0x" + signature.hex(),
    }
    placed = client.post("/v1/trading/orders", headers=buyer, json=body)
    assert placed.status_code == 202, placed.text
    offer = client.post(
        "/v1/trading/orders",
        headers=market["seller"],
        json={"side": "sell", "delivery_start": period, "quantity_wh": quantity_wh, "price": 1},
    )
    assert offer.status_code == 202, offer.text
    assert len(match(api)) >= 1
    catch_up(market["indexer"])
    filled = client.get(f"/v1/trading/orders/{placed.json()['id']}", headers=buyer).json()
    assert filled["status"] == "filled" and filled["filled_wh"] == str(quantity_wh)
