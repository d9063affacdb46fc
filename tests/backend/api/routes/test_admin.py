"""Role administration: admins list accounts and set roles (the on-chain counterparts are
listed as timelock proposals, never sent by the API); a revoked role is refused on the very
next request, with the same access token; the last admin keeps the admin role."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlmodel import Session
from web3 import Web3

from backend.accounts.chain_roles import plan_chain_roles
from backend.accounts.models import Account, Role
from backend.accounts.security import create_access_token
from backend.chain.contracts import chain_for
from tests.fixtures.api import register_and_login


@pytest.fixture
def admin(chain_api) -> dict:
    """The only admin (a wallet account made directly in the database)."""
    with Session(chain_api.engine) as session:
        account = Account(
            email="root@example.org", kind="wallet", address="0x" + "ad" * 20, roles=["admin"]
        )
        session.add(account)
        session.commit()
        token = create_access_token(account.id, account.roles, chain_api.settings)
        return {"id": str(account.id), "headers": {"Authorization": f"Bearer {token}"}}


def has_role(chain, contract, role: str, address: str) -> bool:
    return contract.functions.hasRole(
        Web3.keccak(text=role), Web3.to_checksum_address(address)
    ).call()


def test_grant_and_revoke_take_effect_at_once_and_list_the_chain_proposals(chain_api, admin):
    """The API cannot grant on chain (no admin key): it changes the API role and names the
    timelock proposals that would make the chain match."""
    client, chain = chain_api.client, chain_for(chain_api.settings)
    user = register_and_login(
        client, "ops@example.org"
    )  # a custodial participant; this token is kept
    me = client.get("/v1/auth/me", headers=user).json()
    assert client.get("/v1/settlement/flags", headers=user).status_code == 403

    granted = client.put(
        f"/v1/admin/accounts/{me['id']}/roles",
        headers=admin["headers"],
        json={"roles": ["operator", "participant", "registrar"]},
    )
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["account"]["roles"] == ["operator", "participant", "registrar"]
    holder = Web3.to_checksum_address(me["address"])
    assert sorted(
        (c["contract"], c["role"], c["granted"], c["command"]) for c in body["chain_changes_needed"]
    ) == [
        (
            "EnergyMarket",
            "OPERATOR_ROLE",
            True,
            f"python -m backend.admin propose grant-role OPERATOR_ROLE {holder}",
        ),
        (
            "RECRegistry",
            "REGISTRAR_ROLE",
            True,
            f"python -m backend.admin propose grant-role REGISTRAR_ROLE {holder}",
        ),
    ]
    assert not has_role(chain, chain.market, "OPERATOR_ROLE", me["address"])  # nothing sent
    assert not has_role(chain, chain.registry, "REGISTRAR_ROLE", me["address"])
    assert (
        client.get("/v1/settlement/flags", headers=user).status_code == 200
    )  # same token, new role

    operators = client.get(
        "/v1/admin/accounts", headers=admin["headers"], params={"role": "operator"}
    ).json()
    assert [a["id"] for a in operators["items"]] == [me["id"]]

    revoked = client.put(
        f"/v1/admin/accounts/{me['id']}/roles",
        headers=admin["headers"],
        json={"roles": ["participant"]},
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["chain_changes_needed"] == []  # the chain already matches
    refused = client.get("/v1/settlement/flags", headers=user)  # the token still claims operator
    assert refused.status_code == 403 and refused.json()["required_role"] == "operator"


def test_wallet_accounts_get_the_same_proposals(chain_api, admin):
    client, chain = chain_api.client, chain_for(chain_api.settings)
    reply = client.put(
        f"/v1/admin/accounts/{admin['id']}/roles",
        headers=admin["headers"],
        json={"roles": ["admin", "issuer"]},
    )
    assert reply.status_code == 200, reply.text
    assert [(c["role"], c["granted"]) for c in reply.json()["chain_changes_needed"]] == [
        ("ISSUER_ROLE", True)
    ]
    assert not has_role(chain, chain.registry, "ISSUER_ROLE", "0x" + "ad" * 20)


def test_last_admin_keeps_the_admin_role(chain_api, admin):
    client = chain_api.client
    alone = client.put(
        f"/v1/admin/accounts/{admin['id']}/roles",
        headers=admin["headers"],
        json={"roles": ["participant"]},
    )
    assert alone.status_code == 409 and alone.json()["type"].endswith("/last-admin")
    assert (
        client.get("/v1/admin/accounts", headers=admin["headers"]).status_code == 200
    )  # still admin

    deputy = register_and_login(client, "deputy@example.org")
    deputy_id = client.get("/v1/auth/me", headers=deputy).json()["id"]
    promoted = client.put(
        f"/v1/admin/accounts/{deputy_id}/roles", headers=admin["headers"], json={"roles": ["admin"]}
    )
    assert (
        promoted.status_code == 200 and promoted.json()["chain_changes_needed"] == []
    )  # admin is not mirrored
    stepped_down = client.put(
        f"/v1/admin/accounts/{admin['id']}/roles",
        headers=admin["headers"],
        json={"roles": ["participant"]},
    )
    assert stepped_down.status_code == 200, stepped_down.text
    assert (
        client.get("/v1/admin/accounts", headers=admin["headers"]).status_code == 403
    )  # on the next request
    last = client.put(f"/v1/admin/accounts/{deputy_id}/roles", headers=deputy, json={"roles": []})
    assert last.status_code == 409 and last.json()["type"].endswith("/last-admin")


def test_problems_for_unknown_roles_accounts_and_cursors(chain_api, admin):
    client, headers = chain_api.client, admin["headers"]
    unknown_role = client.put(
        f"/v1/admin/accounts/{admin['id']}/roles",
        headers=headers,
        json={"roles": ["admin", "superuser"]},
    )
    assert unknown_role.status_code == 422
    assert unknown_role.headers["content-type"] == "application/problem+json"
    assert unknown_role.json()["errors"][0]["loc"] == ["body", "roles", 1]
    missing = client.put(
        f"/v1/admin/accounts/{uuid.uuid4()}/roles", headers=headers, json={"roles": ["participant"]}
    )
    assert missing.status_code == 404 and missing.json()["type"].endswith("/unknown-account")
    bad_cursor = client.get("/v1/admin/accounts", headers=headers, params={"cursor": "azox"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["type"].endswith("/invalid-cursor")


def test_only_admins_administer(chain_api, admin):
    client = chain_api.client
    user = register_and_login(client, "curious@example.org")
    user_id = client.get("/v1/auth/me", headers=user).json()["id"]
    assert client.get("/v1/admin/accounts", headers=user).status_code == 403
    escalate = client.put(
        f"/v1/admin/accounts/{user_id}/roles", headers=user, json={"roles": ["admin"]}
    )
    assert escalate.status_code == 403 and escalate.json()["required_role"] == "admin"
    assert client.get("/v1/admin/accounts").status_code == 401
    with Session(chain_api.engine) as session:
        assert session.get(Account, uuid.UUID(user_id)).roles == ["participant"]


def test_accounts_are_listed_page_by_page(chain_api, admin):
    client = chain_api.client
    for n in range(4):
        register_and_login(client, f"member{n}@example.org")
    seen, cursor = [], None
    for _ in range(10):
        page = client.get(
            "/v1/admin/accounts", headers=admin["headers"], params={"limit": 2, "cursor": cursor}
        ).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len({a["id"] for a in seen}) == 5
    assert [a["id"] for a in seen] == sorted(a["id"] for a in seen)
    assert {a["email"] for a in seen} >= {"root@example.org", "member3@example.org"}
    assert all(a["active"] and "encrypted_key" not in a and "password_hash" not in a for a in seen)


def test_planned_role_changes_follow_the_chain(chain_api):
    """Once the timelock grants a role, the plan no longer asks for it, and asks to revoke it
    when the API role goes."""
    settings = chain_api.settings
    chain = chain_for(settings)
    holder = "0x" + "be" * 20
    assert [c.role for c in plan_chain_roles(chain, holder, {Role.ISSUER})] == ["ISSUER_ROLE"]
    chain_api.devnet.workload.govern(
        chain.registry.functions.grantRole(
            Web3.keccak(text="ISSUER_ROLE"), Web3.to_checksum_address(holder)
        )
    )
    assert plan_chain_roles(chain, holder, {Role.ISSUER}) == []
    assert [(c.role, c.granted) for c in plan_chain_roles(chain, holder, set())] == [
        ("ISSUER_ROLE", False)
    ]


def test_the_audit_trail_records_logins_keys_and_role_changes(chain_api, admin):
    client = chain_api.client
    headers = register_and_login(client, "audited@example.org")
    assert (
        client.post(
            "/v1/auth/login", json={"email": "audited@example.org", "password": "wrong"}
        ).status_code
        == 401
    )
    client.post("/v1/auth/api-keys", json={"name": "bot"}, headers=headers)
    me = client.get("/v1/auth/me", headers=headers).json()
    client.put(
        f"/v1/admin/accounts/{me['id']}/roles",
        json={"roles": ["participant", "issuer"]},
        headers=admin["headers"],
    )
    assert client.get("/v1/admin/audit", headers=headers).status_code == 403  # admins only
    entries = client.get("/v1/admin/audit", headers=admin["headers"]).json()["items"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "auth.login",
        "auth.login_failed",
        "auth.api_key_created",
        "admin.roles_changed",
    ]
    failed = entries[2]
    assert failed["subject"] == "audited@example.org" and failed["actor_id"] == me["id"]
    change = entries[0]
    assert change["actor_id"] == admin["id"] and change["details"]["after"] == [
        "issuer",
        "participant",
    ]
    assert all(e["prev_hash"] == p["hash"] for e, p in itertools.pairwise(entries))
    verification = client.get("/v1/admin/audit/verification", headers=admin["headers"]).json()
    assert verification == {
        "intact": True,
        "entries": 4,
        "head_hash": entries[0]["hash"],
        "first_broken_id": None,
        "problem": None,
    }
