"""`/v1/dr` money on Anvil: a custodial operator escrows its program's budget, a custodial
participant posts collateral, then withdraws its settled incentive once; a wallet account is
told which calls to send."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.chain.contracts import chain_for
from backend.chain.transactions import send
from backend.dr.onchain import bytes32_id
from tests.fixtures.api import register_and_login, siwe_sign_in
from tests.fixtures.dr import program_body

FUNDS = 100_000_000


def custodial(api, email: str, *, roles: list[str] | None = None) -> tuple[dict, str]:
    """A registered custodial account with gas and FUNDS gUSD: (headers, address)."""
    client, devnet = api.client, api.devnet
    headers = register_and_login(client, email)
    address = client.get("/v1/auth/me", headers=headers).json()["address"]
    checksum = devnet.w3.to_checksum_address(address)
    admin = devnet.workload.admin
    send(devnet.w3, admin, {"to": checksum, "value": 10**18, "gas": 21_000})
    token = devnet.workload.c.token
    send(
        devnet.w3, admin, {"to": token.address, "data": token.encode_abi("mint", [checksum, FUNDS])}
    )
    if roles:
        with Session(api.engine) as session:
            account = session.exec(select(Account).where(Account.address == address)).one()
            account.roles = roles
            session.add(account)
            session.commit()
        tokens = client.post(  # a new token carries the new roles
            "/v1/auth/login", json={"email": email, "password": "correct horse battery"}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    return headers, address


def test_budget_collateral_and_withdrawal_through_the_api(chain_api):
    api = chain_api
    client = api.client
    chain = chain_for(api.settings)
    dr = chain.demand_response
    assert dr is not None
    operator, operator_address = custodial(api, "utility@example.org", roles=["operator"])
    participant, participant_address = custodial(api, "household@example.org")
    program = client.post("/v1/dr/programs", json=program_body(), headers=operator)
    assert program.status_code == 201, program.text
    program_id = program.json()["id"]
    key = bytes32_id(uuid.UUID(program_id))

    not_theirs = client.post(
        f"/v1/dr/programs/{program_id}/budget", json={"amount": "1"}, headers=participant
    )
    assert not_theirs.status_code == 403
    funded = client.post(
        f"/v1/dr/programs/{program_id}/budget", json={"amount": "30000000"}, headers=operator
    )
    assert funded.status_code == 201, funded.text
    assert chain.w3.eth.get_transaction_receipt(funded.json()["tx_hash"])["status"] == 1
    more = client.post(
        f"/v1/dr/programs/{program_id}/budget", json={"amount": "5000000"}, headers=operator
    )
    assert more.status_code == 201, more.text
    utility, closed, budget = dr.functions.programInfo(key).call()
    assert (utility.lower(), closed, budget) == (operator_address, False, 35_000_000)

    posted = client.post(
        f"/v1/dr/programs/{program_id}/collateral", json={"amount": "2000000"}, headers=participant
    )
    assert posted.status_code == 201, posted.text
    participant_checksum = chain.w3.to_checksum_address(participant_address)
    assert dr.functions.collateralOf(key, participant_checksum).call() == 2_000_000

    nothing = client.post("/v1/dr/withdrawals", headers=participant)
    assert nothing.status_code == 409 and nothing.json()["type"].endswith("/nothing-to-withdraw")
    workload = api.devnet.workload
    workload.tx(
        workload.settler,
        dr.functions.settle(key, b"\x01" * 32, [(participant_checksum, 1_234_567, 0)]),
    )
    token = chain.token.functions
    before = token.balanceOf(participant_checksum).call()
    paid = client.post("/v1/dr/withdrawals", headers=participant)
    assert paid.status_code == 200, paid.text
    assert paid.json()["amount"] == "1234567" and paid.json()["address"] == participant_address
    assert token.balanceOf(participant_checksum).call() == before + 1_234_567
    again = client.post("/v1/dr/withdrawals", headers=participant)
    assert again.status_code == 409
    f = dr.functions
    held = f.totalBalances().call() + f.totalBudgets().call() + f.totalCollateral().call()
    assert held == token.balanceOf(dr.address).call() == 35_000_000 - 1_234_567 + 2_000_000


def test_a_wallet_account_is_given_the_calls(chain_api):
    api = chain_api
    wallet = api.devnet.workload.people[1]
    headers = siwe_sign_in(api.client, wallet, chain_id=api.settings.chain_id)
    reply = api.client.post("/v1/dr/withdrawals", headers=headers)
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert problem["type"].endswith("/wallet-must-sign")
    dr = chain_for(api.settings).demand_response
    assert dr is not None
    assert [(c["to"], c["function"]) for c in problem["calls"]] == [(dr.address, "withdraw()")]
