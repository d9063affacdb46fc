"""`gridledger` (typer's CliRunner) against the real app served by uvicorn on a free port, on a
devnet with a fresh PostgreSQL schema and Redis; the indexer is stepped by the test."""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from backend.accounts.models import Account
from backend.chain.transactions import send
from backend.cli.main import app
from backend.health.heartbeats import WATCHED, write_heartbeat
from backend.market.orders import default_meter_id
from backend.meters.validation import iso
from tests.fixtures.indexing import catch_up
from tests.fixtures.payouts import fill_and_settle
from tests.fixtures.server import serve

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(chain_api, tmp_path):
    """Run `gridledger ...` against the served app with its own config file."""
    runner = CliRunner()
    with serve(chain_api.client.app) as base_url:
        env = {
            "GRIDLEDGER_API_URL": base_url,
            "GRIDLEDGER_CONFIG": str(tmp_path / "config.json"),
            "GRIDLEDGER_TOKEN": None,
        }

        def run(*args: str, code: int = 0):
            result = runner.invoke(app, list(args), env=env)
            assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
            return result

        run.base_url = base_url
        run.config = tmp_path / "config.json"
        yield run


def as_json(result) -> dict | list:
    return json.loads(result.stdout)


def deposit_collateral(cli, workload, address: str, amount: int) -> dict:
    """Mint `amount` gUSD to the signed-in custodial `address`, then `gridledger energy deposit`
    it (the collateral its energy offers lock); the API's 201 body."""
    w3, token = workload.w3, workload.c.token
    mint = token.encode_abi("mint", [w3.to_checksum_address(address), amount])
    send(w3, workload.admin, {"to": token.address, "data": mint})
    return as_json(cli("energy", "deposit", str(amount), "--json"))


def place_sell(cli, *, quantity_wh: int, price: int, period: int) -> dict:
    """`gridledger orders place` of an energy offer; the API's 202 body."""
    args = ["--side", "sell", "--quantity-wh", str(quantity_wh), "--price", str(price)]
    return as_json(cli("orders", "place", *args, "--delivery-start", str(period), "--json"))


