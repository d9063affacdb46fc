"""End to end on Anvil + PostgreSQL + Redis with the indexer stepping: a custodial seller
offers through REST, a wallet buyer signs a bid with eth-account and posts it, the operator
matches, and the trade, escrow and fills appear through the API."""

from __future__ import annotations

from eth_account import Account as EthAccount
from sqlmodel import Session, select

from backend.chain.contracts import chain_for
from backend.chain.transactions import send
from backend.market.models import SignedOrder
from backend.market.orders import BPS, collateral, default_meter_id
from indexer.outbox import OutboxPublisher, RedisStreamSink
from scripts.workload import DEPOSIT
from tests.fixtures.api import SELLER_DEPOSIT, SLOT, match, signed_wallet_order, wallet_bid
from tests.fixtures.indexing import catch_up
from tests.fixtures.services import TEST_REDIS_URL


def test_custodial_offer_wallet_bid_match_trade_and_escrow(market):
    client, api = market["client"], market["api"]
    period = market["period"]
    offer = client.post(
        "/v1/trading/orders",
        headers={**market["seller"], "Idempotency-Key": "offer-1"},
        json={
            "side": "sell",
            "product": "energy",
            "delivery_start": period,
            "quantity_wh": 5_000,
            "price": 100_000,
        },
    )
    assert offer.status_code == 202, offer.text
    offer_id = offer.json()["id"]
    assert offer.json()["status"] == "open" and offer.json()["poll"].endswith(offer_id)
    # a client retry with the same key does not place a second order
    retry = client.post(
        "/v1/trading/orders",
        headers={**market["seller"], "Idempotency-Key": "offer-1"},
        json={
            "side": "sell",
            "product": "energy",
            "delivery_start": period,
            "quantity_wh": 5_000,
            "price": 100_000,
        },
    )
    assert retry.json()["id"] == offer_id and retry.headers["Idempotent-Replayed"] == "true"
    with Session(api.engine) as session:
        assert len(session.exec(select(SignedOrder)).all()) == 1

    bid_hash, bid = wallet_bid(
        client,
        market["buyer"],
        market["wallet"],
        side="buy",
        product="energy",
        delivery_start=period,
        quantity_wh=3_000,
        price=120_000,
    )
    assert bid.status_code == 202, bid.text
    assert bid.json()["id"] == bid_hash

    book = client.get("/v1/trading/orderbook", params={"market_id": f"energy-{period}"}).json()
    # amounts are decimal strings on the wire (backend/core/json_ints.py), counts numbers
    assert book["bids"] == [{"price": "120000", "quantity_wh": "3000", "orders": 1}]
    assert book["asks"] == [{"price": "100000", "quantity_wh": "5000", "orders": 1}]

    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json(
            {"action": "subscribe", "channels": ["trades", f"trading.market.energy-{period}"]}
        )
        ack = ws.receive_json()
        assert ack["channel"] == "system" and len(ack["payload"]["channels"]) == 2
        snapshot = ws.receive_json()["payload"]
        assert snapshot["event"] == "orderbook.snapshot"
        assert (snapshot["bids"], snapshot["asks"]) == (book["bids"], book["asks"])
        sent = match(api)
        assert len(sent) == 1
        assert match(api) == []  # nothing left to cross; the bid is fully matched
        catch_up(market["indexer"])
        assert OutboxPublisher(api.engine, RedisStreamSink(TEST_REDIS_URL)).publish_pending() >= 1
        # The two trade messages and the fill's delta; the relay may still deliver the bid's own
        # `order.placed` after the snapshot, as a delta of levels the snapshot already showed.
        messages: list[dict] = []
        while not (
            sum(m["payload"]["event"] == "trade.created" for m in messages) == 2
            and any(
                m["payload"]["event"] == "orderbook.delta"
                and m["payload"]["bids"] == [{"price": "120000", "quantity_wh": "0", "orders": 0}]
                for m in messages
            )
        ):
            assert len(messages) < 8, messages
            messages.append(ws.receive_json())
    pushed = {m["channel"]: m for m in messages if m["payload"]["event"] == "trade.created"}
    assert set(pushed) == {"trades", f"trading.market.energy-{period}"}
    deltas = [m["payload"] for m in messages if m["payload"]["event"] == "orderbook.delta"]
    assert [d["sequence"] for d in deltas] == [
        snapshot["sequence"] + 1 + i for i in range(len(deltas))
    ]  # no gap after the snapshot
    for early in deltas[:-1]:  # a late placement delta repeats levels the snapshot showed
        assert all(level in snapshot["bids"] for level in early["bids"])
        assert all(level in snapshot["asks"] for level in early["asks"])
    delta = deltas[-1]
    assert delta["bids"] == [{"price": "120000", "quantity_wh": "0", "orders": 0}]
    assert delta["asks"] == [{"price": "100000", "quantity_wh": "2000", "orders": 1}]
    assert pushed["trades"]["payload"]["trade"]["tx_hash"] == sent[0]
    assert isinstance(pushed["trades"]["timestamp"], int)

    trades = client.get("/v1/trading/trades", params={"market_id": f"energy-{period}"}).json()[
        "items"
    ]
    assert len(trades) == 1
    trade = trades[0]
    assert trade["price"] == "100000"  # the resting (older) offer's price
    assert trade["quantity_wh"] == "3000" and trade["payment"] == "300000"  # escrowed by the buyer
    assert pushed["trades"]["payload"]["trade"] == trade  # the socket sends the same JSON
    assert (
        trade["seller"] == market["seller_address"]
        and trade["buyer"] == market["wallet"].address.lower()
    )
    assert trade["status"] == "open" and trade["tx_hash"] == sent[0]

    seller_order = client.get(f"/v1/trading/orders/{offer_id}", headers=market["seller"]).json()
    assert seller_order["status"] == "partially_filled" and seller_order["filled_wh"] == "3000"
    assert seller_order["remaining_wh"] == "2000"
    assert (
        client.get(f"/v1/trading/orders/{bid_hash}", headers=market["buyer"]).json()["status"]
        == "filled"
    )
    # an account sees only its own orders
    assert client.get(f"/v1/trading/orders/{bid_hash}", headers=market["seller"]).status_code == 404
    mine = client.get("/v1/trading/orders", headers=market["seller"]).json()["items"]
    assert [o["id"] for o in mine] == [offer_id]

    history = client.get("/v1/trading/history", headers=market["buyer"]).json()["items"]
    assert [t["trade_id"] for t in history] == [trade["trade_id"]]
    bars = client.get("/v1/trading/prices").json()
    assert bars == [
        {
            "market_id": f"energy-{period}",
            "delivery_start": period,
            "delivery_end": period + SLOT,
            "open": "100000",
            "high": "100000",
            "low": "100000",
            "close": "100000",
            "volume_wh": "3000",
            "trades": 1,
        }
    ]
    escrowed = chain_for(api.settings).market.functions.totalEscrowed().call()
    assert escrowed == 300_000

    transfers = client.get("/v1/energy/transfers", headers=market["buyer"]).json()["items"]
    assert [(t["id"], t["contracted_wh"], t["escrow"], t["status"]) for t in transfers] == [
        (trade["trade_id"], "3000", "300000", "scheduled")
    ]
    assert (
        client.get(f"/v1/energy/transfers/{trade['trade_id']}", headers=market["seller"]).json()[
            "seller"
        ]
        == market["seller_address"]
    )
    balance = client.get("/v1/energy/balance", headers=market["buyer"]).json()
    assert balance["escrowed"] == "300000" and balance["positions"] == [
        {
            "delivery_start": period,
            "delivery_end": period + SLOT,
            "bought_wh": "3000",
            "sold_wh": "0",
            "net_wh": "3000",
        }
    ]
    seller_balance = client.get("/v1/energy/balance", headers=market["seller"]).json()
    assert seller_balance["positions"][0]["net_wh"] == "-3000" and seller_balance["escrowed"] == "0"

    book = client.get("/v1/trading/orderbook", params={"market_id": f"energy-{period}"}).json()
    assert book["bids"] == [] and book["asks"] == [
        {"price": "100000", "quantity_wh": "2000", "orders": 1}
    ]

    # cancel the rest on chain with the seller's custodial key; the mirror confirms it
    cancelled = client.delete(f"/v1/trading/orders/{offer_id}", headers=market["seller"])
    assert cancelled.status_code == 202 and cancelled.json()["tx_hash"].startswith("0x")
    catch_up(market["indexer"])
    assert (
        client.get(f"/v1/trading/orders/{offer_id}", headers=market["seller"]).json()["status"]
        == "cancelled"
    )
    again = client.delete(f"/v1/trading/orders/{offer_id}", headers=market["seller"])
    assert again.status_code == 409


