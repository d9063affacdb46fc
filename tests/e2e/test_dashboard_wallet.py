"""Trading from the browser with a wallet: headless Chromium gets an EIP-6963/EIP-1193 wallet
(tests/fixtures/js/browser_wallet.mjs: viem signs with a test key and sends transactions to
the RPC URL the page added) and the dashboard runs the whole flow against the real stack —
connect, switch (add) the chain `GET /v1/chain` describes, Sign-In with Ethereum, approve gUSD,
sign a bid with `eth_signTypedData_v4`, see it filled when the operator's matcher crosses it
with a custodial seller's offer, see it settle from meter data, withdraw, transfer and retire a
certificate. Screenshots at 1280×800 and 375 px go to a tmp folder whose path is printed."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from web3.logs import DISCARD

from backend.chain.transactions import send
from tests.fixtures.api import SLOT, match
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, wallet_script, watch_problems
from tests.fixtures.payouts import settle_from_meter_data
from tests.fixtures.rec_registry import EVIDENCE

pytestmark = pytest.mark.browser


def place_order(page: Page, *, side: str, period: int, quantity_wh: str, price: str) -> None:
    """Fill the Trade panel's form and place the order; its message says it is open."""
    page.get_by_label("Side", exact=True).select_option(side)
    page.get_by_label("Delivery period", exact=True).select_option(str(period))
    page.get_by_label("Quantity (Wh)", exact=True).fill(quantity_wh)
    page.get_by_label("Price (gUSD/kWh)", exact=True).fill(price)
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#order-message")).to_contain_text("open", timeout=20_000)


def open_with_wallet(playwright, base_url: str, wallet) -> tuple[Browser, Page, list[str]]:
    """Chromium at 1280×800 with the test wallet holding `wallet`'s key, on the dashboard once
    it reports the system healthy; the page's problems, collected as they come."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.add_init_script(script=wallet_script("0x" + bytes(wallet.key).hex()))
    problems = watch_problems(page)
    page.goto(base_url + "/")
    expect(page.locator("#health-badge")).to_have_text("System OK", timeout=20_000)
    return browser, page, problems


def at_phone_width(page: Page) -> None:
    """Resize to 375×812; the page must not scroll sideways."""
    page.set_viewport_size({"width": 375, "height": 812})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
        "horizontal overflow at phone width"
    )


def assert_screenshots(folder, *names: str) -> None:
    for name in names:
        assert (folder / name).stat().st_size > 10_000, name


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
        browser, page, problems = open_with_wallet(playwright, base_url, wallet)
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
        panel.screenshot(path=str(artifacts / "wallet-trading-panel.png"))

        at_phone_width(page)
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "wallet-trading-375x812.png"), full_page=True)
        browser.close()

    filled = httpx.get(f"{base_url}/v1/trading/orders/{bid['id']}", headers=auth).json()
    assert (filled["status"], filled["filled_wh"]) == ("filled", "3000")
    assert problems == []
    assert_screenshots(
        artifacts,
        "wallet-trading-1280x800.png",
        "wallet-trading-375x812.png",
        "wallet-trading-panel.png",
    )


def test_custodial_user_offers_and_cancels_from_the_same_panel(devnet, served_stack):
    """An email account uses the same panel: "Approve gUSD" and its offer are signed by the
    API, and "Cancel" cancels it on chain with the account's key."""
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
        # the same "Approve gUSD" button: the API approves with the account's key
        token, market = devnet.workload.c.token, devnet.workload.c.market
        address = devnet.w3.to_checksum_address(
            httpx.get(f"{base_url}/v1/auth/me", headers=seller).json()["address"]
        )
        assert token.functions.allowance(address, market.address).call() == 0
        page.get_by_role("button", name="Approve gUSD for the market").click()
        expect(page.locator("#approve-message")).to_contain_text("may now move", timeout=20_000)
        assert token.functions.allowance(address, market.address).call() == 2**256 - 1
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