def test_account_orders_recs_and_settlement_through_the_cli(cli, chain_api):
    devnet, indexer = chain_api.devnet, chain_api.indexer()
    w3, workload = devnet.w3, devnet.workload
    catch_up(indexer)
    for component in WATCHED:  # matcher, MQTT subscriber and beat are not running here
        write_heartbeat(chain_api.engine, component)
    status = cli("status")
    assert "status:   ok" in status.stdout and "lag 0 blocks" in status.stdout

    created = as_json(
        cli("accounts", "create", "--email", "cli@example.org", "--password", PASSWORD, "--json")
    )
    address = created["address"]
    assert cli(
        "accounts", "create", "--email", "cli@example.org", "--password", PASSWORD, code=1
    ).stderr.startswith("error: ")
    # not signed in yet: a one-line error, no traceback
    denied = cli("orders", "list", code=1)
    assert (
        denied.stderr.strip()
        == "error: not signed in: run `gridledger login` or set GRIDLEDGER_TOKEN"
    )
    wrong = cli("login", "--email", "cli@example.org", "--password", "nope", code=1)
    assert wrong.stderr.count("\n") == 1 and "(HTTP 401, " in wrong.stderr
    assert (
        "signed in as cli@example.org"
        in cli("login", "--email", "cli@example.org", "--password", PASSWORD).stdout
    )
    assert oct(cli.config.stat().st_mode & 0o777) == "0o600"
    assert json.loads(cli.config.read_text())["api_url"] == cli.base_url
    assert as_json(cli("accounts", "me", "--json"))["address"] == address

    # orders: place, list, cancel (custodial: the API signs and, for the cancel, sends a tx)
    send(
        w3, workload.admin, {"to": w3.to_checksum_address(address), "value": 10**18, "gas": 21_000}
    )
    deposit_collateral(cli, workload, address, 1_000_000)
    period = (workload.now() // 900 + 2) * 900
    placed = place_sell(cli, quantity_wh=2_000, price=120_000, period=period)
    assert placed["status"] == "open"
    listed = cli("orders", "list")
    assert placed["id"] in listed.stdout and "sell" in listed.stdout and "2 kWh" in listed.stdout
    misaligned = cli(
        "orders",
        "place",
        "--side",
        "sell",
        "--quantity-wh",
        "1",
        "--price",
        "1",
        "--delivery-start",
        str(period + 60),
        code=1,
    )
    assert (
        misaligned.stderr.startswith("error: ") and "(HTTP 422, invalid-order)" in misaligned.stderr
    )
    cancelled = cli("orders", "cancel", placed["id"])
    assert f"order {placed['id']}" in cancelled.stdout
    catch_up(indexer)
    assert (
        as_json(cli("orders", "list", "--status", "cancelled", "--json"))["items"][0]["id"]
        == placed["id"]
    )

    # RECs: a certificate issued to the CLI user; transfer part, retire part, read the proof
    device_id = workload.devices[workload.people[0].address]
    hour = (workload.now() // 3600 - 5) * 3600
    receipt = workload.tx(
        workload.issuer,
        workload.c.registry.functions.issue(
            device_id,
            w3.to_checksum_address(address),
            hour,
            hour + 3600,
            4_000,
            workload.evidence(default_meter_id(workload.people[0].address), hour, 4_000),
        ),
    )
    cert_id = workload.c.registry.events.CertificateIssued().process_receipt(receipt)[0]["args"][
        "certId"
    ]
    catch_up(indexer)
    mine = cli("recs", "list", "--mine")
    assert mine.stdout.startswith(f"#{cert_id}  SOLAR_PV DE-50HZ  4 kWh issued")
    friend = workload.people[1].address
    moved = cli("recs", "transfer", str(cert_id), "--to", friend, "--amount-wh", "1000")
    assert f"transferred 1 kWh of #{cert_id}" in moved.stdout
    too_much = cli(
        "recs", "retire", str(cert_id), "--amount-wh", "9000", "--beneficiary", "ACME", code=1
    )
    assert too_much.stderr.count("\n") == 1 and "RECRegistryInsufficientBalance" in too_much.stderr
    retired = as_json(
        cli(
            "recs",
            "retire",
            str(cert_id),
            "--amount-wh",
            "500",
            "--beneficiary",
            "ACME GmbH",
            "--purpose",
            "scope2",
            "--json",
        )
    )
    catch_up(indexer)
    claim_id = retired["poll"].split("/")[-2]
    proof = as_json(cli("recs", "proof", claim_id, "--json"))
    assert (
        proof["tx_hash"] == retired["tx_hash"] and proof["amount_wh"] == "500"
    )  # the API's JSON: amounts as strings
    assert (
        proof["consumption_start"] == hour and proof["consumption_end"] == hour + 3600
    )  # the cert's period
    listed = as_json(cli("recs", "list", "--holder", friend, "--json"))
    assert [c["certificate_id"] for c in listed["items"]] == [cert_id]

    # settlement: a trade between two households, settled at half; the CLI user is an operator
    with Session(chain_api.engine) as session:
        account = session.exec(select(Account).where(Account.email == "cli@example.org")).one()
        account.roles = ["participant", "operator"]
        session.add(account)
        session.commit()
    workload.matched()
    trade_id, trade = workload.open_trades.pop()
    workload.advance(trade[7] - workload.now() + 60)
    workload.tx(
        workload.settler,
        workload.c.market.functions.settleBatch([trade], [trade_id], [trade[4] // 2]),
    )
    catch_up(indexer)
    shown = cli("settlement", "show", str(trade_id))
    assert shown.stdout.startswith(f"trade {trade_id}: settled")
    assert (
        f"contracted {trade[4] / 1000:g} kWh, metered {trade[4] // 2 / 1000:g} kWh" in shown.stdout
    )
    detail = as_json(cli("--json", "settlement", "show", str(trade_id)))
    penalty, payout, refund, escrow = (
        int(detail[k]) for k in ("penalty", "payout", "refund", "escrow")
    )
    assert penalty > 0 and payout + refund == escrow
    assert (
        cli("settlement", "show", "999", code=1).stderr.strip()
        == "error: Resource not found: no energy transfer 999 (HTTP 404, not-found)"
    )

    cli("logout")
    assert "access_token" not in json.loads(cli.config.read_text())
    assert cli("orders", "list", code=1).stderr.startswith("error: not signed in")


def test_errors_are_one_line(cli, tmp_path):
    # the API is up but the indexer has not started: status reports it and exits 1
    degraded = cli("status", code=1)
    assert "status:   degraded" in degraded.stdout and "indexer:  FAILING" in degraded.stdout
    assert as_json(cli("status", "--json", code=1))["checks"]["indexer"]["ok"] is False

    bad_json = tmp_path / "readings.json"
    bad_json.write_text('{"meterId": "m1"}')
    assert (
        cli("meters", "send", str(bad_json), code=1).stderr.strip()
        == f"error: {bad_json}: expected a JSON array of readings (or use .ndjson, one per line)"
    )
    bad_lines = tmp_path / "readings.ndjson"
    bad_lines.write_text('{"meterId": "m1"}\nnot json\n')
    assert (
        cli("meters", "send", str(bad_lines), code=1)
        .stderr.strip()
        .startswith(f"error: {bad_lines}:2: not a JSON object")
    )
    assert cli("meters", "send", str(tmp_path / "missing.json"), code=1).stderr.startswith(
        "error: cannot read "
    )

    invalid = cli("accounts", "create", "--email", "not-an-email", "--password", "x", code=1)
    assert invalid.stderr.count("\n") == 1 and "(HTTP 422, validation-error)" in invalid.stderr

    unreachable = CliRunner().invoke(app, ["--api-url", "http://127.0.0.1:9", "status"])
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith(
        "error: cannot reach the API at http://127.0.0.1:9: ConnectError"
    )


def test_energy_withdraw_pays_out_a_settled_sale(cli, chain_api):
    """A custodial seller's offer, filled on chain by a household, settled: `energy withdraw`
    moves the payout to the seller's address, once."""
    devnet, indexer = chain_api.devnet, chain_api.indexer()
    w3, workload = devnet.w3, devnet.workload
    catch_up(indexer)
    address = as_json(
        cli("accounts", "create", "--email", "pay@example.org", "--password", PASSWORD, "--json")
    )["address"]
    cli("login", "--email", "pay@example.org", "--password", PASSWORD)
    seller = w3.to_checksum_address(address)
    send(w3, workload.admin, {"to": seller, "value": 10**18, "gas": 21_000})
    none_yet = cli("energy", "withdraw", code=1)
    assert "(HTTP 409, nothing-to-withdraw)" in none_yet.stderr

    refused = cli(
        "orders",
        "place",
        "--side",
        "sell",
        "--quantity-wh",
        "2000",
        "--price",
        "100000",
        "--delivery-start",
        str((workload.now() // 900 + 2) * 900),
        code=1,
    )
    assert "(HTTP 422, insufficient-collateral)" in refused.stderr  # no collateral deposited
    deposited = deposit_collateral(cli, workload, address, 1_000_000)
    assert deposited["amount"] == "1000000" and deposited["address"] == address.lower()
    catch_up(indexer)
    assert "withdrawable 1 gUSD, locked as collateral 0 gUSD" in cli("energy", "balance").stdout

    period = (workload.now() // 900 + 2) * 900
    placed = place_sell(cli, quantity_wh=2_000, price=100_000, period=period)
    fill_and_settle(workload, chain_api.engine, placed["id"], 2_000)
    catch_up(indexer)
    assert "withdrawable 1.2 gUSD, locked as collateral 0 gUSD" in cli("energy", "balance").stdout

    before = workload.c.token.functions.balanceOf(seller).call()
    done = as_json(cli("energy", "withdraw", "--idempotency-key", "pay-1", "--json"))
    assert done["amount"] == "1200000"  # the deposit and 2 kWh at 0.1 gUSD/kWh, all delivered
    assert workload.c.token.functions.balanceOf(seller).call() == before + 1_200_000
    assert cli("energy", "withdraw", "--idempotency-key", "pay-1").stdout.startswith(
        f"withdrew 1.2 gUSD (tx {done['tx_hash']})"  # replayed, not sent again
    )
    again = cli("energy", "withdraw", code=1)
    assert again.stderr.count("\n") == 1 and "(HTTP 409, nothing-to-withdraw)" in again.stderr


def test_meters_send_names_the_readings_a_later_one_superseded(cli, chain_api, tmp_path):
    """A file that repeats an interval: the last reading wins, and both outputs say which
    earlier readings it superseded (the API's `superseded` / `supersededReadings`)."""
    cli("accounts", "create", "--email", "meter@example.org", "--password", PASSWORD)
    cli("login", "--email", "meter@example.org", "--password", PASSWORD)
    token = json.loads(cli.config.read_text())["access_token"]
    meter = chain_api.client.post(
        "/v1/meters",
        json={"name": "cli-home", "capacity_w": 9_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert meter.status_code == 201, meter.text
    start = (int(time.time()) // 900 - 8) * 900

    def reading(slot: int, export_wh: int) -> str:
        return json.dumps(
            {"meterId": "cli-home", "timestamp": iso(start + slot * 900), "exportWh": export_wh}
        )

    readings = tmp_path / "readings.ndjson"
    readings.write_text(
        "\n".join([reading(0, 5), reading(1, 7), reading(0, 6), reading(1, 8), reading(2, 9)])
    )
    sent = cli("meters", "send", str(readings))
    lines = sent.stdout.splitlines()
    assert lines[0] == (
        "5 received: 3 accepted, 0 duplicate, 2 corrected, 0 rejected, 2 superseded"
    )
    assert lines[1:] == [
        f"  #0 cli-home {iso(start)}: superseded by #2",
        f"  #1 cli-home {iso(start + 900)}: superseded by #3",
    ]

    again = tmp_path / "again.json"
    again.write_text(f"[{reading(3, 1)}, {reading(3, 2)}]")
    result = as_json(cli("meters", "send", str(again), "--json"))
    assert (result["accepted"], result["corrected"], result["superseded"]) == (1, 1, 1)
    assert result["supersededReadings"] == [
        {"index": 0, "by": 1, "meterId": "cli-home", "timestamp": iso(start + 3 * 900)}
    ]
