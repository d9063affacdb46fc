"""Signed readings: which are verified, and the attacks that must not verify or overwrite.

A reading is verified when its EIP-712 signature recovers to the approved meter's key, or
to a metering data provider, or when a metering data provider posts it. Unverified readings
are stored and shown but never settle; a verified one changes only through a provider.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select

from backend.accounts.models import Account
from backend.audit.models import AuditEntry
from backend.meters.models import MeterReading, ReadingCorrection
from backend.meters.services import ingest_readings, suspend_meter
from backend.meters.signing import typed_data
from backend.meters.trust import ReadingDomain, signed_values
from backend.meters.validation import iso
from tests.fixtures.javascript import js_parse, run_node
from tests.fixtures.meters import NOW, TEST_CHAIN_ID, TEST_REGISTRY, approve, meter_key, signed

DOMAIN = ReadingDomain(TEST_CHAIN_ID, TEST_REGISTRY)
SLOT = NOW - 900
PROVIDER = "0x" + "d0" * 20


def export(meter: str, start: int = SLOT, wh: int = 1_000) -> dict:
    return {"meterId": meter, "timestamp": iso(start), "exportWh": wh, "importWh": 3}


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def world(request, meter_settings):
    session, _owner, _other, solar, house = request.getfixturevalue(
        "metered" if request.param == "postgresql" else "sqlite_metered"
    )
    approve(session, solar, meter_key("solar"))

    def ingest(readings, provider=None):
        return ingest_readings(
            session, readings, source="rest", now=NOW, settings=meter_settings, provider=provider
        )

    return session, solar, house, ingest


def stored(session, meter_id: str, start: int = SLOT) -> MeterReading:
    return session.exec(
        select(MeterReading).where(
            MeterReading.meter_id == meter_id, MeterReading.interval_start == start
        )
    ).one()


def test_a_reading_signed_with_the_approved_key_is_verified(world):
    session, solar, _, ingest = world
    body = signed(export(solar.meter_id), meter_key("solar"), DOMAIN)
    result = ingest([body])
    assert (result.accepted, result.verified) == (1, 1)
    row = stored(session, solar.meter_id)
    assert row.verified and row.signer == meter_key("solar").address
    assert row.signature == body["signature"]


def test_an_unsigned_owner_reading_is_stored_unverified(world):
    session, solar, _, ingest = world
    result = ingest([export(solar.meter_id)])
    assert (result.accepted, result.verified) == (1, 0)
    row = stored(session, solar.meter_id)
    assert (row.verified, row.signature, row.signer, row.export_wh) == (False, None, None, 1_000)


def test_a_forged_signature_is_unverified(world):
    session, solar, _, ingest = world
    forger = meter_key("someone else")
    result = ingest([signed(export(solar.meter_id), forger, DOMAIN)])
    assert (result.accepted, result.verified) == (1, 0)
    row = stored(session, solar.meter_id)
    assert not row.verified and row.signer == forger.address


@pytest.mark.parametrize(
    "replay",
    [
        pytest.param({"interval_start": SLOT - 900}, id="another interval"),
        pytest.param({"meter_id": b"\x11" * 32}, id="another meter"),
        pytest.param({"export_wh": 100}, id="other values"),
    ],
)
def test_a_signature_replayed_to_another_reading_is_unverified(world, replay):
    """The meter signed a different reading (interval, meter, value): its signature, carried
    by this body, recovers to some other address."""
    session, solar, _, ingest = world
    result = ingest([signed(export(solar.meter_id), meter_key("solar"), DOMAIN, **replay)])
    assert (result.accepted, result.verified) == (1, 0)
    row = stored(session, solar.meter_id)
    assert not row.verified and row.signer != meter_key("solar").address


def test_a_signature_of_another_chain_or_registry_is_unverified(world):
    _session, solar, _, ingest = world
    elsewhere = ReadingDomain(TEST_CHAIN_ID, "0x" + "77" * 20)
    assert ingest([signed(export(solar.meter_id), meter_key("solar"), elsewhere)]).verified == 0


def test_signatures_of_a_pending_or_suspended_meter_verify_nothing(world):
    session, solar, house, ingest = world
    house_key = meter_key("house")  # house is registered, never approved
    body = {"meterId": house.meter_id, "timestamp": iso(SLOT), "importWh": 50}
    assert ingest([signed(body, house_key, DOMAIN)]).verified == 0
    registrar = session.exec(select(Account).where(Account.email == "registrar@example.org")).one()
    suspend_meter(session, solar, by=registrar)
    session.commit()
    assert ingest([signed(export(solar.meter_id), meter_key("solar"), DOMAIN)]).verified == 0
    trail = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    assert [(e.action, e.subject) for e in trail][-2:] == [
        ("meters.approved", solar.meter_id),
        ("meters.suspended", solar.meter_id),
    ]
    assert trail[-1].actor_id == registrar.id


def test_a_metering_data_provider_posts_verified_readings_unsigned(world):
    session, solar, _, ingest = world
    result = ingest([export(solar.meter_id)], provider=PROVIDER)
    assert result.verified == 1
    row = stored(session, solar.meter_id)
    assert row.verified and row.signer == PROVIDER and row.signature is None


def test_a_reading_signed_by_a_metering_data_provider_key_is_verified(world):
    session, solar, _, ingest = world
    provider_key = meter_key("head-end")
    session.add(
        Account(address=provider_key.address.lower(), roles=["participant", "meter_data_provider"])
    )
    session.commit()
    assert ingest([signed(export(solar.meter_id), provider_key, DOMAIN)]).verified == 1
    assert stored(session, solar.meter_id).signer == provider_key.address


def test_an_unverified_reading_never_replaces_a_verified_one(world):
    session, solar, _, ingest = world
    export_only = {"meterId": solar.meter_id, "timestamp": iso(SLOT), "exportWh": 400}
    ingest([signed(export_only, meter_key("solar"), DOMAIN)])
    lie = ingest([export(solar.meter_id, wh=2_000)])  # the owner claims more export
    assert (lie.accepted, lie.corrected, lie.rejected) == (0, 0, 1)
    assert "verified reading" in lie.rejections[0].reason
    assert "metering data provider" in lie.rejections[0].reason
    same = ingest([export_only])  # the same values again, unsigned: a duplicate
    assert (same.duplicate, same.rejected) == (1, 0)
    fill = ingest([{"meterId": solar.meter_id, "timestamp": iso(SLOT), "importWh": 9}])
    assert fill.rejected == 1  # filling in the direction the meter did not sign is a change too
    row = stored(session, solar.meter_id)
    assert (row.verified, row.export_wh, row.import_wh, row.revision) == (True, 400, None, 0)
    assert session.exec(select(ReadingCorrection)).all() == []


def test_an_older_meter_signature_cannot_undo_a_provider_correction(world):
    """The owner keeps every reading its meter signed: replaying the superseded one after the
    metering data provider corrected the interval must not bring the old value back."""
    session, solar, _, ingest = world
    original = signed(export(solar.meter_id, wh=2_400), meter_key("solar"), DOMAIN)
    ingest([original])
    corrected = ingest([export(solar.meter_id, wh=900)], provider=PROVIDER)
    assert (corrected.corrected, corrected.verified) == (1, 1)
    replay = ingest([original])
    assert replay.rejected == 1
    row = stored(session, solar.meter_id)
    assert (row.export_wh, row.signer, row.revision) == (900, PROVIDER, 1)
    audit = session.exec(select(ReadingCorrection)).one()
    assert (audit.previous_export_wh, audit.export_wh) == (2_400, 900)
    assert (audit.previous_verified, audit.previous_signer) == (True, meter_key("solar").address)
    assert (audit.verified, audit.signer) == (True, PROVIDER)


def test_a_signed_reading_upgrades_an_unverified_one(world):
    session, solar, _, ingest = world
    ingest([export(solar.meter_id, wh=2_000)])  # the owner's claim first
    same = ingest([signed(export(solar.meter_id, wh=2_000), meter_key("solar"), DOMAIN)])
    assert (same.accepted, same.corrected, same.verified) == (1, 0, 1)
    assert stored(session, solar.meter_id).verified
    other = SLOT - 900
    ingest([export(solar.meter_id, other, wh=2_000)])
    truth = ingest([signed(export(solar.meter_id, other, wh=700), meter_key("solar"), DOMAIN)])
    assert (truth.corrected, truth.verified) == (1, 1)
    row = stored(session, solar.meter_id, other)
    assert (row.export_wh, row.verified, row.revision) == (700, True, 1)
    audit = session.exec(select(ReadingCorrection)).one()
    assert (audit.previous_export_wh, audit.previous_verified, audit.verified) == (
        2_000,
        False,
        True,
    )


def test_export_above_the_approved_capacity_is_rejected_with_the_reason(world):
    session, solar, _, ingest = world
    approve(session, solar, meter_key("solar"), capacity_w=4_000)  # declared 10 kW
    body = signed(export(solar.meter_id, wh=1_001), meter_key("solar"), DOMAIN)
    result = ingest(
        [body, signed(export(solar.meter_id, SLOT - 900, 1_000), meter_key("solar"), DOMAIN)]
    )
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.rejections[0].reason == (
        "exportWh 1001 exceeds the meter's approved capacity 4000 W x 15 min = 1000 Wh"
    )


def test_a_malformed_signature_is_rejected_with_the_reason(world):
    _, solar, _, ingest = world
    result = ingest([{**export(solar.meter_id), "signature": "0x1234"}])
    assert result.rejected == 1 and "65 bytes" in result.rejections[0].reason


def test_a_javascript_wallet_signs_the_typed_data_and_the_backend_verifies_it(world):
    """A meter gateway or a browser wallet signing `typed_data(...)` with eth-sig-util or viem
    (the document as JavaScript parses it) produces signatures the ingest verifies."""
    session, solar, _, ingest = world
    key = meter_key("solar")
    lines = []
    for slot in (SLOT, SLOT - 900):
        values = signed_values(
            {"meter_id": solar.meter_id, "interval_start": slot, "import_wh": 3, "export_wh": 777}
        )
        document = typed_data(values, DOMAIN.chain_id, DOMAIN.registry)
        lines.append(
            json.dumps({"key": "0x" + key.key.hex(), "document": js_parse(json.dumps(document))})
        )
    replies = [
        json.loads(line)
        for line in run_node("sign_documents.mjs", stdin="\n".join(lines)).splitlines()
    ]
    bodies = [
        {**export(solar.meter_id, slot, wh=777), "signature": reply[signer]}
        for slot, reply, signer in zip(
            (SLOT, SLOT - 900), replies, ("eth-sig-util", "viem"), strict=True
        )
    ]
    result = ingest(bodies)
    assert (result.accepted, result.verified) == (2, 2)
    assert {stored(session, solar.meter_id, s).signer for s in (SLOT, SLOT - 900)} == {key.address}


def test_in_one_batch_an_unsigned_repeat_cannot_replace_a_verified_reading(world):
    """The later reading of an interval wins only where it could have won as a separate
    message: after a verified reading, an unsigned one with other values is refused, the
    verified one stands and is not superseded; a signed later one wins over an unsigned one."""
    session, solar, _, ingest = world
    verified = signed(export(solar.meter_id), meter_key("solar"), DOMAIN)
    result = ingest([verified, export(solar.meter_id, wh=5)])
    assert (result.accepted, result.verified, result.rejected, result.superseded) == (1, 1, 1, 0)
    assert result.rejections[0].index == 1
    assert "only a metering data provider can correct it" in result.rejections[0].reason
    row = stored(session, solar.meter_id)
    assert (row.export_wh, row.verified) == (1_000, True)

    later = SLOT - 900
    upgrade = signed(export(solar.meter_id, later, wh=7), meter_key("solar"), DOMAIN)
    result = ingest([export(solar.meter_id, later, wh=6), upgrade])
    assert (result.verified, result.corrected, result.superseded) == (1, 1, 1)
    assert [(s.index, s.by) for s in result.supersededReadings] == [(0, 1)]
    row = stored(session, solar.meter_id, later)
    assert (row.export_wh, row.verified, row.signer) == (7, True, meter_key("solar").address)
