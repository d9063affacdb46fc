"""Orders the matcher withdrew (`match_failures`): the maker sees why, and can still cancel a
custodial one on chain (its signature is public once it traded)."""

from __future__ import annotations

from sqlmodel import Session

from backend.chain.contracts import chain_for
from backend.market.match_failures import withdraw
from backend.market.models import SignedOrder


def test_a_custodial_order_the_matcher_withdrew_is_cancelled_on_chain_on_request(market):
    client, api, seller = market["client"], market["api"], market["seller"]
    terms = {"side": "sell", "delivery_start": market["period"], "quantity_wh": 1_000}
    placed = client.post("/v1/trading/orders", headers=seller, json={**terms, "price": 100_000})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    with Session(api.engine) as session:
        row = session.get(
            SignedOrder, client.get(f"/v1/trading/orders/{order_id}", headers=seller).json()["seq"]
        )
        withdraw(session, api.settings, row, "the market rejected 3 matches of this order; last: X")
        session.commit()
    shown = client.get(f"/v1/trading/orders/{order_id}", headers=seller).json()
    assert shown["status"] == "withdrawn" and shown["withdrawn_reason"].endswith("last: X")

    cancelled = client.delete(f"/v1/trading/orders/{order_id}", headers=seller)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["tx_hash"]
    assert chain_for(api.settings).market.functions.isCancelled(order_id).call()
    again = client.delete(f"/v1/trading/orders/{order_id}", headers=seller)
    assert again.status_code == 409
