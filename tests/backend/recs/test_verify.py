"""The third-party verifier (`gridledger recs verify`): a certificate issued from meter-signed
readings verifies against the chain; every way of lying about it fails with its reason."""

from __future__ import annotations

import copy
import json

import pytest
from eth_account import Account as EthAccount
from eth_utils import keccak, to_checksum_address
from sqlalchemy import text
from typer.testing import CliRunner

from backend.cli.main import app as cli_app
from backend.market.orders import default_meter_id
from backend.meters.signing import SignedValues, sign_reading
from backend.recs.verify import passed, verify_evidence
from backend.settlement.issuance import issue_certificates
from tests.fixtures.certificates import EXPORTS, Issued, issue_signed_hour
from tests.fixtures.server import serve
from tests.fixtures.settlement import METERING_DATA_PROVIDER


@pytest.fixture
def issued(market):
    yield from issue_signed_hour(market)


def verdicts(evidence: dict, issued: Issued) -> dict[str, tuple[bool, str]]:
    checks = verify_evidence(evidence, issued.market.devnet.w3)
    return {c.name: (c.ok, c.detail) for c in checks}


def failing(evidence: dict, issued: Issued) -> dict[str, str]:
    return {name: detail for name, (ok, detail) in verdicts(evidence, issued).items() if not ok}


def test_served_evidence_of_a_signed_certificate_verifies(issued):
    evidence = issued.evidence()
    assert evidence["meter_id"] == issued.meter_id and evidence["log_index"] is not None
    assert [r["reading"]["exportWh"] for r in evidence["readings"]] == [str(e) for e in EXPORTS]
    assert {r["attestation"] for r in evidence["readings"]} == {"meter-signature"}
    checks = verify_evidence(evidence, issued.market.devnet.w3)
    assert passed(checks), [c.line() for c in checks]
    names = [c.name for c in checks]
    assert names[:5] == ["chain", "issuance event", "certificate", "device", "meter"]
    assert sum(name.endswith(" signature") for name in names) == len(EXPORTS)
    assert names[-1] == "export" and "406 Wh" in checks[-1].detail


def test_each_lie_in_the_served_evidence_fails_with_its_reason(issued):
    honest = issued.evidence()
    w3, person = issued.market.devnet.w3, issued.market.devnet.workload.people[0]
    labels = [n.removesuffix(" digest") for n in verdicts(honest, issued) if n.endswith(" digest")]
    first, second, third = labels[:3]

    tampered = copy.deepcopy(honest)  # more export than the meter signed, digest kept
    tampered["readings"][0]["reading"]["exportWh"] = "5000"
    bad = failing(tampered, issued)
    assert "altered" in bad[f"{first} digest"]
    assert "does not lead" in bad[f"{first} proof"]
    assert "isValidReading" in bad[f"{first} signature"] or "neither" in bad[f"{first} signature"]
    assert "export" in bad  # the altered reading no longer counts: 306 Wh < 406 Wh

    wrong_proof = copy.deepcopy(honest)
    wrong_proof["readings"][1]["proof"][0] = "0x" + "11" * 32
    bad = failing(wrong_proof, issued)
    assert set(bad) == {f"{second} proof", "export"}
    assert "does not lead to the certificate's evidence root" in bad[f"{second} proof"]

    forged = copy.deepcopy(honest)  # the same values, signed by a key that is not the meter's
    message = forged["readings"][2]["reading"]
    values = SignedValues(
        bytes.fromhex(message["meterId"][2:]),
        int(message["intervalStart"]),
        int(message["intervalSeconds"]),
        int(message["importWh"]),
        int(message["exportWh"]),
    )
    forger = EthAccount.create()
    signature = sign_reading(values, forger.key, w3.eth.chain_id, honest["contract"])
    forged["readings"][2]["signature"] = "0x" + signature.hex()
    bad = failing(forged, issued)
    assert set(bad) == {f"{third} signature"}
    assert forger.address in bad[f"{third} signature"] and "neither" in bad[f"{third} signature"]

    other = copy.deepcopy(honest)  # the API claims the readings of another owner's meter
    other["meter_id"] = (
        "0x" + default_meter_id(issued.market.devnet.workload.people[1].address).hex()
    )
    bad = failing(other, issued)
    assert f"served {other['meter_id']}" in bad["device"]
    assert f"the device's owner is {person.address}" in bad["meter"]

    doubled = copy.deepcopy(honest)  # a genuine reading served twice to inflate the export
    doubled["readings"].append(copy.deepcopy(doubled["readings"][0]))
    doubled["volume_wh"] = "506"
    bad = failing(doubled, issued)
    assert "served twice" in bad[f"{first} digest"]
    assert "506" in bad["issuance event"] and "406 Wh" in bad["export"]

    root = copy.deepcopy(honest)
    root["evidence_root"] = "0x" + "22" * 32
    assert "evidenceRoot" in failing(root, issued)["issuance event"]


