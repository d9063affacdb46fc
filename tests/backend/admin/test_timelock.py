"""Admin power lives in the timelock: the deployer renounced it, the API's role keys cannot
grant roles, and a role change proposed by the admin key runs only after the delay."""

from __future__ import annotations

import pytest
from web3 import Web3

from backend.admin.timelock import OperationState, Timelock, role_id
from backend.chain.contracts import Chain, ContractReverted
from backend.chain.transactions import signer
from backend.core.config import DEVNET_TIMELOCK_DELAY_S, ROLE_KEY_SETTINGS, Settings
from scripts.deploy import deploy_all

DEFAULT_ADMIN = b"\0" * 32
STRANGER = "0x" + "5a" * 20


@pytest.fixture
def deployed(anvil, tmp_path) -> tuple[Settings, Chain, Timelock]:
    settings = Settings(_env_file=None, data_dir=tmp_path, rpc_url=anvil.rpc_url)
    deployment = deploy_all(Web3(Web3.HTTPProvider(anvil.rpc_url)), settings)
    chain = Chain(Web3(Web3.HTTPProvider(anvil.rpc_url)), deployment)
    return settings, chain, Timelock(chain)


def advance(chain: Chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def key_address(settings: Settings, name: str) -> str:
    return signer(getattr(settings, name).get_secret_value()).address


def test_the_timelock_holds_every_admin_role_and_the_deployer_none(deployed):
    settings, chain, timelock = deployed
    deployer = key_address(settings, "deployer_private_key")
    admin = key_address(settings, "admin_private_key")
    assert chain.demand_response is not None
    for contract in (chain.token, chain.registry, chain.market, chain.demand_response):
        assert contract.functions.hasRole(DEFAULT_ADMIN, timelock.contract.address).call()
        assert not contract.functions.hasRole(DEFAULT_ADMIN, deployer).call()
        for name in ROLE_KEY_SETTINGS:  # the API's and workers' keys
            assert not contract.functions.hasRole(DEFAULT_ADMIN, key_address(settings, name)).call()
    functions = timelock.contract.functions
    for role in ("PROPOSER_ROLE", "EXECUTOR_ROLE", "CANCELLER_ROLE"):
        assert functions.hasRole(role_id(role), admin).call()
        assert not functions.hasRole(role_id(role), deployer).call()
    assert functions.hasRole(DEFAULT_ADMIN, timelock.contract.address).call()  # self-governed
    assert not functions.hasRole(DEFAULT_ADMIN, deployer).call()
    assert functions.getMinDelay().call() == DEVNET_TIMELOCK_DELAY_S == 60
    assert chain.token.functions.hasRole(role_id("MINTER_ROLE"), deployer).call()  # the faucet
    assert chain.deployment.roles["timelock"] == timelock.contract.address


def test_a_role_grant_runs_only_after_the_delay(deployed):
    settings, chain, timelock = deployed
    admin = signer(settings.admin_private_key.get_secret_value())
    target, data = timelock.role_call("grant", "OPERATOR_ROLE", STRANGER)
    assert target == chain.market.address
    operation = timelock.propose(admin, target, data)
    scheduled_at = chain.w3.eth.get_block("latest")["timestamp"]
    assert operation.state == OperationState.WAITING
    assert operation.eta == scheduled_at + 60
    assert operation.contract == "EnergyMarket"
    assert operation.description == (
        f"grantRole(OPERATOR_ROLE, {Web3.to_checksum_address(STRANGER)})"
    )
    assert [op.id for op in timelock.pending()] == [operation.id]

    with pytest.raises(ContractReverted) as early:
        timelock.execute(admin, operation.id)
    assert early.value.code == "contract/TimelockUnexpectedOperationState"
    assert early.value.extensions["arguments"]["operationId"] == operation.id
    holder = Web3.to_checksum_address(STRANGER)
    assert not chain.market.functions.hasRole(role_id("OPERATOR_ROLE"), holder).call()

    advance(chain, 60)
    assert timelock.operation(operation.id).state == OperationState.READY
    timelock.execute(admin, operation.id)
    assert chain.market.functions.hasRole(role_id("OPERATOR_ROLE"), holder).call()
    assert timelock.operation(operation.id).state == OperationState.DONE
    assert timelock.pending() == []


def test_a_demand_response_settler_is_granted_through_the_timelock(deployed):
    settings, chain, timelock = deployed
    admin = signer(settings.admin_private_key.get_secret_value())
    dr = chain.demand_response
    assert dr is not None
    holder = Web3.to_checksum_address(STRANGER)
    with pytest.raises(ContractReverted) as direct:  # the deployer renounced its admin role
        chain.transact(
            signer(settings.deployer_private_key.get_secret_value()),
            dr.functions.grantRole(role_id("SETTLER_ROLE"), holder),
        )
    assert direct.value.code == "contract/AccessControlUnauthorizedAccount"
    target, data = timelock.role_call("grant", "SETTLER_ROLE", STRANGER, "DemandResponse")
    assert target == dr.address
    operation = timelock.propose(admin, target, data)
    assert operation.contract == "DemandResponse"
    advance(chain, 60)
    timelock.execute(admin, operation.id)
    assert dr.functions.hasRole(role_id("SETTLER_ROLE"), holder).call()
    assert not chain.market.functions.hasRole(role_id("SETTLER_ROLE"), holder).call()


def test_the_api_keys_cannot_grant_roles_nor_propose(deployed):
    settings, chain, timelock = deployed
    for name in (*ROLE_KEY_SETTINGS, "deployer_private_key"):
        key = signer(getattr(settings, name).get_secret_value())
        with pytest.raises(ContractReverted) as refused:
            chain.transact(
                key, chain.registry.functions.grantRole(role_id("ISSUER_ROLE"), key.address)
            )
        assert refused.value.code == "contract/AccessControlUnauthorizedAccount"
        assert refused.value.extensions["arguments"] == {
            "account": key.address.lower(),
            "neededRole": "0x" + "00" * 32,
        }
        target, data = timelock.role_call("grant", "ISSUER_ROLE", key.address)
        with pytest.raises(ContractReverted) as not_proposer:
            timelock.propose(key, target, data)
        assert not_proposer.value.extensions["arguments"]["neededRole"] == (
            "0x" + role_id("PROPOSER_ROLE").hex()
        )


def test_a_cancelled_proposal_never_runs(deployed):
    settings, chain, timelock = deployed
    admin = signer(settings.admin_private_key.get_secret_value())
    operator = key_address(settings, "operator_private_key")
    operation = timelock.propose(admin, *timelock.role_call("revoke", "OPERATOR_ROLE", operator))
    timelock.cancel(admin, operation.id)
    advance(chain, 60)
    assert timelock.pending() == []
    with pytest.raises(ContractReverted, match="TimelockUnexpectedOperationState"):
        timelock.execute(admin, operation.id)
    assert chain.market.functions.hasRole(role_id("OPERATOR_ROLE"), operator).call()