def money(units: int) -> str:
    """The dashboard's `money` (format.js): gUSD with 2 to 6 fraction digits."""
    whole, fraction = divmod(units, 10**6)
    return f"{whole:,}.{f'{fraction:06d}'.rstrip('0').ljust(2, '0')} gUSD"


def trade_of(devnet, tx_hash: str) -> int:
    """The id of the trade the matcher's transaction `tx_hash` created."""
    receipt = devnet.w3.eth.get_transaction_receipt(tx_hash)
    (created,) = devnet.workload.c.market.events.TradeCreated().process_receipt(
        receipt, errors=DISCARD
    )
    return created["args"]["tradeId"]


def revoke_approvals(devnet, wallet) -> None:
    """The workload approved the market for every participant: start this wallet from none."""
    token, market = devnet.workload.c.token, devnet.workload.c.market
    revoke = token.functions.approve(market.address, 0).build_transaction({"from": wallet.address})
    send(devnet.w3, wallet, dict(revoke))
    assert token.functions.allowance(wallet.address, market.address).call() == 0


def issue_to(devnet, owner, wh: int) -> int:
    """A certificate of `owner`'s own device for an hour three hours back."""
    workload, registry = devnet.workload, devnet.workload.c.registry
    hour = (workload.now() // 3600 - 3) * 3600
    receipt = workload.tx(
        workload.issuer,
        registry.functions.issue(
            workload.devices[owner.address], owner.address, hour, hour + 3600, wh, EVIDENCE
        ),
    )
    return registry.events.CertificateIssued().process_receipt(receipt, errors=DISCARD)[0]["args"][
        "certId"
    ]


def test_wallet_approves_bids_settles_withdraws_and_retires_from_its_wallet(
    devnet, served_stack, artifacts
):
    """The whole wallet flow, every chain write sent by the wallet (`eth_sendTransaction` to
    the RPC URL `GET /v1/chain` published): approve gUSD, sign a bid, see it matched by a
    custodial seller's offer and settled from the seller's meter data, withdraw the refund
    (the token balance rises by exactly the market's credit), transfer and retire a
    certificate for a beneficiary."""
    base_url, wallet, workload = served_stack.base_url, devnet.workload.people[1], devnet.workload
    token, market, registry = workload.c.token, workload.c.market, workload.c.registry
    period = (workload.now() // SLOT + 2) * SLOT
    revoke_approvals(devnet, wallet)
    cert_id = issue_to(devnet, wallet, 4_000)
    seller = custodial_seller(base_url, devnet, "meter-seller@example.org")
    seller_address = devnet.w3.to_checksum_address(
        httpx.get(f"{base_url}/v1/auth/me", headers=seller).json()["address"]
    )

    with sync_playwright() as playwright:
        browser, page, problems = open_with_wallet(playwright, base_url, wallet)
        page.get_by_role("button", name="Connect wallet").click()
        expect(page.locator("#signed-in")).to_be_visible(timeout=20_000)
        added = page.evaluate("window.__testWallet.addedChain")
        assert (added["chainId"], added["rpcUrls"]) == ("0x7a69", [devnet.node.rpc_url])
        assert added["chainName"] == served_stack.settings.chain_name

        # 1. approve gUSD from the wallet: two transactions, then the market may take both
        page.get_by_role("button", name="Approve gUSD for the market").click()
        expect(page.locator("#approve-message")).to_contain_text("may now move", timeout=30_000)
        sent = page.evaluate("window.__testWallet.sent")
        assert [s["to"].lower() for s in sent] == [token.address.lower(), registry.address.lower()]
        assert token.functions.allowance(wallet.address, market.address).call() == 2**256 - 1

        # 2. a signed bid, matched against a custodial seller's offer by the operator
        place_order(page, side="buy", period=period, quantity_wh="3000", price="0.12")
        offer = httpx.post(
            f"{base_url}/v1/trading/orders",
            headers=seller,
            json={"side": "sell", "delivery_start": period, "quantity_wh": 5_000, "price": 100_000},
        )
        assert offer.status_code == 202, offer.text
        (matched,) = match(served_stack)
        trade_id = trade_of(devnet, matched)
        expect(page.locator("#my-orders tbody .status").first).to_have_text(
            "filled", timeout=30_000
        )

        # 3. settled from the seller's meter data: 2 of 3 kWh delivered, the buyer is refunded
        settle_from_meter_data(
            served_stack.settings, served_stack.engine, devnet, trade_id, delivered_wh=2_000
        )
        settled = page.locator(f'#settlement-table tbody tr[data-trade-id="{trade_id}"]')
        expect(settled.locator(".status")).to_have_text("settled", timeout=30_000)
        credit = market.functions.withdrawable(wallet.address).call()
        assert credit > 0
        expect(page.locator("#my-balance")).to_contain_text(
            f"withdrawable {money(credit)}", timeout=30_000
        )

        # 4. withdraw from the wallet: the token balance rises by exactly the credit
        before = token.functions.balanceOf(wallet.address).call()
        page.get_by_role("button", name="Withdraw payouts").click()
        expect(page.locator("#withdraw-message")).to_contain_text(
            "Withdrew from your wallet", timeout=30_000
        )
        assert token.functions.balanceOf(wallet.address).call() == before + credit
        assert market.functions.withdrawable(wallet.address).call() == 0
        expect(page.locator("#my-balance")).to_contain_text(
            "withdrawable 0.00 gUSD", timeout=30_000
        )

        # 5. transfer part of a certificate, then retire part of it for a beneficiary
        expect(page.locator(f'#holdings-table tr[data-certificate-id="{cert_id}"]')).to_be_visible(
            timeout=30_000
        )
        page.get_by_label("Certificate", exact=True).select_option(str(cert_id))
        page.get_by_label("Amount (Wh)", exact=True).fill("500")
        page.get_by_label("Transfer to", exact=True).fill(seller_address)
        page.get_by_role("button", name="Transfer", exact=True).click()
        expect(page.locator("#cert-message")).to_contain_text("Transferred 0.5 kWh", timeout=30_000)
        page.get_by_label("Amount (Wh)", exact=True).fill("1500")
        page.get_by_label("Beneficiary", exact=True).fill("Wallet Test GmbH")
        page.get_by_role("button", name="Retire", exact=True).click()
        expect(page.locator("#cert-message")).to_contain_text("Retired 1.5 kWh", timeout=30_000)
        assert registry.functions.balanceOf(wallet.address, cert_id).call() == 4_000 - 500 - 1_500
        assert registry.functions.balanceOf(seller_address, cert_id).call() == 500
        (claimed,) = registry.events.CertificateClaimed().get_logs(
            from_block=0, argument_filters={"certId": cert_id}
        )
        assert (claimed["args"]["holder"], claimed["args"]["amountWh"]) == (wallet.address, 1_500)
        assert claimed["args"]["beneficiary"] == "Wallet Test GmbH"
        claims = page.locator("#claims-table tbody")
        expect(claims).to_contain_text("Wallet Test GmbH", timeout=30_000)

        calls = page.evaluate("window.__testWallet.calls")
        assert calls.count("eth_sendTransaction") == 5  # approve ×2, withdraw, transfer, claim
        assert calls.count("eth_signTypedData_v4") == 1
        page.locator("#trading").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "wallet-flow-1280x800.png"))  # docs/, README
        page.locator("#my-settlement").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "wallet-flow-settlement-1280x800.png"))
        page.screenshot(path=str(artifacts / "wallet-flow-full.png"), full_page=True)
        at_phone_width(page)
        page.locator("#my-recs").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "wallet-flow-375x812.png"))  # docs/
        browser.close()

    assert problems == []
    assert_screenshots(
        artifacts,
        "wallet-flow-1280x800.png",
        "wallet-flow-settlement-1280x800.png",
        "wallet-flow-375x812.png",
    )