def test_orders_are_validated_before_storing(market):
    client, period = market["client"], market["period"]
    seller = market["seller"]
    base = {"side": "sell", "product": "energy", "quantity_wh": 1_000, "price": 100_000}
    misaligned = client.post(
        "/v1/trading/orders", headers=seller, json={**base, "delivery_start": period + 60}
    )
    assert misaligned.status_code == 422 and misaligned.json()["type"].endswith("/invalid-order")
    started = client.post(
        "/v1/trading/orders", headers=seller, json={**base, "delivery_start": period - 2 * SLOT}
    )
    assert started.status_code == 422 and started.json()["type"].endswith("/gate-closed")
    expired = client.post(
        "/v1/trading/orders", headers=seller, json={**base, "delivery_start": period, "expiry": 5}
    )
    assert expired.status_code == 422 and expired.json()["type"].endswith("/order-expired")
    # a custodial buyer without tokens: balance/allowance check
    broke = client.post(
        "/v1/trading/orders", headers=seller, json={**base, "side": "buy", "delivery_start": period}
    )
    assert broke.status_code == 422 and broke.json()["type"].endswith("/insufficient-funds")
    # an offer from somebody else's meter (the wallet buyer's, public in every trade it makes)
    borrowed = "0x" + default_meter_id(market["wallet"].address).hex()
    squat = client.post(
        "/v1/trading/orders",
        headers=seller,
        json={**base, "delivery_start": period, "meter_id": borrowed},
    )
    assert squat.status_code == 403 and squat.json()["type"].endswith("/meter-not-owned")
    assert squat.json()["meter_id"] == borrowed
    # a wallet order signed by somebody else
    typed = client.get(
        "/v1/trading/order-typed-data",
        headers=market["buyer"],
        params={"side": "buy", "delivery_start": period, "quantity_wh": 1_000, "price": 1},
    ).json()
    forged = EthAccount.sign_typed_data(
        EthAccount.create().key, full_message=typed["typed_data"]
    ).signature
    m = typed["typed_data"]["message"]
    reply = client.post(
        "/v1/trading/orders",
        headers=market["buyer"],
        json={
            "side": "buy",
            "delivery_start": period,
            "quantity_wh": 1_000,
            "price": 1,
            "nonce": m["nonce"],
            "salt": str(m["salt"]),
            "expiry": m["expiry"],
            "signature": "0x" + bytes(forged).hex(),
        },
    )
    assert reply.status_code == 422 and reply.json()["type"].endswith("/invalid-signature")
    with Session(market["api"].engine) as session:
        assert session.exec(select(SignedOrder)).all() == []


