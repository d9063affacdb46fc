"""The dashboard's VPP view in headless Chromium against the real stack: an aggregator's VPP
with a battery and a PV system (with locations), their telemetry, a stored forecast and a
schedule from `POST /v1/vpp/{id}/optimize`; the view lists the members with SoC, output and
location and plots forecast vs reported output and schedule vs dispatched."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.resources.models import TelemetryMetric
from backend.resources.telemetry import Sample, record_samples
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, watch_problems
from tests.fixtures.forecast import stored_forecast
from tests.fixtures.resources import resource_body

pytestmark = pytest.mark.browser
SLOT = 900


def sign_up(base: str, email: str) -> dict:
    credentials = {"email": email, "password": PASSWORD}
    assert httpx.post(f"{base}/v1/auth/register", json=credentials).status_code == 201
    token = httpx.post(f"{base}/v1/auth/login", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_vpp_view_shows_members_and_both_charts_from_real_data(devnet, served_stack, artifacts):
    base, engine = served_stack.base_url, served_stack.engine
    aggregator = sign_up(base, "vpp-agg@example.org")
    with Session(engine) as session:
        account = session.exec(select(Account).where(Account.email == "vpp-agg@example.org")).one()
        account.roles = ["aggregator"]
        session.commit()
    owner = sign_up(base, "vpp-home@example.org")
    meter = httpx.post(
        f"{base}/v1/meters", headers=owner, json={"name": "home", "capacity_w": 12_000}
    ).json()["meter_id"]
    battery = httpx.post(
        f"{base}/v1/resources", headers=owner, json=resource_body(meter=meter)
    ).json()
    pv = httpx.post(
        f"{base}/v1/resources",
        headers=owner,
        json=resource_body(
            meter=meter, name="rooftop pv", kind="pv", capacity_w=8_000, energy_capacity_wh=None
        ),
    ).json()
    vpp = httpx.post(f"{base}/v1/vpp", headers=aggregator, json={"name": "Block 9"}).json()
    for resource in (battery, pv):
        joined = httpx.post(
            f"{base}/v1/vpp/{vpp['vppId']}/resources",
            headers=owner,
            json={"resourceId": resource["id"]},
        )
        assert joined.status_code == 201, joined.text

    start = (devnet.workload.now() // SLOT - 4) * SLOT  # four slots reported so far
    with Session(engine) as session:
        samples = []
        for n in range(4):
            at = start + n * SLOT
            samples += [
                Sample(uuid.UUID(pv["id"]), TelemetryMetric.OUTPUT, at, 4_000, "W"),
                Sample(uuid.UUID(battery["id"]), TelemetryMetric.OUTPUT, at, -1_500, "W"),
                Sample(uuid.UUID(battery["id"]), TelemetryMetric.SOC, at, 3_375, "Wh"),
            ]
        stored, reasons = record_samples(session, samples)
        assert stored == 12, reasons
        shape = [600 - abs(48 - n) * 10 for n in range(96)]
        session.add(stored_forecast("vpp", vpp["vppId"], start, shape))
        session.commit()
    iso = httpx.get(f"{base}/v1/vpp/{vpp['vppId']}/timeline", headers=owner).json()["slots"][0]
    optimized = httpx.post(
        f"{base}/v1/vpp/{vpp['vppId']}/optimize",
        headers=aggregator,
        json={"start": iso["start"], "buyPrice": [100] * 48 + [300] * 48},
    )
    assert optimized.status_code == 200, optimized.text

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch_problems(page)
        page.goto(base + "/")
        expect(page.locator("#vpp")).to_be_hidden()  # signed out: no VPP reads
        page.get_by_label("Email").fill("vpp-agg@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        section = page.locator("#vpp")
        expect(section).to_be_visible(timeout=20_000)
        expect(page.locator("#vpp-select")).to_contain_text("Block 9")
        expect(page.locator("#vpp-summary")).to_contain_text("2 resources")
        battery_row = page.locator(f'#vpp-resources tr[data-resource-id="{battery["id"]}"]')
        expect(battery_row).to_contain_text("home battery")
        expect(battery_row).to_contain_text("25 %")
        expect(battery_row).to_contain_text("-1.50 kW")
        expect(battery_row).to_contain_text("37.5665, 126.9780")
        pv_row = page.locator(f'#vpp-resources tr[data-resource-id="{pv["id"]}"]')
        expect(pv_row).to_contain_text("4.00 kW")
        forecast_chart = page.locator("#vpp-forecast-chart")
        expect(forecast_chart).to_have_attribute("data-forecast", "96")
        expect(forecast_chart).to_have_attribute("data-reported", "4")
        schedule_chart = page.locator("#vpp-schedule-chart")
        expect(schedule_chart).to_have_attribute("data-scheduled", "96")
        expect(schedule_chart).to_have_attribute("data-dispatched", "4")  # the battery reported
        expect(page.locator("#vpp-forecast-empty")).to_be_hidden()
        expect(page.locator("#vpp-schedule-empty")).to_be_hidden()
        assert forecast_chart.bounding_box()["height"] > 50
        section.screenshot(path=str(artifacts / "vpp-1280x800.png"))
        browser.close()
    assert problems == []
    assert (artifacts / "vpp-1280x800.png").stat().st_size > 10_000
