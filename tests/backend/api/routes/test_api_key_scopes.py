"""API keys carry scopes and an expiry: each route declares the scope it needs (a key without
it: 403 `insufficient-scope`), an expired key is refused (401 `api-key-expired`), a session
(JWT) keeps full access, and a key cannot mint a stronger or longer-lived one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from backend.accounts import services
from backend.accounts.models import Account, ApiKey
from backend.api.deps import request_account, request_account_async
from backend.core.config import get_settings
from backend.main import create_app
from tests.fixtures.api import register_and_login

METER = "0x" + "ab" * 32
# (scope, method, path, body): one route of each scope class that answers without a chain
ROUTES = [
    ("read", "GET", "/v1/auth/me", None),
    ("read", "GET", "/v1/energy/balance", None),
    ("trade", "DELETE", "/v1/trading/orders/0x" + "00" * 32, None),
    (
        "certificates",
        "POST",
        "/v1/recs/certificates/1/transfer",
        {"to": "0x" + "11" * 20, "amount_wh": 1},
    ),
    ("meter-data", "POST", "/v1/meters", {"name": "roof", "capacity_w": 5_000}),
    ("meter-data", "GET", f"/v1/energy/consumption?meterId={METER}", None),
]
SCOPES = ["read", "trade", "certificates", "meter-data"]


def new_key(client, headers, **body) -> dict:
    created = client.post("/v1/auth/api-keys", json={"name": "k", **body}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()


def call(client, method: str, path: str, body, headers):
    return client.request(method, path, json=body, headers=headers)


def is_insufficient_scope(reply) -> bool:
    return reply.status_code == 403 and reply.json()["type"].endswith("/insufficient-scope")


@pytest.mark.parametrize("scope", SCOPES)
def test_a_key_reaches_exactly_the_routes_of_its_scopes(client, scope):
    session = register_and_login(client, f"{scope}@example.org")
    key = new_key(client, session, scopes=[scope])
    assert key["scopes"] == [scope]
    as_key = {"X-API-Key": key["key"]}
    for needed, method, path, body in ROUTES:
        reply = call(client, method, path, body, as_key)
        if needed == scope:
            assert not is_insufficient_scope(reply), (path, reply.text)
        else:
            assert is_insufficient_scope(reply), (scope, path, reply.status_code, reply.text)
            assert reply.json()["required_scopes"] == [needed]


def test_sessions_keep_full_access_and_keys_default_to_read(client):
    session = register_and_login(client, "full@example.org")
    for _, method, path, body in ROUTES:
        assert not is_insufficient_scope(call(client, method, path, body, session)), path
    key = new_key(client, session)
    assert key["scopes"] == ["read"]
    expires = datetime.fromisoformat(key["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    listed = client.get("/v1/auth/api-keys", headers=session).json()
    assert listed[0]["scopes"] == ["read"] and listed[0]["expires_at"] == key["expires_at"]


def test_an_expired_key_is_refused_with_401(client, db_session):
    session = register_and_login(client, "old@example.org")
    key = new_key(client, session, scopes=SCOPES)
    assert client.get("/v1/auth/me", headers={"X-API-Key": key["key"]}).status_code == 200
    row = db_session.get(ApiKey, key["id"])
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db_session.add(row)
    db_session.flush()
    reply = client.get("/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert reply.status_code == 401 and reply.json()["type"].endswith("/api-key-expired")


def test_expiry_must_be_in_the_future_and_within_the_maximum(client):
    session = register_and_login(client, "when@example.org")
    now = datetime.now(UTC)
    for when in (now - timedelta(minutes=1), now + timedelta(days=366)):
        reply = client.post(
            "/v1/auth/api-keys",
            json={"name": "k", "expires_at": when.isoformat()},
            headers=session,
        )
        assert reply.status_code == 422, reply.text
    chosen = (now + timedelta(days=7)).replace(microsecond=0)
    key = new_key(client, session, expires_at=chosen.isoformat())
    assert datetime.fromisoformat(key["expires_at"]) == chosen


def test_a_key_cannot_mint_a_stronger_or_longer_lived_key(client):
    session = register_and_login(client, "minter@example.org")
    soon = datetime.now(UTC) + timedelta(days=2)
    parent = new_key(client, session, scopes=["read", "meter-data"], expires_at=soon.isoformat())
    as_parent = {"X-API-Key": parent["key"]}
    stronger = client.post(
        "/v1/auth/api-keys", json={"name": "k", "scopes": ["trade"]}, headers=as_parent
    )
    assert is_insufficient_scope(stronger) and stronger.json()["required_scopes"] == ["trade"]
    child = new_key(client, as_parent, scopes=["meter-data"])  # default expiry: 90 days ...
    assert datetime.fromisoformat(child["expires_at"]) == datetime.fromisoformat(
        parent["expires_at"]
    )  # ... capped at the parent's


def test_admin_routes_take_no_api_key(client, db_session):
    admin = Account(
        email="root@example.org", kind="wallet", address="0x" + "ad" * 20, roles=["admin"]
    )
    db_session.add(admin)
    db_session.flush()
    _, key = services.create_api_key(db_session, get_settings(), admin, name="ops", scopes=SCOPES)
    reply = client.get("/v1/admin/audit", headers={"X-API-Key": key})
    assert is_insufficient_scope(reply) and reply.json()["required_scopes"] == []


# routes any credential of the account may call: making keys (a key cannot grant more than it
# has, see above) and revoking them (only takes access away)
ANY_CREDENTIAL = {("POST", "/v1/auth/api-keys"), ("DELETE", "/v1/auth/api-keys/{key_id}")}


def calls(dependant) -> list:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found += calls(sub)
    return found


def test_every_authenticated_route_declares_a_scope():
    undeclared = []
    for route in create_app().routes:
        if not isinstance(route, APIRoute):
            continue
        called = calls(route.dependant)
        if request_account not in called and request_account_async not in called:
            continue  # public
        declared = [c for c in called if hasattr(c, "required_scope")]
        for method in route.methods:
            if not declared and (method, route.path) not in ANY_CREDENTIAL:
                undeclared.append(f"{method} {route.path}")
    assert undeclared == []