def test_wallet_bid_cannot_exceed_balance_and_duplicate_is_conflict(market):
    client, period = market["client"], market["period"]
    _, huge = wallet_bid(
        client,
        market["buyer"],
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=10**9,
        price=10**7,
    )
    assert huge.status_code == 422 and huge.json()["type"].endswith("/insufficient-funds")
    typed = client.get(
        "/v1/trading/order-typed-data",
        headers=market["buyer"],
        params={"side": "buy", "delivery_start": period, "quantity_wh": 1_000, "price": 90_000},
    ).json()
    m = typed["typed_data"]["message"]
    signature = EthAccount.sign_typed_data(
        market["wallet"].key, full_message=typed["typed_data"]
    ).signature
    body = {
        "side": "buy",
        "delivery_start": period,
        "quantity_wh": 1_000,
        "price": 90_000,
        "nonce": m["nonce"],
        "salt": str(m["salt"]),
        "expiry": m["expiry"],
        "signature": "0x" + bytes(signature).hex(),
    }
    assert client.post("/v1/trading/orders", headers=market["buyer"], json=body).status_code == 202
    dup = client.post("/v1/trading/orders", headers=market["buyer"], json=body)
    assert dup.status_code == 409 and dup.json()["type"].endswith("/duplicate-order")
    # a wallet order never on chain is cancelled off chain
    cancelled = client.delete(f"/v1/trading/orders/{typed['order_hash']}", headers=market["buyer"])
    assert cancelled.status_code == 202 and cancelled.json()["tx_hash"] is None
    assert (
        client.get(f"/v1/trading/orders/{typed['order_hash']}", headers=market["buyer"]).json()[
            "status"
        ]
        == "cancelled"
    )


