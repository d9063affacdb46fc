"""Every route × every role (anonymous included): who gets in, who gets 401/403.

A new route fails this test until it is classified here: public, role-gated, or (the
default) any authenticated account.
"""

from __future__ import annotations

import re
import uuid

from sqlmodel import Session

from backend.accounts.models import Account
from backend.accounts.security import create_access_token
from tests.fixtures.indexing import catch_up

ROLES = [None, "participant", "registrar", "issuer", "operator", "aggregator", "admin"]
PUBLIC = {
    ("GET", "/health"),
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/auth/siwe/nonce"),
    ("POST", "/v1/auth/siwe/verify"),
    ("GET", "/v1/trading/markets"),
    ("GET", "/v1/trading/orderbook"),
    ("GET", "/v1/trading/trades"),
    ("GET", "/v1/trading/prices"),
    ("GET", "/v1/recs/claims/{claim_id}/proof"),
    ("GET", "/v1/recs/certificates/{certificate_id}/evidence"),
    ("GET", "/v1/public/summary"),
    ("GET", "/v1/public/settlements"),
    ("GET", "/v1/public/energy/periods"),
    ("GET", "/v1/public/recs/issuance"),
    ("GET", "/v1/public/recs/claims"),
    ("GET", "/v1/chain"),  # a wallet adds the chain before anyone signs in
}
ROLE_GATED = {
    ("POST", "/v1/recs/devices/{device_id}/approve"): "registrar",
    ("POST", "/v1/recs/devices/{device_id}/suspend"): "registrar",
    ("POST", "/v1/meters/{meter}/approval"): "registrar",
    ("POST", "/v1/meters/{meter}/suspension"): "registrar",
    ("GET", "/v1/settlement/flags"): "operator",
    ("GET", "/v1/admin/accounts"): "admin",
    ("PUT", "/v1/admin/accounts/{account_id}/roles"): "admin",
    ("GET", "/v1/admin/audit"): "admin",
    ("GET", "/v1/admin/audit/verification"): "admin",
    ("POST", "/v1/vpp"): "aggregator",
    ("PUT", "/v1/vpp/{vpp_id}"): "aggregator",
    ("DELETE", "/v1/vpp/{vpp_id}"): "aggregator",
    ("POST", "/v1/vpp/{vpp_id}/optimize"): "aggregator",
    ("POST", "/v1/vpp/{vpp_id}/schedule/{schedule_id}/dispatch"): "aggregator",
    ("POST", "/v1/vpp/{vpp_id}/resources/{resource_id}/setpoint"): "aggregator",
    ("POST", "/v1/vpp/{vpp_id}/orders"): "aggregator",
    ("GET", "/v1/admin/dead-letters"): "operator",
    ("POST", "/v1/dr/programs"): "operator",
    ("POST", "/v1/dr/events"): "operator",
    ("DELETE", "/v1/dr/events/{event_id}"): "operator",
    ("GET", "/v1/openadr/vens"): "operator",
    ("POST", "/v1/openadr/vens"): "operator",
    ("DELETE", "/v1/openadr/vens/{ven_id}"): "operator",
    ("POST", "/v1/dr/programs/{program_id}/budget"): "operator",
    ("POST", "/v1/dr/offers"): "aggregator",
    ("POST", "/v1/dr/offers/{offer_id}/accept"): "operator",
}
PATH_SAMPLES = {
    "key_id": str(uuid.uuid4()),
    "account_id": str(uuid.uuid4()),
    "order_id": "0x" + "ab" * 32,
    "transfer_id": "1",
    "device_id": "1",
    "meter": "meter:nobody",
    "certificate_id": "1",
    "claim_id": "1",
    "trade_id": "1",
    "tx_hash": "0x" + "00" * 32,
    "resource_id": str(uuid.uuid4()),
    "vpp_id": str(uuid.uuid4()),
    "schedule_id": str(uuid.uuid4()),
    "name": "status",
    "program_id": str(uuid.uuid4()),
    "enrolment_id": str(uuid.uuid4()),
    "event_id": str(uuid.uuid4()),
    "ven_id": "ven-nobody",
    "offer_id": str(uuid.uuid4()),
}
QUERY_SAMPLES = {
    "/v1/trading/orderbook": {"market_id": "energy-900"},
    "/v1/trading/order-typed-data": {
        "side": "buy",
        "quantity_wh": 1,
        "price": 1,
        "delivery_start": 900,
    },
}


def routes(app) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document (what clients can call)."""
    return [
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    ]


def test_every_route_by_every_role(chain_api):
    client = chain_api.client
    catch_up(chain_api.indexer())  # /health is 503 until the indexer has a cursor
    headers = {None: {}}
    with Session(chain_api.engine) as session:
        for role in ROLES[1:]:
            account = Account(
                email=f"{role}@example.org",
                address="0x" + uuid.uuid4().hex[:40].rjust(40, "0"),
                roles=sorted({"participant", role}),
            )
            session.add(account)
            session.commit()
            token = create_access_token(account.id, account.roles, chain_api.settings)
            headers[role] = {"Authorization": f"Bearer {token}"}

    table = routes(client.app)
    assert len(table) >= 30
    assert ("POST", "/v1/energy/withdrawals") in table  # any signed-in account; 401 anonymous
    outcomes = {}
    for method, path in table:
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES[m.group(1)], path)
        for role in ROLES:
            body = {} if method in ("POST", "PUT", "PATCH") else None
            reply = client.request(
                method, url, headers=headers[role], params=QUERY_SAMPLES.get(path), json=body
            )
            outcomes[(method, path, role)] = reply.status_code
            assert reply.status_code < 500, (method, path, role, reply.text)

    for (method, path, role), code in outcomes.items():
        where = (method, path, role, code)
        if (method, path) in PUBLIC:
            assert code not in (401, 403), where
        elif role is None:
            assert code == 401, where
        elif (method, path) in ROLE_GATED:
            allowed = role in (ROLE_GATED[(method, path)], "admin")
            assert (code not in (401, 403)) if allowed else code == 403, where
        else:
            assert code not in (401, 403), where
