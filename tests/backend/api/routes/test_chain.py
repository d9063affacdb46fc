"""`GET /v1/chain` (backend/api/routes/chain.py): what a browser wallet needs to add and use
our chain, read from the deployment and the token contract."""

from __future__ import annotations

from backend.chain.contracts import chain_for
from backend.core.config import get_settings


def test_chain_parameters_for_wallets_are_public(chain_api):
    chain = chain_for(chain_api.settings)
    reply = chain_api.client.get("/v1/chain")  # no credentials: the page asks before sign-in
    assert reply.status_code == 200, reply.text
    info = reply.json()
    assert (info["chain_id"], info["chain_id_hex"]) == ("31337", "0x7a69")
    assert info["rpc_url"] == chain_api.settings.rpc_url  # development: the devnet's own
    assert info["contracts"] == {
        "market": chain.market.address.lower(),
        "registry": chain.registry.address.lower(),
        "token": chain.token.address.lower(),
    }
    assert info["token"] == {
        "address": chain.token.address.lower(),
        "symbol": "gUSD",
        "decimals": 6,
    }
    assert info["native_currency"]["decimals"] == 18


def test_public_rpc_url_is_configured_and_never_leaks_the_private_one(chain_api):
    client, settings = chain_api.client, chain_api.settings
    app = client.app
    for update, expected in (
        ({"public_rpc_url": "https://rpc.example.org"}, "https://rpc.example.org"),
        ({"environment": "staging", "public_rpc_url": ""}, None),
    ):
        changed = settings.model_copy(update=update)
        app.dependency_overrides[get_settings] = lambda changed=changed: changed
        assert client.get("/v1/chain").json()["rpc_url"] == expected