def test_cli_verifies_then_fails_on_a_tampered_database_and_a_suspended_meter(issued, tmp_path):
    market = issued.market
    runner = CliRunner()
    with serve(issued.client.app) as base_url:
        env = {"GRIDLEDGER_API_URL": base_url, "GRIDLEDGER_CONFIG": str(tmp_path / "c.json")}
        args = [
            "recs",
            "verify",
            str(issued.certificate_id),
            "--rpc-url",
            market.devnet.node.rpc_url,
        ]

        good = runner.invoke(cli_app, args, env=env)
        assert good.exit_code == 0, good.stdout
        lines = good.stdout.splitlines()
        assert all(line.startswith("ok  ") for line in lines[:-1]) and "verified" in lines[-1]

        # someone with database access raises a reading: the API serves it, the chain disagrees
        with market.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE meter_readings SET export_wh = 900 "
                    "WHERE meter_id = :meter AND interval_start = :start"
                ),
                {"meter": issued.meter_id, "start": issued.hour},
            )
        altered = runner.invoke(cli_app, args, env=env)
        assert altered.exit_code == 1
        fails = [line for line in altered.stdout.splitlines() if line.startswith("FAIL")]
        assert any(" proof: " in f and "does not lead" in f for f in fails), altered.stdout
        assert any(" signature: " in f for f in fails) and "NOT verified" in altered.stdout
        with market.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE meter_readings SET export_wh = :wh "
                    "WHERE meter_id = :meter AND interval_start = :start"
                ),
                {"wh": EXPORTS[0], "meter": issued.meter_id, "start": issued.hour},
            )

        workload = market.devnet.workload  # the registrar suspends the meter
        workload.tx(
            workload.registrar,
            workload.c.registry.functions.suspendMeter(bytes.fromhex(issued.meter_id[2:])),
        )
        suspended = runner.invoke(cli_app, [*args, "--json"], env=env)
        assert suspended.exit_code == 1
        report = json.loads(suspended.stdout)
        bad = {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}
        assert report["ok"] is False and "status is suspended" in bad["meter"]
        signatures = [n for n in bad if n.endswith(" signature")]
        assert len(signatures) == len(EXPORTS)
        assert all("isValidReading says no" in bad[n] for n in signatures)


def test_provider_posted_readings_verify_only_while_the_provider_holds_the_role(issued):
    """A head-end's unsigned readings carry no signature: the verifier accepts them only for
    an account holding METER_DATA_PROVIDER_ROLE on chain, and says that nothing was signed."""
    market = issued.market
    hour = issued.hour + 3600
    market.meter_readings({(issued.meter_id, hour + 900 * q): 50 for q in range(4)}, by="provider")
    with market.session() as session:
        report = issue_certificates(
            session, market.ctx, market.locks, market.settings, now=hour + 2 * 3600 + 600
        )
        assert report.issued == 1, report
    market.catch_up()
    evidence = issued.client.get(
        f"/v1/recs/certificates/{issued.certificate_id + 1}/evidence"
    ).json()
    assert {(r["attestation"], r["signature"]) for r in evidence["readings"]} == {
        ("provider-posted", None)
    }
    bad = failing(evidence, issued)
    assert len(bad) == 4 and all("is no metering data provider on chain" in d for d in bad.values())

    workload = market.devnet.workload
    workload.govern(  # role changes go through the timelock
        workload.c.registry.functions.grantRole(
            keccak(text="METER_DATA_PROVIDER_ROLE"), to_checksum_address(METERING_DATA_PROVIDER)
        )
    )
    checks = verify_evidence(evidence, market.devnet.w3)
    assert passed(checks), [c.line() for c in checks if not c.ok]
    signatures = [c.detail for c in checks if c.name.endswith(" signature")]
    assert len(signatures) == 4 and all(
        "posted unsigned by metering data provider" in d for d in signatures
    )
