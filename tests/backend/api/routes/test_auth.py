"""Accounts and auth through the API: register/login/refresh/logout, API keys, custody (SIWE:
`test_auth_siwe.py`)."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from backend.accounts.custody import custodial_signer, encrypt_key
from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.errors import ConfigurationError
from tests.fixtures.api import register_and_login

PASSWORD = "correct horse battery"


def test_register_creates_custodial_account_with_encrypted_key(
    client, db_session, api_settings, caplog
):
    caplog.set_level(logging.DEBUG)
    reply = client.post(
        "/v1/auth/register", json={"email": "Alice@Example.org", "password": PASSWORD}
    )
    assert reply.status_code == 201
    body = reply.json()
    assert body["email"] == "alice@example.org" and body["kind"] == "custodial"
    assert body["roles"] == ["participant"] and body["address"].startswith("0x")
    assert "encrypted_key" not in body and "password_hash" not in body

    account = db_session.exec(select(Account).where(Account.email == "alice@example.org")).one()
    signer = custodial_signer(account.encrypted_key, account.id, api_settings)
    assert signer.address.lower() == body["address"]
    key_hex = bytes(signer.key).hex()
    assert key_hex not in account.encrypted_key and key_hex not in reply.text
    assert key_hex not in caplog.text
    # bound to the account: the ciphertext does not decrypt for another account id
    with pytest.raises(ConfigurationError):
        custodial_signer(account.encrypted_key, uuid.uuid4(), api_settings)


def test_duplicate_email_is_conflict(client):
    client.post("/v1/auth/register", json={"email": "bob@example.org", "password": PASSWORD})
    again = client.post(
        "/v1/auth/register", json={"email": "bob@example.org", "password": PASSWORD}
    )
    assert again.status_code == 409 and again.json()["type"].endswith("/email-taken")


def test_login_wrong_password_is_401(client):
    client.post("/v1/auth/register", json={"email": "c@example.org", "password": PASSWORD})
    reply = client.post("/v1/auth/login", json={"email": "c@example.org", "password": "nope"})
    assert reply.status_code == 401 and reply.json()["type"].endswith("/invalid-credentials")


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    client.post("/v1/auth/register", json={"email": "d@example.org", "password": PASSWORD})
    first = client.post(
        "/v1/auth/login", json={"email": "d@example.org", "password": PASSWORD}
    ).json()
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.json()["email"] == "d@example.org"
    # replaying the rotated token is refused and kills the newer one as well
    replay = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and replay.json()["type"].endswith("/invalid-refresh-token")
    assert (
        client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code
        == 401
    )


def test_logout_revokes_refresh_token(client):
    client.post("/v1/auth/register", json={"email": "e@example.org", "password": PASSWORD})
    tokens = client.post(
        "/v1/auth/login", json={"email": "e@example.org", "password": PASSWORD}
    ).json()
    assert (
        client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 204
    )
    assert (
        client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 401
    )


def test_api_keys_create_list_revoke(client):
    headers = register_and_login(client, "f@example.org")
    created = client.post("/v1/auth/api-keys", json={"name": "gateway"}, headers=headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert client.get("/v1/auth/me", headers={"X-API-Key": key}).json()["email"] == "f@example.org"
    listed = client.get("/v1/auth/api-keys", headers=headers).json()
    assert [k["name"] for k in listed] == ["gateway"] and "key" not in listed[0]
    revoked = client.delete(f"/v1/auth/api-keys/{created.json()['id']}", headers=headers)
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_other_accounts_key_cannot_be_revoked(client):
    owner = register_and_login(client, "g@example.org")
    other = register_and_login(client, "h@example.org")
    key_id = client.post("/v1/auth/api-keys", json={"name": "k"}, headers=owner).json()["id"]
    assert client.delete(f"/v1/auth/api-keys/{key_id}", headers=other).status_code == 404


def test_settings_refuse_dev_master_key_outside_development(tmp_path):
    with pytest.raises(ConfigurationError, match="MASTER_KEY_HEX"):
        Settings(
            _env_file=None,
            environment="production",
            data_dir=tmp_path,
            deployer_private_key="0x" + "1" * 64,
            settler_private_key="0x" + "2" * 64,
            operator_private_key="0x" + "3" * 64,
            issuer_private_key="0x" + "4" * 64,
            registrar_private_key="0x" + "5" * 64,
            secret_key="s" * 40,
        )
    with pytest.raises(ConfigurationError, match="64 hex"):
        Settings(_env_file=None, data_dir=tmp_path, master_key_hex="abcd")


@pytest.fixture(params=["redis", "in-process"])
def store_mode(request, api_settings):
    """Run a test against Redis and against the embedded (no server) store."""
    if request.param == "in-process":
        api_settings.redis_url = ""
    return request.param


def test_rate_limit_per_account(client, api_settings, store_mode):
    headers = register_and_login(client, f"rl-{store_mode}@example.org")
    api_settings.rate_limit_per_minute = 3
    codes = [client.get("/v1/auth/me", headers=headers).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    limited = client.get("/v1/auth/me", headers=headers)
    assert (
        limited.json()["type"].endswith("/rate-limited")
        and int(limited.headers["Retry-After"]) <= 60
    )


def test_idempotency_key_replays_stored_response(client, store_mode):
    key = f"reg-{store_mode}"
    first = client.post(
        "/v1/auth/register",
        json={"email": "i@example.org", "password": PASSWORD},
        headers={"Idempotency-Key": key},
    )
    again = client.post(
        "/v1/auth/register",
        json={"email": "i@example.org", "password": PASSWORD},
        headers={"Idempotency-Key": key},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        "/v1/auth/register",
        json={"email": "j@example.org", "password": PASSWORD},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


def test_a_replay_is_refused_once_the_api_key_is_revoked(client, db_session):
    owner = register_and_login(client, "k@example.org")
    api_key = client.post("/v1/auth/api-keys", json={"name": "bot"}, headers=owner).json()
    as_bot = {"X-API-Key": api_key["key"], "Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/v1/auth/api-keys", json={"name": "made by bot"}, headers=as_bot)
    assert first.status_code == 201
    assert client.post(
        "/v1/auth/api-keys", json={"name": "made by bot"}, headers=as_bot
    ).json() == (first.json())
    assert client.delete(f"/v1/auth/api-keys/{api_key['id']}", headers=owner).status_code == 200
    replay = client.post("/v1/auth/api-keys", json={"name": "made by bot"}, headers=as_bot)
    assert replay.status_code == 401 and "idempotent-replayed" not in replay.headers
    assert first.json()["key"] not in replay.text


def test_a_replay_is_refused_once_the_account_is_disabled(client, db_session):
    headers = register_and_login(client, "l@example.org") | {"Idempotency-Key": "made-once"}
    first = client.post("/v1/auth/api-keys", json={"name": "k"}, headers=headers)
    assert first.status_code == 201
    account = db_session.exec(select(Account).where(Account.email == "l@example.org")).one()
    account.active = False
    db_session.add(account)
    db_session.flush()
    replay = client.post("/v1/auth/api-keys", json={"name": "k"}, headers=headers)
    assert replay.status_code == 401 and first.json()["key"] not in replay.text


def test_key_encryption_uses_fresh_nonces(api_settings):
    account_id = uuid.uuid4()
    key = bytes(range(32))
    assert encrypt_key(key, account_id, api_settings) != encrypt_key(key, account_id, api_settings)


def test_a_login_rehashes_an_earlier_scrypt_password(client, db_session):
    client.post("/v1/auth/register", json={"email": "m@example.org", "password": PASSWORD})
    account = db_session.exec(select(Account).where(Account.email == "m@example.org")).one()
    salt = bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    account.password_hash = f"scrypt${salt.hex()}${digest.hex()}"
    db_session.add(account)
    db_session.flush()
    login = client.post("/v1/auth/login", json={"email": "m@example.org", "password": PASSWORD})
    assert login.status_code == 200
    db_session.refresh(account)
    assert account.password_hash.startswith("$argon2id$")


def test_unauthenticated_routes_are_throttled_per_client_ip(client, api_settings):
    api_settings.anonymous_rate_limit_per_minute = 3
    answers = [client.get("/v1/auth/siwe/nonce").status_code for _ in range(4)]
    assert answers[:3] == [200, 200, 200] and answers[3] == 429
    refused = client.post("/v1/auth/login", json={"email": "n@example.org", "password": "x"})
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    other = TestClient(client.app, client=("10.9.8.7", 1234))  # another address is not affected
    assert other.get("/v1/auth/siwe/nonce").status_code == 200


def test_failed_logins_back_off_per_email_and_a_success_resets(client, api_settings):
    api_settings.login_failures_before_backoff = 3
    client.post("/v1/auth/register", json={"email": "o@example.org", "password": PASSWORD})
    wrong = {"email": "o@example.org", "password": "wrong password"}
    answers = [client.post("/v1/auth/login", json=wrong).status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    # the third failure starts a 1 s wait: even the right password waits, from any address
    right = {"email": "O@example.org", "password": PASSWORD}
    elsewhere = TestClient(client.app, client=("10.9.8.7", 1234))
    waiting = elsewhere.post("/v1/auth/login", json=right)
    assert waiting.status_code == 429 and waiting.headers["Retry-After"] == "1"
    assert (
        client.post("/v1/auth/login", json={**wrong, "email": "p@example.org"}).status_code == 401
    )
    time.sleep(1.1)
    assert client.post("/v1/auth/login", json=wrong).status_code == 401  # 4th failure: 2 s
    assert client.post("/v1/auth/login", json=right).headers["Retry-After"] == "2"
    time.sleep(2.1)
    assert client.post("/v1/auth/login", json=right).status_code == 200
    assert client.post("/v1/auth/login", json=wrong).status_code == 401  # counting starts again
