"""Trading from the browser with a wallet: headless Chromium gets an EIP-6963/EIP-1193 wallet
(tests/fixtures/js/browser_wallet.mjs: viem signs with a test key) and the dashboard runs the
whole flow against the real stack — connect, switch (add) the devnet chain, Sign-In with
Ethereum, sign a bid with `eth_signTypedData_v4`, see it listed, see it filled when the
operator's matcher crosses it with a custodial seller's offer. Screenshots at 1280×800 and
375 px go to a tmp folder whose path is printed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from backend.chain.transactions import send
from tests.fixtures.api import SLOT, match
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, wallet_script, watch_problems

pytestmark = pytest.mark.browser


def place_order(page: Page, *, side: str, period: int, quantity_wh: str, price: str) -> None:
    """Fill the Trade panel's form and place the order; its message says it is open."""
    page.get_by_label("Side", exact=True).select_option(side)
    page.get_by_label("Delivery period", exact=True).select_option(str(period))
    page.get_by_label("Quantity (Wh)", exact=True).fill(quantity_wh)
    page.get_by_label("Price (gUSD/kWh)", exact=True).fill(price)
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#order-message")).to_contain_text("open", timeout=20_000)


def custodial_seller(base_url: str, devnet, email: str) -> dict:
    """A registered email account with gas and 1 gUSD of collateral; its Authorization header."""
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{base_url}/v1/auth/register", json=credentials).status_code == 201
    token = httpx.post(f"{base_url}/v1/auth/login", json=credentials).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    address = httpx.get(f"{base_url}/v1/auth/me", headers=auth).json()["address"]
    send(
        devnet.w3,
        devnet.workload.admin,
        {"to": devnet.w3.to_checksum_address(address), "value": 10**18, "gas": 21_000},
    )
    # 1 gUSD of collateral for its offers, deposited through the API
    token = devnet.workload.c.token
    mint = token.encode_abi("mint", [devnet.w3.to_checksum_address(address), 1_000_000])
    send(devnet.w3, devnet.workload.admin, {"to": token.address, "data": mint})
    deposited = httpx.post(
        f"{base_url}/v1/energy/deposits", headers=auth, json={"amount": "1000000"}
    )
    assert deposited.status_code == 201, deposited.text
    return auth


