"""`/v1/energy/withdrawals` and `/deposits` on Anvil: a settled trade's payout leaves the market
for the custodial seller's address, once; a wallet account is told to send `withdraw()` itself;
sellers deposit collateral, which a trade locks until it settles."""

from __future__ import annotations

from backend.chain.contracts import chain_for
from backend.chain.transactions import send
from backend.market.orders import collateral
from tests.fixtures.api import SELLER_DEPOSIT, match, wallet_bid
from tests.fixtures.indexing import catch_up


def matched_trade(market) -> tuple[int, tuple]:
    """The custodial seller's 2 kWh offer matched with the wallet's bid: (trade id, trade)."""
    client, api, period = market["client"], market["api"], market["period"]
    workload = api.devnet.workload
    offer = client.post(
        "/v1/trading/orders",
        headers=market["seller"],
        json={"side": "sell", "delivery_start": period, "quantity_wh": 2_000, "price": 100_000},
    )
    assert offer.status_code == 202, offer.text
    _, bid = wallet_bid(
        client,
        market["buyer"],
        market["wallet"],
        side="buy",
        delivery_start=period,
        quantity_wh=2_000,
        price=120_000,
    )
    assert bid.status_code == 202, bid.text
    (tx_hash,) = match(api)
    workload.remember_trades(workload.w3.eth.get_transaction_receipt(tx_hash))
    return workload.open_trades.pop()


def settled_trade(market) -> None:
    """`matched_trade`, delivered in part, settled."""
    workload = market["api"].devnet.workload
    trade_id, trade = matched_trade(market)
    workload.advance(trade[7] - workload.now() + 60)
    workload.tx(
        workload.settler,
        workload.c.market.functions.settleBatch([trade], [trade_id], [1_500]),  # a shortfall
    )
    catch_up(market["indexer"])


def test_custodial_seller_withdraws_the_payout_once(market):
    client, api = market["client"], market["api"]
    chain = chain_for(api.settings)
    token, contract = chain.token.functions, chain.market.functions
    seller = chain.w3.to_checksum_address(market["seller_address"])
    settled_trade(market)

    credit = contract.withdrawable(seller).call()
    assert credit > 0
    assert client.get("/v1/energy/balance", headers=market["seller"]).json()["withdrawable"] == (
        str(credit)
    )
    seller_before = token.balanceOf(seller).call()
    market_before = token.balanceOf(chain.market.address).call()

    headers = {**market["seller"], "Idempotency-Key": "withdraw-1"}
    reply = client.post("/v1/energy/withdrawals", headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["amount"] == str(credit) and body["address"] == market["seller_address"]
    assert chain.w3.eth.get_transaction_receipt(body["tx_hash"])["status"] == 1
    # token conservation: exactly the credit moved from the market to the seller
    assert token.balanceOf(seller).call() == seller_before + credit
    assert token.balanceOf(chain.market.address).call() == market_before - credit
    assert contract.withdrawable(seller).call() == 0

    # a retry with the key replays the answer without a second transaction
    retry = client.post("/v1/energy/withdrawals", headers=headers)
    assert retry.json() == body and retry.headers["Idempotent-Replayed"] == "true"
    assert token.balanceOf(seller).call() == seller_before + credit
    # a new request finds nothing left
    again = client.post("/v1/energy/withdrawals", headers=market["seller"])
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "https://gridledger.dev/problems/nothing-to-withdraw"
    catch_up(market["indexer"])
    assert client.get("/v1/energy/balance", headers=market["seller"]).json()["withdrawable"] == "0"


def test_wallet_account_is_told_to_withdraw_from_its_wallet(market):
    client, api, wallet = market["client"], market["api"], market["wallet"]
    chain = chain_for(api.settings)
    settled_trade(market)
    refund = chain.market.functions.withdrawable(wallet.address).call()
    assert refund > 0  # the shortfall's refund

    refused = client.post("/v1/energy/withdrawals", headers=market["buyer"])
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "https://gridledger.dev/problems/withdraw-from-wallet"
    assert problem["withdrawable"] == str(refund)
    call = problem["call"]
    assert (call["to"], call["function"]) == (chain.market.address, "withdraw()")
    assert chain.market.functions.withdrawable(wallet.address).call() == refund  # nothing sent

    before = chain.token.functions.balanceOf(wallet.address).call()
    send(api.devnet.w3, wallet, {"to": call["to"], "data": call["data"]})
    assert chain.token.functions.balanceOf(wallet.address).call() == before + refund


def test_custodial_seller_deposits_and_a_trade_locks_its_collateral(market):
    client, api = market["client"], market["api"]
    chain = chain_for(api.settings)
    contract = chain.market.functions
    seller = chain.w3.to_checksum_address(market["seller_address"])
    assert contract.balanceOf(seller).call() == SELLER_DEPOSIT  # deposited by the fixture

    _, trade = matched_trade(market)
    catch_up(market["indexer"])

    locked = collateral(trade[4], trade[5], trade[8], trade[9])
    assert locked > 0 and contract.lockedCollateral(seller).call() == locked
    balance = client.get("/v1/energy/balance", headers=market["seller"]).json()
    assert (balance["withdrawable"], balance["locked"]) == (
        str(SELLER_DEPOSIT - locked),
        str(locked),
    )
    # the seller has no gUSD left in its wallet: a further deposit is refused, nothing sent
    broke = client.post("/v1/energy/deposits", headers=market["seller"], json={"amount": "1"})
    assert broke.status_code == 422
    assert broke.json()["type"] == "https://gridledger.dev/problems/deposit-exceeds-balance"
    assert broke.json()["balance"] == "0" and contract.balanceOf(seller).call() == SELLER_DEPOSIT
    zero = client.post("/v1/energy/deposits", headers=market["seller"], json={"amount": "0"})
    assert zero.status_code == 422


def test_wallet_account_is_told_to_deposit_from_its_wallet(market):
    client, api, wallet = market["client"], market["api"], market["wallet"]
    chain = chain_for(api.settings)
    before = chain.market.functions.balanceOf(wallet.address).call()

    refused = client.post("/v1/energy/deposits", headers=market["buyer"], json={"amount": "5000"})

    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "https://gridledger.dev/problems/deposit-from-wallet"
    approve, deposit = problem["calls"]
    assert (approve["to"], deposit["to"]) == (chain.token.address, chain.market.address)
    assert deposit["function"] == "deposit(uint256)"
    for call in (approve, deposit):
        send(api.devnet.w3, wallet, {"to": call["to"], "data": call["data"]})
    assert chain.market.functions.balanceOf(wallet.address).call() == before + 5_000
