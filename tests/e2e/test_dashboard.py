"""The dashboard in headless Chromium against the real stack: uvicorn on a free port, a fresh
devnet, a fresh PostgreSQL schema and the indexer + outbox publisher stepping in a thread.

A trade, its settlement (settler key), an issued certificate and a claim are made on chain
while the page is open; the page must show them (live over /v1/ws), and it must fit at
1280×800 and at phone width. Screenshots go to a tmp folder whose path is printed."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect, sync_playwright

from backend.chain.transactions import send
from backend.core.db import make_engine
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, watch_problems
from tests.fixtures.payouts import fill_and_settle

pytestmark = pytest.mark.browser


def make_trade_settle_issue_and_claim(devnet) -> dict:
    """An operator-matched energy trade, settled at half the contracted Wh (a penalty), and an
    issued certificate of which part is claimed."""
    workload, market, registry = (
        devnet.workload,
        devnet.workload.c.market,
        devnet.workload.c.registry,
    )
    workload.matched()
    trade_id, trade = workload.open_trades.pop()
    workload.advance(trade[7] - workload.now() + 60)  # past the delivery period's end
    settle = workload.tx(
        workload.settler, market.functions.settleBatch([trade], [trade_id], [trade[4] // 2])
    )
    cert_id = workload.issue(batch=1)[0]
    holder = next(
        p for p in workload.people if registry.functions.balanceOf(p.address, cert_id).call() > 0
    )
    now = workload.now()
    claim = workload.tx(
        holder,
        registry.functions.claim(
            cert_id, 1, ("Dashboard Test GmbH", "scope2", now - 3600, now, b"DE".ljust(32, b"\0"))
        ),
    )
    return {
        "trade_id": trade_id,
        "market_id": f"energy-{trade[6]}",
        "settle_tx": "0x" + bytes(settle["transactionHash"]).hex(),
        "cert_id": cert_id,
        "claim_tx": "0x" + bytes(claim["transactionHash"]).hex(),
    }


def test_dashboard_shows_trade_settlement_and_claim_proof_live(devnet, stack, artifacts):
    import httpx

    email = "dash@example.org"
    assert (
        httpx.post(
            f"{stack}/v1/auth/register", json={"email": email, "password": PASSWORD}
        ).status_code
        == 201
    )
    # the API keeps its own routes next to the dashboard
    assert httpx.get(f"{stack}/openapi.json").json()["paths"]["/v1/public/summary"]
    assert httpx.get(f"{stack}/docs").status_code == 200

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch_problems(page)

        frames: list[dict] = []
        page.on(
            "websocket",
            lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))),
        )

        page.goto(stack + "/")
        expect(page.locator("#health-badge")).to_have_text("System OK", timeout=20_000)
        beat = page.locator("#health-details div", has_text="Beat")
        expect(beat.locator("dd")).to_have_text("ok")
        expect(page.locator("#trades-table tbody")).to_contain_text("No trades yet.")
        expect(page.locator("#live-status")).to_have_text("live: connected", timeout=10_000)
        page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        assert page.evaluate("document.activeElement.getBoundingClientRect().left") >= 0

        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#account-name")).to_have_text(email)
        expect(page.locator("#my-transfers tbody")).to_contain_text("You have no energy trades.")
        assert page.evaluate("JSON.parse(sessionStorage.getItem('gridledger.tokens')).access_token")

        made = make_trade_settle_issue_and_claim(devnet)  # while the page is open: live updates

        trade_row = page.locator(f'#trades-table tbody tr[data-trade-id="{made["trade_id"]}"]')
        expect(trade_row).to_be_visible(timeout=20_000)
        expect(trade_row).to_contain_text(f"#{made['trade_id']}")
        pushed = [
            f["payload"].get("trade", {}).get("trade_id")
            for f in frames
            if f["channel"] == "trades"
        ]
        assert made["trade_id"] in pushed, (
            frames
        )  # delivered live over /v1/ws, not by the fallback poll
        settled = page.locator(f'#settlement-table tbody tr[data-trade-id="{made["trade_id"]}"]')
        expect(settled.locator(".status")).to_have_text("settled", timeout=20_000)
        expect(settled).to_contain_text(made["settle_tx"][:8])
        claim_row = page.locator("#claims-table tbody tr[data-claim-id='1']")
        expect(claim_row).to_contain_text("Dashboard Test GmbH", timeout=20_000)
        claim_row.locator("summary").click()
        expect(claim_row.locator(".proof dd.hash").first).to_have_text(made["claim_tx"])
        expect(page.locator("#registry-summary")).to_contain_text("in 1 claims")
        assert {"settlements", "recs"} <= {f["channel"] for f in frames}

        page.get_by_role("combobox", name="Market").select_option(made["market_id"])
        expect(page.locator("#orderbook")).to_contain_text("Bids (buy)")
        expect(page.locator("#trades-table tbody tr")).to_have_count(1)
        expect(trade_row).to_be_visible()
        page.screenshot(path=str(artifacts / "dashboard-1280x800.png"), full_page=True)

        page.set_viewport_size({"width": 375, "height": 812})
        page.wait_for_timeout(300)  # charts resize on the next frame
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
            "horizontal overflow at phone width"
        )
        expect(settled.locator(".status")).to_be_visible()
        page.screenshot(path=str(artifacts / "dashboard-375x812.png"), full_page=True)

        browser.close()

    assert problems == []
    for name in ("dashboard-1280x800.png", "dashboard-375x812.png"):
        assert (artifacts / name).stat().st_size > 10_000


def test_withdraw_button_pays_a_custodial_seller(devnet, stack, fresh_pg_url):
    """A signed-in custodial seller whose sale settled clicks "Withdraw payouts": the payout and
    the collateral it deposited (unlocked at settlement) move to their address and the button
    turns off."""
    import httpx

    workload, email = devnet.workload, "payee@example.org"
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{stack}/v1/auth/register", json=credentials).status_code == 201
    token = httpx.post(f"{stack}/v1/auth/login", json=credentials).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    seller = devnet.w3.to_checksum_address(
        httpx.get(f"{stack}/v1/auth/me", headers=auth).json()["address"]
    )
    send(devnet.w3, workload.admin, {"to": seller, "value": 10**18, "gas": 21_000})  # gas
    # 1 gUSD of collateral for the offer, deposited through the API
    mint = workload.c.token.encode_abi("mint", [seller, 1_000_000])
    send(devnet.w3, workload.admin, {"to": workload.c.token.address, "data": mint})
    deposit = {"amount": "1000000"}
    assert httpx.post(f"{stack}/v1/energy/deposits", headers=auth, json=deposit).status_code == 201
    offer = httpx.post(
        f"{stack}/v1/trading/orders",
        headers=auth,
        json={
            "side": "sell",
            "delivery_start": (workload.now() // 900 + 2) * 900,
            "quantity_wh": 2_000,
            "price": 100_000,
        },
    )
    assert offer.status_code == 202, offer.text
    engine = make_engine(fresh_pg_url)
    fill_and_settle(workload, engine, offer.json()["id"], 2_000)
    engine.dispose()
    before = workload.c.token.functions.balanceOf(seller).call()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(stack + "/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#my-balance")).to_contain_text(
            "withdrawable 1.20 gUSD", timeout=20_000
        )
        button = page.get_by_role("button", name="Withdraw payouts")
        expect(button).to_be_enabled()
        button.click()
        expect(page.locator("#withdraw-message")).to_contain_text("Withdrew 1.20 gUSD")
        expect(page.locator("#my-balance")).to_contain_text(
            "withdrawable 0.00 gUSD", timeout=20_000
        )
        expect(button).to_be_disabled()
        browser.close()
    assert workload.c.token.functions.balanceOf(seller).call() == before + 1_200_000