def test_wallet_connects_signs_in_bids_and_sees_the_bid_filled(devnet, served_stack, artifacts):
    base_url, wallet = served_stack.base_url, devnet.workload.people[1]
    period = (devnet.workload.now() // SLOT + 2) * SLOT

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.add_init_script(script=wallet_script("0x" + bytes(wallet.key).hex()))
        problems = watch_problems(page)
        page.goto(base_url + "/")
        expect(page.locator("#health-badge")).to_have_text("System OK", timeout=20_000)
        expect(page.locator("#trading")).to_be_hidden()  # signed out: no trading panel

        page.get_by_role("button", name="Connect wallet").click()
        expect(page.locator("#signed-in")).to_be_visible(timeout=20_000)
        expect(page.locator("#login-error")).to_have_text("")
        expect(page.locator("#account-name")).to_have_attribute("title", wallet.address.lower())
        calls = page.evaluate("window.__testWallet.calls")
        # the devnet is unknown to the wallet: switch answers 4902, the page adds the chain
        assert calls[:1] == ["eth_requestAccounts"], calls
        assert calls.index("wallet_switchEthereumChain") < calls.index("wallet_addEthereumChain")
        assert calls.index("wallet_addEthereumChain") < calls.index("personal_sign")
        tokens = page.evaluate("JSON.parse(sessionStorage.getItem('gridledger.tokens'))")
        token = tokens["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{base_url}/v1/auth/me", headers=auth).json()
        assert (me["kind"], me["address"]) == ("wallet", wallet.address.lower())

        panel = page.locator("#trading")
        expect(panel).to_be_visible()
        expect(page.locator("#my-orders tbody")).to_contain_text("You have no orders.")
        place_order(page, side="buy", period=period, quantity_wh="3000", price="0.12")
        assert page.evaluate("window.__testWallet.calls").count("eth_signTypedData_v4") == 1
        signed = page.evaluate("window.__testWallet.lastTypedData")

        orders = httpx.get(f"{base_url}/v1/trading/orders", headers=auth).json()["items"]
        assert len(orders) == 1
        bid = orders[0]
        assert (bid["side"], bid["quantity_wh"], bid["price"], bid["delivery_start"]) == (
            "buy",
            "3000",
            "120000",
            period,
        )
        assert (bid["maker"], bid["status"]) == (wallet.address.lower(), "open")
        assert (bid["salt"], bid["nonce"]) == (
            signed["message"]["salt"],
            int(signed["message"]["nonce"]),
        )  # the wallet signed the document as served
        row = page.locator(f'#my-orders tbody tr[data-order-id="{bid["id"]}"]')
        expect(row.locator(".status")).to_have_text("open")
        expect(row).to_contain_text("0.12 gUSD/kWh")

        seller = custodial_seller(base_url, devnet, "seller@example.org")
        offer = httpx.post(
            f"{base_url}/v1/trading/orders",
            headers=seller,
            json={
                "side": "sell",
                "delivery_start": period,
                "quantity_wh": 5_000,
                "price": 100_000,
            },
        )
        assert offer.status_code == 202, offer.text
        assert len(match(served_stack)) == 1  # the operator's matcher crosses them on chain

        expect(row.locator(".status")).to_have_text("filled", timeout=30_000)
        expect(row.locator("td").nth(4)).to_have_text("3")  # filled kWh
        expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
        page.screenshot(path=str(artifacts / "wallet-trading-1280x800.png"), full_page=True)
        panel.screenshot(path=str(artifacts / "wallet-trading-panel.png"))  # docs/

        page.set_viewport_size({"width": 375, "height": 812})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
            "horizontal overflow at phone width"
        )
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "wallet-trading-375x812.png"), full_page=True)
        browser.close()

    filled = httpx.get(f"{base_url}/v1/trading/orders/{bid['id']}", headers=auth).json()
    assert (filled["status"], filled["filled_wh"]) == ("filled", "3000")
    assert problems == []
    for name in (
        "wallet-trading-1280x800.png",
        "wallet-trading-375x812.png",
        "wallet-trading-panel.png",
    ):
        assert (artifacts / name).stat().st_size > 10_000


def test_custodial_user_offers_and_cancels_from_the_same_panel(devnet, served_stack):
    """An email account uses the same panel: the API signs its offer, and "Cancel" cancels
    it on chain with the account's key."""
    base_url = served_stack.base_url
    seller = custodial_seller(base_url, devnet, "panel@example.org")
    period = (devnet.workload.now() // SLOT + 2) * SLOT

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch_problems(page)
        page.goto(base_url + "/")
        page.get_by_label("Email").fill("panel@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.locator("#trading")).to_be_visible(timeout=20_000)
        place_order(page, side="sell", period=period, quantity_wh="2000", price="0.1")

        orders = httpx.get(f"{base_url}/v1/trading/orders", headers=seller).json()["items"]
        assert [(o["side"], o["quantity_wh"], o["price"]) for o in orders] == [
            ("sell", "2000", "100000")
        ]
        row = page.locator(f'#my-orders tbody tr[data-order-id="{orders[0]["id"]}"]')
        row.get_by_role("button", name="Cancel").click()
        expect(page.locator("#order-message")).to_contain_text("cancelled", timeout=20_000)
        expect(row.locator(".status")).to_have_text("cancelled", timeout=20_000)
        browser.close()

    after = httpx.get(f"{base_url}/v1/trading/orders/{orders[0]['id']}", headers=seller).json()
    assert after["status"] == "cancelled" and after["cancel_tx"]
    assert problems == []