def test_cancelling_a_partly_filled_wallet_bid_stops_the_matcher_filling_the_rest(market):
    """The API cannot cancel a wallet order on chain: it withdraws the rest from matching and
    the book (202 `withdrawn`) and hands the wallet its `cancelOrder` call."""
    client, api, period = market["client"], market["api"], market["period"]
    buyer, seller, book_params = (
        market["buyer"],
        market["seller"],
        {"market_id": f"energy-{period}"},
    )

    def offer(quantity_wh: int) -> None:
        terms = {"side": "sell", "delivery_start": period, "quantity_wh": quantity_wh}
        placed = client.post("/v1/trading/orders", headers=seller, json={**terms, "price": 100_000})
        assert placed.status_code == 202, placed.text

    bid_hash, bid = wallet_bid(
        client,
        buyer,
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=3_000,
        price=120_000,
    )
    assert bid.status_code == 202, bid.text
    offer(1_000)
    assert len(match(api)) == 1
    catch_up(market["indexer"])
    assert client.get(f"/v1/trading/orders/{bid_hash}", headers=buyer).json()["status"] == (
        "partially_filled"
    )

    cancelled = client.delete(f"/v1/trading/orders/{bid_hash}", headers=buyer)
    assert cancelled.status_code == 202, cancelled.text
    body = cancelled.json()
    assert body["status"] == "withdrawn" and body["tx_hash"] is None
    chain = chain_for(api.settings)
    call = body["cancel_on_chain"]
    assert call["to"] == chain.market.address and call["relay"] == "/v1/chain/transactions"
    assert call["function"].startswith("cancelOrder((address,uint8,")
    function, args = chain.market.decode_function_input(call["data"])  # cancelOrder(this bid)
    assert function.fn_name == "cancelOrder"
    assert chain.market.functions.orderHash(args["order"]).call().hex() == bid_hash[2:]
    assert "cancel_on_chain" in body["detail"]
    assert client.delete(f"/v1/trading/orders/{bid_hash}", headers=buyer).json() == body

    # a crossing offer: the matcher leaves the withdrawn rest alone; the book does not show it
    offer(2_000)
    assert match(api) == []
    catch_up(market["indexer"])
    book = client.get("/v1/trading/orderbook", params=book_params).json()
    assert book["bids"] == [] and book["asks"] == [
        {"price": "100000", "quantity_wh": "2000", "orders": 1}
    ]
    mine = client.get(f"/v1/trading/orders/{bid_hash}", headers=buyer).json()
    assert (mine["status"], mine["filled_wh"], mine["remaining_wh"]) == ("withdrawn", "1000", "0")

    # the wallet sends the call; the indexer sees the cancel and the order is cancelled
    send(api.devnet.w3, market["wallet"], {"to": call["to"], "data": call["data"]})
    catch_up(market["indexer"])
    assert chain.market.functions.isCancelled(bid_hash).call()
    assert client.get(f"/v1/trading/orders/{bid_hash}", headers=buyer).json()["status"] == (
        "cancelled"
    )
    again = client.delete(f"/v1/trading/orders/{bid_hash}", headers=buyer)
    assert again.status_code == 409 and again.json()["type"].endswith("/order-not-cancellable")


