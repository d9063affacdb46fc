"""Gas per contract operation on Anvil, against the issue's targets and a plain ERC-20 transfer.

Steady state unless the metric says otherwise: the market already holds escrow, accounts
have been credited before (a first-ever storage write costs ~22,100 gas more).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eth_account.signers.local import LocalAccount

from backend.market.orders import BUY, SELL, SLOT_SECONDS, default_meter_id, sign_order
from bench._devnet import deployed_devnet

TARGETS = {
    "signed_fill": 120_000,
    "settle_batch50_per_trade": 40_000,
    "issue_batch50_per_cert": 60_000,
    "claim": 60_000,
}


def figure(metric: str, value: int, baseline: int) -> dict[str, Any]:
    line: dict[str, Any] = {
        "metric": metric,
        "value": value,
        "unit": "gas",
        "ratio_to_erc20_transfer": round(value / baseline, 3),
    }
    if metric in TARGETS:
        line["target"] = TARGETS[metric]
        line["ratio_to_target"] = round(value / TARGETS[metric], 3)
    return line


def run() -> Iterator[dict[str, Any]]:
    with deployed_devnet(participants=4) as (_, _, _, wl):
        market, registry, token = (
            wl.c.market.functions,
            wl.c.registry.functions,
            wl.c.token.functions,
        )
        alice, bob, carol, dave = wl.people
        gas: dict[str, int] = {}

        gas["erc20_transfer_baseline"] = wl.tx(alice, token.transfer(bob.address, 1_000))["gasUsed"]

        def fill(seller: LocalAccount, buyer: LocalAccount, quantity: int = 10_000) -> int:
            offer = wl.order(seller, SELL, quantity=quantity)
            signature = sign_order(offer, seller.key, wl.chain_id, wl.c.market.address)
            receipt = wl.tx(
                buyer,
                market.fillOrder(
                    offer.as_tuple(), signature, quantity, default_meter_id(buyer.address)
                ),
            )
            wl.remember_trades(receipt)
            return receipt["gasUsed"]

        gas["signed_fill_first_on_market"] = fill(alice, bob)
        gas["signed_fill"] = fill(alice, bob)

        bid = wl.order(bob, BUY)
        gas["listing"] = wl.tx(bob, market.listOrder(bid.as_tuple()))["gasUsed"]
        receipt = wl.tx(
            alice, market.fillOrder(bid.as_tuple(), b"", 1_000, default_meter_id(alice.address))
        )
        wl.remember_trades(receipt)
        gas["listed_fill"] = receipt["gasUsed"]

        # Settlement: a first round credits every party once, then steady-state figures.
        wl.advance(3 * SLOT_SECONDS)
        trades = wl.open_trades[:]
        wl.open_trades.clear()
        tid, trade = trades[0]
        gas["settle_single_first_credit"] = wl.tx(wl.settler, market.settle(trade, tid, trade[4]))[
            "gasUsed"
        ]
        tid, trade = trades[1]
        gas["settle_single"] = wl.tx(wl.settler, market.settle(trade, tid, trade[4]))["gasUsed"]

        for i in range(50):
            fill([alice, carol][i % 2], [bob, dave][i % 2], quantity=2_000)
        wl.advance(3 * SLOT_SECONDS)
        batch = wl.open_trades[-50:]
        delivered = [t[4] if i % 5 else t[4] * 9 // 10 for i, (_, t) in enumerate(batch)]
        receipt = wl.tx(
            wl.settler,
            market.settleBatch([t for _, t in batch], [i for i, _ in batch], delivered),
            gas=10_000_000,
        )
        gas["settle_batch50_per_trade"] = receipt["gasUsed"] // 50

        device = wl.devices[alice.address]
        meter = default_meter_id(alice.address)
        hour = (wl.now() // 3600 - 100) * 3600
        gas["issue_single"] = wl.tx(
            wl.issuer,
            registry.issue(
                device, alice.address, hour, hour + 3600, 5_000, wl.evidence(meter, hour, 5_000)
            ),
        )["gasUsed"]
        starts = [hour + 3600 * (1 + i) for i in range(50)]
        receipt = wl.tx(
            wl.issuer,
            registry.issueBatch(
                device,
                alice.address,
                starts,
                [s + 3600 for s in starts],
                [5_000] * 50,
                [wl.evidence(meter, s, 5_000) for s in starts],
            ),
            gas=10_000_000,
        )
        gas["issue_batch50_per_cert"] = receipt["gasUsed"] // 50
        cert = registry.certificateCount().call()
        gas["transfer"] = wl.tx(
            alice, registry.safeTransferFrom(alice.address, bob.address, cert, 1_000, b"")
        )["gasUsed"]
        now = wl.now()
        gas["claim"] = wl.tx(
            alice,
            registry.claim(
                cert, 500, ("Alice household", "scope2", now - 3600, now, b"DE".ljust(32, b"\0"))
            ),
        )["gasUsed"]

        baseline = gas["erc20_transfer_baseline"]
        for metric, value in gas.items():
            yield figure(metric, value, baseline)
