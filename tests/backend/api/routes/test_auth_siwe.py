"""Sign-In with Ethereum through the API: messages as wallets build them (the npm `siwe`
library), each refusal as its own RFC 9457 problem, and contract wallets (ERC-1271) on Anvil."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct

from backend.accounts.siwe import siwe_message
from backend.core.config import PROJECT_ROOT
from tests.fixtures.contract_wallets import deploy_contract_wallet, signed_siwe

SIWE_SCRIPT = PROJECT_ROOT / "tests" / "fixtures" / "siwe_sign.mjs"


def _nonce(client) -> str:
    return client.get("/v1/auth/siwe/nonce").json()["nonce"]


def _signed(wallet, message: str) -> dict[str, str]:
    signature = EthAccount.sign_message(encode_defunct(text=message), wallet.key).signature
    return {"message": message, "signature": "0x" + bytes(signature).hex()}


def _message(client, wallet, *, nonce=None, uri=None, chain_id=31337, issued_at=None) -> str:
    return siwe_message(
        uri=uri or str(client.base_url),
        chain_id=chain_id,
        address=wallet.address,
        nonce=nonce or _nonce(client),
        issued_at=issued_at or datetime.now(UTC),
    )


def _me(client, tokens) -> dict:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    return client.get("/v1/auth/me", headers=headers).json()


def test_sign_in_with_ethereum_creates_wallet_account(client):
    wallet = EthAccount.create()
    reply = client.post("/v1/auth/siwe/verify", json=_signed(wallet, _message(client, wallet)))
    assert reply.status_code == 200, reply.text
    me = _me(client, reply.json())
    assert me["kind"] == "wallet" and me["address"] == wallet.address.lower()


def test_message_built_and_signed_by_the_npm_siwe_library_signs_in(client):
    """What a dapp sends: `new SiweMessage({...}).prepareMessage()` for the served host, signed
    with an ethers wallet (millisecond `Issued At`, trailing-slash URI, EIP-55 address)."""
    nonce = client.get("/v1/auth/siwe/nonce").json()
    assert nonce["domain"] == "testserver" and nonce["chain_id"] == 31337
    wallet = EthAccount.create()
    signed = subprocess.run(
        [
            "node",
            str(SIWE_SCRIPT),
            json.dumps(
                {
                    "key": "0x" + bytes(wallet.key).hex(),
                    "domain": nonce["domain"],
                    "uri": str(client.base_url) + "/",
                    "nonce": nonce["nonce"],
                    "chainId": nonce["chain_id"],
                }
            ),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body = json.loads(signed.stdout)
    assert body["message"].startswith("testserver wants you to sign in")
    assert re.search(r"\nIssued At: \S+T\S+\.\d{3}Z", body["message"])  # milliseconds
    reply = client.post("/v1/auth/siwe/verify", json=body)
    assert reply.status_code == 200, reply.text
    assert _me(client, reply.json())["address"] == wallet.address.lower()
    replay = client.post("/v1/auth/siwe/verify", json=body)
    assert replay.status_code == 401 and replay.json()["type"].endswith("/siwe-nonce-invalid")


REFUSALS = {
    "wrong domain": (
        lambda m: m.replace("testserver wants", "evil.example wants"),
        "siwe-domain-mismatch",
        "domain 'evil.example' is not where this API is served (testserver)",
    ),
    "domain with another port": (
        lambda m: m.replace("testserver wants", "testserver:8443 wants"),
        "siwe-domain-mismatch",
        "testserver:8443",
    ),
    "URI on another origin": (
        lambda m: m.replace("URI: http://testserver", "URI: http://evil.example"),
        "siwe-uri-mismatch",
        "is not on the domain 'testserver'",
    ),
    "URI on another port": (
        lambda m: m.replace("URI: http://testserver", "URI: http://testserver:81"),
        "siwe-uri-mismatch",
        "http://testserver:81",
    ),
    "URI not http": (
        lambda m: m.replace("URI: http://testserver", "URI: ftp://testserver"),
        "siwe-uri-mismatch",
        "ftp://testserver",
    ),
    "wrong chain id": (
        lambda m: m.replace("Chain ID: 31337", "Chain ID: 1"),
        "siwe-chain-mismatch",
        "chain id 1 is not this API's chain 31337",
    ),
    "expired": (
        lambda m: m + "\nExpiration Time: 2020-01-01T00:00:00Z",
        "siwe-not-current",
        "message expired at 2020-01-01T00:00:00Z",
    ),
    "not yet valid": (
        lambda m: m + "\nNot Before: 2999-01-01T00:00:00Z",
        "siwe-not-current",
        "not valid before 2999-01-01T00:00:00Z",
    ),
}


@pytest.mark.parametrize("change", REFUSALS.values(), ids=REFUSALS.keys())
def test_siwe_refusals_are_problems_and_keep_the_nonce(client, change):
    edit, code, detail = change
    wallet = EthAccount.create()
    nonce = _nonce(client)
    reply = client.post(
        "/v1/auth/siwe/verify", json=_signed(wallet, edit(_message(client, wallet, nonce=nonce)))
    )
    assert reply.status_code == 401
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["type"].endswith(f"/{code}") and detail in problem["detail"], problem
    # a refused message does not use up the nonce: the correct one still signs in
    retry = client.post(
        "/v1/auth/siwe/verify", json=_signed(wallet, _message(client, wallet, nonce=nonce))
    )
    assert retry.status_code == 200, retry.text


@pytest.mark.parametrize("minutes", [-6, 6], ids=["stale", "from the future"])
def test_issued_at_outside_the_window_is_refused(client, api_settings, minutes):
    assert api_settings.siwe_issued_at_window_s == 300
    wallet = EthAccount.create()
    issued_at = datetime.now(UTC) + timedelta(minutes=minutes)
    message = _message(client, wallet, issued_at=issued_at)
    reply = client.post("/v1/auth/siwe/verify", json=_signed(wallet, message))
    assert reply.status_code == 401 and reply.json()["type"].endswith("/siwe-not-current")
    assert "more than 300 s from now" in reply.json()["detail"]
    within = _message(client, wallet, issued_at=datetime.now(UTC) - timedelta(minutes=4))
    assert client.post("/v1/auth/siwe/verify", json=_signed(wallet, within)).status_code == 200


def test_nonce_is_single_use_and_must_be_issued(client):
    wallet = EthAccount.create()
    nonce = _nonce(client)
    first = _signed(wallet, _message(client, wallet, nonce=nonce))
    assert client.post("/v1/auth/siwe/verify", json=first).status_code == 200
    # the same nonce in a freshly signed message
    again = client.post(
        "/v1/auth/siwe/verify", json=_signed(wallet, _message(client, wallet, nonce=nonce))
    )
    assert again.status_code == 401 and again.json()["type"].endswith("/siwe-nonce-invalid")
    made_up = client.post(
        "/v1/auth/siwe/verify",
        json=_signed(wallet, _message(client, wallet, nonce="a" * 32)),
    )
    assert made_up.status_code == 401 and made_up.json()["type"].endswith("/siwe-nonce-invalid")


def test_configured_domains_replace_the_request_host(client, api_settings):
    api_settings.siwe_domains = ["gridledger.example"]
    nonce = client.get("/v1/auth/siwe/nonce").json()
    assert nonce["domain"] == "gridledger.example"
    wallet = EthAccount.create()
    served_here = client.post(
        "/v1/auth/siwe/verify", json=_signed(wallet, _message(client, wallet))
    )
    assert served_here.status_code == 401
    assert served_here.json()["type"].endswith("/siwe-domain-mismatch")
    # a page on the configured domain (https, default port) signs in through this host
    page = _message(client, wallet, uri="https://gridledger.example/login")
    assert page.startswith("gridledger.example wants")
    assert client.post("/v1/auth/siwe/verify", json=_signed(wallet, page)).status_code == 200


# ------------------------------------------------------------ contract wallets (ERC-1271)


def test_contract_wallet_signs_in_with_its_owners_signature(chain_api):
    client, devnet = chain_api.client, chain_api.devnet
    owner, stranger = devnet.workload.people[2], devnet.workload.people[3]
    wallet = deploy_contract_wallet(devnet, owner)
    chain_id = chain_api.settings.chain_id

    forged = client.post(
        "/v1/auth/siwe/verify", json=signed_siwe(client, wallet, stranger, chain_id=chain_id)
    )
    assert forged.status_code == 401
    assert forged.json()["type"].endswith("/invalid-signature"), forged.json()
    assert wallet in forged.json()["detail"]

    reply = client.post(
        "/v1/auth/siwe/verify", json=signed_siwe(client, wallet, owner, chain_id=chain_id)
    )
    assert reply.status_code == 200, reply.text
    me = _me(client, reply.json())
    assert me["kind"] == "wallet" and me["address"] == wallet.lower()


def test_key_wallet_signature_from_another_key_is_refused(chain_api):
    """An address without code: the signature must be its key's (its ERC-1271 answer is none)."""
    client = chain_api.client
    wallet, thief = EthAccount.create(), EthAccount.create()
    message = _message(client, wallet)
    reply = client.post("/v1/auth/siwe/verify", json=_signed(thief, message))
    assert reply.status_code == 401 and reply.json()["type"].endswith("/invalid-signature")
    # a malformed signature of another length is a refusal too, not an error
    body = {"message": message, "signature": "0x" + "00" * 100}
    reply = client.post("/v1/auth/siwe/verify", json=body)
    assert reply.status_code == 401 and reply.json()["type"].endswith("/invalid-signature")
