"""`Chain.read`: chain time and several view calls in one JSON-RPC batch, on a real Anvil."""

from __future__ import annotations

import pytest

from backend.chain.contracts import Chain, ContractReverted, chain_for
from backend.core.errors import InvalidInput, ServiceUnavailable
from scripts.workload import DEPOSIT


@pytest.fixture
def chain(devnet) -> Chain:
    return chain_for(devnet.settings)


def test_read_returns_latest_block_time_and_the_same_values_as_web3(chain, devnet):
    person = devnet.workload.people[0]
    market = chain.market.address
    now, values = chain.read(
        chain.view(chain.market, "nonces", person.address),
        chain.view(chain.token, "balanceOf", person.address),
        chain.view(chain.token, "allowance", person.address, market),
        chain.view(chain.registry, "isApprovedForAll", person.address, market),
    )
    assert now == devnet.w3.eth.get_block("latest")["timestamp"]
    assert values == [
        chain.market.functions.nonces(person.address).call(),
        chain.token.functions.balanceOf(person.address).call(),
        chain.token.functions.allowance(person.address, market).call(),
        True,
    ]
    assert values[1] == 10**12 - DEPOSIT  # funded by the workload, which deposits collateral


def test_read_sees_a_nonce_bump_in_the_next_block(chain, devnet):
    person = devnet.workload.people[1]
    before = chain.read(chain.view(chain.market, "nonces", person.address))[1][0]
    devnet.workload.tx(person, devnet.workload.c.market.functions.incrementNonce())
    devnet.workload.advance(60)
    now, (after,) = chain.read(chain.view(chain.market, "nonces", person.address))
    assert after == before + 1
    assert now == devnet.w3.eth.get_block("latest")["timestamp"]


def test_read_without_calls_is_chain_time(chain, devnet):
    now, values = chain.read()
    assert (now, values) == (devnet.w3.eth.get_block("latest")["timestamp"], [])


def test_read_translates_a_custom_error_revert(chain):
    with pytest.raises(ContractReverted) as caught:
        chain.read(chain.view(chain.registry, "device", 999_999))
    assert caught.value.code == "contract/RECRegistryUnknownDevice"
    assert caught.value.extensions["arguments"] == {"deviceId": 999_999}


def test_read_reports_an_unreachable_node_as_service_unavailable(devnet):
    chain = chain_for(devnet.settings.model_copy(update={"rpc_url": "http://127.0.0.1:9"}))
    with pytest.raises(ServiceUnavailable):
        chain.read(chain.view(chain.market, "nonces", devnet.workload.people[0].address))


def test_view_refuses_a_function_the_abi_does_not_have(chain):
    with pytest.raises(InvalidInput, match="nonces with 2 arguments"):
        chain.view(chain.market, "nonces", "0x" + "11" * 20, 1)
