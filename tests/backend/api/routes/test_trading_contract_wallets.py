"""A contract wallet (ERC-1271) trades through the API on Anvil: it signs in with its owner's
SIWE signature, its owner signs its bid's EIP-712 document, the API checks the signature with
the wallet's `isValidSignature` in the intake's one chain read, and the matcher fills it."""

from __future__ import annotations

from sqlmodel import Session, select

from backend.chain.contracts import Chain
from backend.market.models import SignedOrder
from tests.fixtures.api import match, wallet_bid
from tests.fixtures.contract_wallets import FUNDING, deploy_contract_wallet, signed_siwe
from tests.fixtures.indexing import catch_up


def test_contract_wallet_bid_is_accepted_and_filled_on_chain(market, monkeypatch):
    client, api, period = market["client"], market["api"], market["period"]
    devnet = api.devnet
    owner, stranger = devnet.workload.people[2], devnet.workload.people[3]
    wallet = deploy_contract_wallet(devnet, owner)
    signed_in = client.post(
        "/v1/auth/siwe/verify",
        json=signed_siwe(client, wallet, owner, chain_id=api.settings.chain_id),
    )
    assert signed_in.status_code == 200, signed_in.text
    buyer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    offer = client.post(
        "/v1/trading/orders",
        headers=market["seller"],
        json={"side": "sell", "delivery_start": period, "quantity_wh": 5_000, "price": 100_000},
    )
    assert offer.status_code == 202, offer.text
    terms = {"side": "buy", "delivery_start": period, "quantity_wh": 3_000, "price": 120_000}

    # signed by a key that does not own the wallet: the wallet's isValidSignature says no
    _, forged = wallet_bid(client, buyer, stranger, **terms)
    assert forged.status_code == 422 and forged.json()["type"].endswith("/invalid-signature")
    assert wallet in forged.json()["detail"] and stranger.address in forged.json()["detail"]

    reads = []
    read = Chain.read

    def counted(chain, *calls):
        reads.append(calls)
        return read(chain, *calls)

    monkeypatch.setattr(Chain, "read", counted)
    bid_hash, bid = wallet_bid(client, buyer, owner, **terms)
    assert bid.status_code == 202, bid.text
    assert bid.json()["id"] == bid_hash
    # intake read nonce, balance, allowance and the wallet's ERC-1271 answer in one batch
    posted = reads[-1]
    assert len(posted) == 4 and posted[-1].optional and posted[-1].to == wallet
    monkeypatch.undo()

    sent = match(api)
    assert len(sent) == 1
    catch_up(market["indexer"])
    stored = client.get(f"/v1/trading/orders/{bid_hash}", headers=buyer).json()
    assert stored["status"] == "filled" and stored["maker"] == wallet.lower()
    trades = client.get("/v1/trading/trades", params={"market_id": f"energy-{period}"}).json()
    (trade,) = trades["items"]
    assert trade["buyer"] == wallet.lower() and trade["tx_hash"] == sent[0]
    assert trade["quantity_wh"] == "3000" and trade["payment"] == "300000"
    token = devnet.workload.c.token
    assert token.functions.balanceOf(wallet).call() == FUNDING - 300_000  # escrowed on chain
    market_contract = devnet.workload.c.market
    assert market_contract.functions.filled(bytes.fromhex(bid_hash[2:])).call() == 3_000


def test_contract_wallet_signature_of_any_length_is_checked_not_refused_by_shape(market):
    client, api, period = market["client"], market["api"], market["period"]
    owner = api.devnet.workload.people[2]
    wallet = deploy_contract_wallet(api.devnet, owner)
    buyer_tokens = client.post(
        "/v1/auth/siwe/verify",
        json=signed_siwe(client, wallet, owner, chain_id=api.settings.chain_id),
    ).json()
    buyer = {"Authorization": f"Bearer {buyer_tokens['access_token']}"}
    terms = {"side": "buy", "delivery_start": period, "quantity_wh": 1_000, "price": 100_000}
    typed = client.get("/v1/trading/order-typed-data", params=terms, headers=buyer).json()
    message = typed["typed_data"]["message"]
    body = {
        **terms,
        "nonce": message["nonce"],
        "salt": str(message["salt"]),
        "expiry": message["expiry"],
        "signature": "0x" + "ab" * 200,  # 200 bytes: a multisig's length; not the owner's
    }
    reply = client.post("/v1/trading/orders", headers=buyer, json=body)
    assert reply.status_code == 422 and reply.json()["type"].endswith("/invalid-signature")
    too_long = client.post(
        "/v1/trading/orders", headers=buyer, json={**body, "signature": "0x" + "ab" * 4097}
    )
    assert too_long.status_code == 422 and "signature" in too_long.text
    with Session(api.engine) as session:
        assert session.exec(select(SignedOrder)).all() == []
