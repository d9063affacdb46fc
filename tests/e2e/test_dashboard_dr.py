"""The demand-response view in headless Chromium against the real stack: a participant signs
in and sees the event timeline, its baseline against its verified load, and the incentive
settled on chain (DemandResponse) with the transaction."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.chain.transactions import send
from backend.dr.readings import day_start, utc_day
from backend.dr.settlement import settle_due_events
from backend.meters.models import MeterKind
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter
from backend.settlement.chain import ChainContext
from backend.settlement.locks import RedisLocks
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, watch_problems
from tests.fixtures.dr import program_body
from tests.fixtures.dr_chain import put_readings

pytestmark = pytest.mark.browser


def signed_up(base: str, email: str) -> tuple[dict, str]:
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{base}/v1/auth/register", json=credentials).status_code == 201
    return login(base, email)


def login(base: str, email: str) -> tuple[dict, str]:
    token = httpx.post(f"{base}/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
        "access_token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    return auth, httpx.get(f"{base}/v1/auth/me", headers=auth).json()["address"]


def event_window() -> tuple[int, int]:
    start = (int(time.time()) + 1_800) // 900 * 900
    if start // 86_400 != (start + 3_600 - 1) // 86_400:
        start = (start // 86_400 + 1) * 86_400
    return start, start + 3_600


def test_dr_view_shows_timeline_baseline_and_payout(devnet, served_stack, redis_client, artifacts):
    base, engine, settings = served_stack.base_url, served_stack.engine, served_stack.settings
    workload = devnet.workload
    operator_auth, operator_address = signed_up(base, "utility@example.org")
    participant_email = "household@example.org"
    participant_auth, _ = signed_up(base, participant_email)
    with Session(engine) as session:
        operator = session.exec(select(Account).where(Account.address == operator_address)).one()
        operator.roles = ["operator"]
        session.add(operator)
        household = session.exec(select(Account).where(Account.email == participant_email)).one()
        meter = register_meter(
            session,
            household,
            MeterCreate(name="meter:household-1", kind=MeterKind.IMPORT, capacity_w=20_000),
        )
        meter_id = meter.meter_id
        session.commit()
    operator_auth, _ = login(base, "utility@example.org")  # a token with the new role
    checksum = devnet.w3.to_checksum_address(operator_address)
    send(devnet.w3, workload.admin, {"to": checksum, "value": 10**18, "gas": 21_000})
    mint = workload.c.token.encode_abi("mint", [checksum, 10_000_000])
    send(devnet.w3, workload.admin, {"to": workload.c.token.address, "data": mint})

    body = program_body(notification_lead_s=0, incentive_per_kwh=300_000, penalty_per_kwh=150_000)
    program = httpx.post(f"{base}/v1/dr/programs", json=body, headers=operator_auth).json()
    enrolled = httpx.post(
        f"{base}/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:household-1", "committed_w": 2_000},
        headers=participant_auth,
    )
    assert enrolled.status_code == 201, enrolled.text
    funded = httpx.post(
        f"{base}/v1/dr/programs/{program['id']}/budget",
        json={"amount": "5000000"},
        headers=operator_auth,
    )
    assert funded.status_code == 201, funded.text
    start, end = event_window()
    called = httpx.post(
        f"{base}/v1/dr/events",
        json={"program_id": program["id"], "start": start, "end": end},
        headers=operator_auth,
    )
    assert called.status_code == 201, called.text
    # ten days of verified 1 kWh intervals, then 0.4 kWh in the event: 0.6 kWh delivered each
    first = day_start(utc_day(start) - timedelta(days=10))
    with Session(engine) as session:
        put_readings(
            session, meter_id, dict.fromkeys(range(first, start, 900), 1_000), verified=True
        )
        put_readings(session, meter_id, dict.fromkeys(range(start, end, 900), 400), verified=True)
        session.commit()
        ctx = ChainContext.from_settings(settings, devnet.deployment)
        (report,) = settle_due_events(
            session,
            ctx,
            RedisLocks(redis_client),
            settings,
            now=end + settings.dr_settlement_delay_s,
        )
    assert report.settled == 1, report
    tx = report.batches[0]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch_problems(page)
        page.goto(base + "/")
        page.get_by_label("Email").fill(participant_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        event_row = page.locator(f'#dr-events tbody tr[data-event-id="{called.json()["id"]}"]')
        expect(event_row).to_be_visible(timeout=20_000)
        expect(event_row).to_contain_text("SIMPLE 1")
        expect(page.locator("#dr-state")).to_have_text("Settlement: settled", timeout=20_000)
        payout = page.locator("#dr-payouts tbody tr")
        expect(payout).to_have_count(1)
        expect(payout).to_contain_text("0.72 gUSD")  # 2.4 kWh x 0.30 gUSD
        expect(payout.locator(".status")).to_have_text("settled")
        expect(payout).to_contain_text(tx[:8])
        expect(page.locator("#dr-chart-caption")).to_contain_text("credited 2.4 kWh")
        assert page.locator("#dr-chart").bounding_box()["height"] > 100
        page.locator("#dr").screenshot(path=str(artifacts / "dashboard-dr-1280.png"))

        page.set_viewport_size({"width": 375, "height": 812})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
            "horizontal overflow at phone width"
        )
        browser.close()
    assert problems == []
    assert (artifacts / "dashboard-dr-1280.png").stat().st_size > 5_000
