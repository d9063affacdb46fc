"""Every signature the API makes with a custodial key is in the audit trail: the account, what
it signed for and the transaction or order hash (`custody.signed`)."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from backend.audit.chain import AuditAction, verify
from backend.audit.models import AuditEntry
from tests.fixtures.api import wallet_bid


def signatures(engine) -> list[tuple[str, str, dict]]:
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == AuditAction.CUSTODIAL_SIGNATURE)
            .order_by(col(AuditEntry.id))
        ).all()
        return [(str(r.actor_id), r.subject, json.loads(r.details)) for r in rows]


def test_custodial_signatures_are_audited_with_their_hashes(market):
    api, client, seller = market["api"], market["client"], market["seller"]
    me = client.get("/v1/auth/me", headers=seller).json()
    # the fixture's deposit: the API signed `approve` and `deposit`
    deposit = signatures(api.engine)
    assert [details["action"] for _, _, details in deposit] == ["token.approve", "market.deposit"]
    assert all(actor == me["id"] for actor, _, _ in deposit)
    assert all(
        d["address"] == me["address"] and subject == d["tx_hash"] for _, subject, d in deposit
    )

    placed = client.post(
        "/v1/trading/orders",
        headers=seller,
        json={
            "side": "sell",
            "delivery_start": market["period"],
            "quantity_wh": 1_000,
            "price": 100_000,
        },
    )
    assert placed.status_code == 202, placed.text
    order_hash = placed.json()["id"]
    cancelled = client.delete(f"/v1/trading/orders/{order_hash}", headers=seller)
    assert cancelled.status_code == 202, cancelled.text
    approvals = client.post("/v1/trading/approvals", headers=seller)
    assert approvals.status_code == 200, approvals.text

    later = signatures(api.engine)[len(deposit) :]
    assert [(subject, d["action"]) for _, subject, d in later] == [
        (order_hash, "market.order"),
        (cancelled.json()["tx_hash"], "market.cancelOrder"),
        (approvals.json()["token_tx"], "token.approve"),
        (approvals.json()["registry_tx"], "registry.setApprovalForAll"),
    ]
    assert later[0][2]["order_hash"] == order_hash
    with Session(api.engine) as session:
        assert verify(session).intact


def test_wallet_orders_leave_no_custodial_signature(market):
    api, client = market["api"], market["client"]
    before = len(signatures(api.engine))
    terms = {"side": "buy", "quantity_wh": 1_000, "price": 90_000}
    _, bid = wallet_bid(
        client, market["buyer"], market["wallet"], delivery_start=market["period"], **terms
    )
    assert bid.status_code == 202, bid.text
    assert len(signatures(api.engine)) == before
