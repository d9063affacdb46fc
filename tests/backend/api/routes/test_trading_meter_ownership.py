"""`POST /v1/trading/orders` refuses an energy order naming a meter its maker does not own
(issue 12: account B sold from account A's meter and was accepted), custodial and wallet."""

from __future__ import annotations

from backend.market.orders import default_meter_id
from tests.fixtures.api import register_and_login, wallet_bid


def refused(reply, meter: str) -> bool:
    body = reply.json()
    return (
        reply.status_code == 403
        and body["type"].endswith("/meter-not-owned")
        and body["meter_id"] == meter
    )


def test_an_order_naming_another_accounts_meter_is_refused(market):
    client, period, seller = market["client"], market["period"], market["seller"]
    registered = client.post(
        "/v1/meters", headers=seller, json={"name": "roof-a", "capacity_w": 5_000}
    )
    assert registered.status_code == 201, registered.text
    meter = registered.json()["meter_id"]
    terms = {"side": "sell", "delivery_start": period, "quantity_wh": 1_000, "price": 100_000}

    own = client.post("/v1/trading/orders", headers=seller, json={**terms, "meter_id": meter})
    assert own.status_code == 202, own.text

    # custodial: another account names the seller's registered meter, or its default meter id
    other = register_and_login(client, "other@example.org")
    stolen = client.post("/v1/trading/orders", headers=other, json={**terms, "meter_id": meter})
    assert refused(stolen, meter), stolen.text
    # the seller's default meter id (what intake names when the terms name none), unregistered
    default = "0x" + default_meter_id(market["seller_address"]).hex()
    squat = client.post("/v1/trading/orders", headers=other, json={**terms, "meter_id": default})
    assert refused(squat, default), squat.text
    by_default = client.post("/v1/trading/orders", headers=seller, json=terms)
    assert by_default.status_code == 202, by_default.text

    # wallet: a signed sell (and a bid) naming the seller's meter
    wallet, buyer = market["wallet"], market["buyer"]
    _, signed_sell = wallet_bid(client, buyer, wallet, **terms, meter_id=meter)
    assert refused(signed_sell, meter), signed_sell.text
    _, signed_bid = wallet_bid(client, buyer, wallet, **{**terms, "side": "buy"}, meter_id=meter)
    assert refused(signed_bid, meter), signed_bid.text

    # an unregistered id bound to the maker (top 20 bytes: its address) is the maker's own
    bound = wallet.address.lower() + "00" * 12
    _, own_bound = wallet_bid(client, buyer, wallet, **terms, meter_id=bound)
    assert own_bound.status_code == 202, own_bound.text

    mine = client.get("/v1/trading/orders", headers=other).json()["items"]
    assert mine == []  # nothing of the refused orders was stored


def test_the_refusal_is_documented_in_openapi(client):
    responses = client.get("/openapi.json").json()["paths"]["/v1/trading/orders"]["post"][
        "responses"
    ]
    assert responses["403"]["description"] == "The order names a meter its maker does not own"
    assert responses["403"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