# ------------------------------------------------------------ intake checks on the fast path


def test_cancel_all_on_chain_makes_a_signed_order_stale_at_once(market):
    """The nonce is read from the chain per order: a bump in the latest block is seen."""
    client, devnet, period = market["client"], market["api"].devnet, market["period"]
    _, body = signed_wallet_order(
        client,
        market["buyer"],
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=1_000,
        price=90_000,
    )
    devnet.workload.tx(market["wallet"], devnet.workload.c.market.functions.incrementNonce())
    stale = client.post("/v1/trading/orders", headers=market["buyer"], json=body)
    assert stale.status_code == 422 and stale.json()["type"].endswith("/invalid-order")
    assert "stale" in stale.json()["detail"]
    fresh_hash, fresh = signed_wallet_order(
        client,
        market["buyer"],
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=1_000,
        price=90_000,
    )
    assert int(fresh["nonce"]) == int(body["nonce"]) + 1
    reply = client.post("/v1/trading/orders", headers=market["buyer"], json=fresh)
    assert reply.status_code == 202 and reply.json()["id"] == fresh_hash


def test_bids_reserve_funds_for_the_makers_open_bids(market):
    """Balance 9·10^11 (10^12 minted, 10^11 deposited as collateral; allowance unlimited): a bid
    of 6·10^11 fits once, not twice, until it is cancelled."""
    client, period, buyer = market["client"], market["period"], market["buyer"]
    terms = {
        "side": "buy",
        "delivery_start": period,
        "quantity_wh": 10_000_000,
        "price": 60_000_000,
    }
    first_hash, first = signed_wallet_order(client, buyer, market["wallet"], **terms)
    assert client.post("/v1/trading/orders", headers=buyer, json=first).status_code == 202
    _, second = signed_wallet_order(client, buyer, market["wallet"], **terms)
    refused = client.post("/v1/trading/orders", headers=buyer, json=second)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/insufficient-funds")
    assert refused.json()["needed"] == str(2 * 600_000_000_000)
    assert refused.json()["balance"] == str(10**12 - DEPOSIT)
    assert client.delete(f"/v1/trading/orders/{first_hash}", headers=buyer).status_code == 202
    assert client.post("/v1/trading/orders", headers=buyer, json=second).status_code == 202


def test_rec_offer_needs_the_certificate_and_wallet_orders_need_well_formed_terms(market):
    client, period, buyer = market["client"], market["period"], market["buyer"]
    _, rec = signed_wallet_order(
        client,
        buyer,
        market["wallet"],
        side="sell",
        product="rec",
        asset_id=7,
        quantity_wh=500,
        price=10_000,
    )
    unheld = client.post("/v1/trading/orders", headers=buyer, json=rec)
    assert unheld.status_code == 422 and unheld.json()["type"].endswith("/insufficient-funds")
    assert unheld.json()["held"] == "0"
    _, body = signed_wallet_order(
        client,
        buyer,
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=1_000,
        price=90_000,
    )
    huge_salt = client.post("/v1/trading/orders", headers=buyer, json={**body, "salt": str(2**256)})
    assert huge_salt.status_code == 422 and huge_salt.json()["errors"][0]["loc"] == ["body", "salt"]
    for bad in ("0x" + "00" * 64 + "1b", body["signature"][:-2] + "05"):  # r = s = 0; v = 5
        reply = client.post("/v1/trading/orders", headers=buyer, json={**body, "signature": bad})
        assert reply.status_code == 422 and reply.json()["type"].endswith("/invalid-signature"), (
            reply.text
        )
    tampered = client.post("/v1/trading/orders", headers=buyer, json={**body, "price": 90_001})
    assert tampered.status_code == 422 and tampered.json()["type"].endswith("/invalid-signature")
    assert "signed by" in tampered.json()["detail"]
    with Session(market["api"].engine) as session:
        assert session.exec(select(SignedOrder)).all() == []


