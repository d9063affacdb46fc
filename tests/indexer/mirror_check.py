"""Compare every derived table with what the contracts report through view calls."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.engine import Engine

from indexer.models import (
    Certificate,
    ChainEvent,
    Claim,
    Device,
    Holding,
    MakerNonce,
    MarketBalance,
    MarketOrder,
    RoleGrant,
    TokenBalance,
    Trade,
)
from scripts.workload import Workload

TRADE_STATUS = {0: None, 1: "open", 2: "settled", 3: "reclaimed"}
DEVICE_STATUS = {0: "pending", 1: "approved", 2: "suspended"}


def rows(engine: Engine, model) -> list[dict]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(model.__table__)).mappings()]


def assert_mirror_equals_chain(engine: Engine, workload: Workload) -> dict[str, int]:
    c = workload.c
    market, registry, token = c.market.functions, c.registry.functions, c.token.functions
    people = [p.address.lower() for p in workload.people]
    counts = {}

    trades = {r["trade_id"]: r for r in rows(engine, Trade)}
    assert len(trades) == market.lastTradeId().call()
    escrowed = 0
    for trade_id, trade in trades.items():
        on_chain = TRADE_STATUS[market.tradeStatus(trade_id).call()]
        assert (on_chain or "swapped") == trade["status"], f"trade {trade_id}"
        if trade["status"] == "open":
            escrowed += trade["payment"]
    assert escrowed == market.totalEscrowed().call()
    counts["trades"] = len(trades)

    for order in rows(engine, MarketOrder):
        key = bytes.fromhex(order["order_hash"][2:])
        assert market.filled(key).call() == order["filled_wh"], order["order_hash"]
        assert market.isListed(key).call() == order["listed"]
        assert market.isCancelled(key).call() == order["cancelled"]
    nonces = {r["maker"]: r["nonce"] for r in rows(engine, MakerNonce)}
    for person in workload.people:
        assert market.nonces(person.address).call() == nonces.get(person.address.lower(), 0)

    balances = {r["account"]: r["withdrawable"] for r in rows(engine, MarketBalance)}
    for account in set(balances) | set(people):
        assert market.withdrawable(c.w3.to_checksum_address(account)).call() == balances.get(
            account, 0
        )
    assert sum(balances.values()) == market.totalWithdrawable().call()

    token_balances = {r["account"]: r["balance"] for r in rows(engine, TokenBalance)}
    for account, balance in token_balances.items():
        assert token.balanceOf(c.w3.to_checksum_address(account)).call() == balance, account
    assert sum(token_balances.values()) == token.totalSupply().call()

    devices = {r["device_id"]: r for r in rows(engine, Device)}
    assert len(devices) == registry.deviceCount().call()
    for device_id, device in devices.items():
        on_chain = registry.device(device_id).call()
        assert (on_chain[0].lower(), DEVICE_STATUS[on_chain[1]]) == (
            device["owner"],
            device["status"],
        )

    certificates = {r["certificate_id"]: r for r in rows(engine, Certificate)}
    assert len(certificates) == registry.certificateCount().call()
    for cert_id, cert in certificates.items():
        view = registry.certificate(cert_id).call()
        assert (view[0], view[3], view[4], view[6], view[7], view[8]) == (
            cert["device_id"],
            cert["period_start"],
            cert["period_end"],
            cert["volume_wh"],
            cert["claimed_wh"],
            cert["revoked"],
        ), f"certificate {cert_id}"
        assert registry.supply(cert_id).call() == cert["supply_wh"]
    counts["certificates"] = len(certificates)

    holdings = {(r["certificate_id"], r["account"]): r["balance_wh"] for r in rows(engine, Holding)}
    for cert_id in certificates:
        for account in people:
            on_chain = registry.balanceOf(c.w3.to_checksum_address(account), cert_id).call()
            assert on_chain == holdings.get((cert_id, account), 0), (cert_id, account)

    claims = rows(engine, Claim)
    assert len(claims) == registry.claimCount().call()
    claimed = defaultdict(int)
    for claim in claims:
        claimed[(claim["certificate_id"], claim["holder"])] += claim["amount_wh"]
    for (cert_id, holder), amount in claimed.items():
        assert registry.claimedBalance(cert_id, c.w3.to_checksum_address(holder)).call() == amount
    counts["claims"] = len(claims)

    contracts = {"EnergyMarket": market, "RECRegistry": registry, "GridUSD": token}
    for grant in rows(engine, RoleGrant):
        has = (
            contracts[grant["contract"]]
            .hasRole(bytes.fromhex(grant["role"][2:]), c.w3.to_checksum_address(grant["account"]))
            .call()
        )
        assert has == grant["active"]

    counts["events"] = len(rows(engine, ChainEvent))
    return counts


def chain_log_count(workload: Workload, from_block: int) -> int:
    addresses = [c.address for c in workload.deployment.contracts.values()]
    return len(
        workload.w3.eth.get_logs(
            {"fromBlock": from_block, "toBlock": "latest", "address": addresses}
        )
    )
