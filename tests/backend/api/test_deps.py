"""Authentication by Bearer JWT or API key, and role checks, at the API edge."""

import hashlib

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from backend.accounts.models import Account, ApiKey, Role
from backend.accounts.security import (
    create_access_token,
    hash_password,
    new_api_key,
    password_needs_rehash,
    verify_password,
)
from backend.api.deps import CurrentAccount, get_db, require_role
from backend.core.config import get_settings
from backend.main import create_app


@pytest.fixture
def world(db_session):
    participant = Account(
        email="p@example.org", address="0x" + "11" * 20, password_hash=hash_password("pw")
    )
    registrar = Account(
        email="r@example.org", address="0x" + "22" * 20, roles=["participant", "registrar"]
    )
    key, prefix, secret_hash = new_api_key()
    db_session.add_all([participant, registrar])
    db_session.flush()
    db_session.add(
        ApiKey(
            account_id=participant.id, name="meter gateway", prefix=prefix, secret_hash=secret_hash
        )
    )
    db_session.flush()

    app = create_app()
    router = APIRouter()

    @router.get("/me")
    def me(account: CurrentAccount):
        return {"email": account.email}

    @router.get("/registrar-only", dependencies=[require_role(Role.REGISTRAR)])
    def registrar_only():
        return {"ok": True}

    app.include_router(router)
    app.dependency_overrides[get_db] = lambda: db_session
    return TestClient(app), participant, registrar, key


def bearer(account):
    return {
        "Authorization": f"Bearer {create_access_token(account.id, account.roles, get_settings())}"
    }


def test_anonymous_request_gets_401_problem(world):
    client, *_ = world
    reply = client.get("/me")
    assert reply.status_code == 401 and reply.json()["type"].endswith("/unauthenticated")


def test_api_key_and_bearer_token_authenticate(world):
    client, participant, _, key = world
    assert client.get("/me", headers={"X-API-Key": key}).json() == {"email": "p@example.org"}
    assert client.get("/me", headers=bearer(participant)).json() == {"email": "p@example.org"}


def test_wrong_key_and_expired_token_are_rejected(world):
    client, participant, _, key = world
    assert client.get("/me", headers={"X-API-Key": key + "x"}).status_code == 401
    expired = create_access_token(participant.id, participant.roles, get_settings(), minutes=-1)
    reply = client.get("/me", headers={"Authorization": f"Bearer {expired}"})
    assert reply.status_code == 401 and "expired" in reply.json()["detail"]


def test_role_is_required(world):
    client, participant, registrar, _ = world
    denied = client.get("/registrar-only", headers=bearer(participant))
    assert denied.status_code == 403 and denied.json()["required_role"] == "registrar"
    assert client.get("/registrar-only", headers=bearer(registrar)).json() == {"ok": True}


def test_passwords_are_salted_argon2id_at_owasp_parameters():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and "correct horse" not in stored
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert hash_password("correct horse") != stored
    assert not password_needs_rehash(stored)


def test_earlier_scrypt_hashes_still_verify_and_ask_for_a_rehash():
    salt = bytes(range(16))
    digest = hashlib.scrypt(b"correct horse", salt=salt, n=2**14, r=8, p=1, dklen=32)
    legacy = f"scrypt${salt.hex()}${digest.hex()}"
    assert verify_password("correct horse", legacy) and not verify_password("wrong", legacy)
    assert password_needs_rehash(legacy)
    assert not verify_password("x", "scrypt$not-hex$00") and not verify_password(
        "x", "$argon2id$junk"
    )