def test_energy_offers_need_collateral_for_themselves_and_the_sellers_other_open_offers(market):
    """An offer whose seller's free market balance cannot cover its collateral (with that of the
    seller's other open offers) is refused: on chain its fill would revert, jamming the book."""
    client, seller, period = market["client"], market["seller"], market["period"]
    contract = chain_for(market["api"].settings).market.functions
    terms = (contract.toleranceBps().call(), contract.penaltyBps().call())
    price = 100_000
    # an offer locking about 60 % of the deposit: one fits, two do not
    quantity = SELLER_DEPOSIT * 6 // 10 * 1000 * BPS * BPS // (price * (BPS - terms[0]) * terms[1])
    each = collateral(quantity, price, *terms)
    assert each <= SELLER_DEPOSIT < 2 * each
    offer = {"side": "sell", "delivery_start": period, "quantity_wh": quantity, "price": price}

    first = client.post("/v1/trading/orders", headers=seller, json=offer)
    assert first.status_code == 202, first.text
    second = client.post("/v1/trading/orders", headers=seller, json={**offer, "price": price + 1})
    assert second.status_code == 422
    problem = second.json()
    assert problem["type"] == "https://gridledger.dev/problems/insufficient-collateral"
    assert problem["needed"] == str(each + collateral(quantity, price + 1, *terms))
    assert problem["available"] == str(SELLER_DEPOSIT)
    # an offer the rest of the deposit covers is accepted
    small = client.post(
        "/v1/trading/orders", headers=seller, json={**offer, "quantity_wh": quantity // 4}
    )
    assert small.status_code == 202, small.text


def test_wallet_account_gets_the_approval_calls_for_its_wallet(market):
    """`POST /approvals` signs for a custodial account; a wallet account gets the `approve`
    and `setApprovalForAll` calls, and after its wallet sends them the market may move both."""
    client, wallet, api = market["client"], market["wallet"], market["api"]
    chain = chain_for(api.settings)
    w3 = api.devnet.w3
    for revoke in (  # the workload approved at setup: start from none
        chain.token.functions.approve(chain.market.address, 0),
        chain.registry.functions.setApprovalForAll(chain.market.address, False),
    ):
        send(w3, wallet, dict(revoke.build_transaction({"from": wallet.address})))
    refused = client.post("/v1/trading/approvals", headers=market["buyer"])
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/wallet-must-sign")
    token_call, registry_call = problem["calls"]
    assert (token_call["to"], token_call["function"]) == (
        chain.token.address,
        "approve(address,uint256)",
    )
    assert (registry_call["to"], registry_call["function"]) == (
        chain.registry.address,
        "setApprovalForAll(address,bool)",
    )
    for call in (token_call, registry_call):
        send(w3, wallet, {"to": call["to"], "data": call["data"]})
    assert (
        chain.token.functions.allowance(wallet.address, chain.market.address).call() == 2**256 - 1
    )
    assert chain.registry.functions.isApprovedForAll(wallet.address, chain.market.address).call()

    custodial = client.post("/v1/trading/approvals", headers=market["seller"])
    assert custodial.status_code == 200 and custodial.json()["token_tx"].startswith("0x")
