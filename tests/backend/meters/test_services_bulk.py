"""Bulk bodies (`ingest_body`): the typed column path and the general path keep every guarantee.

Per-reading rejection reasons, duplicates idempotent with energy conserved, corrections
audited, signed readings verified and unsigned ones stored unverified.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from sqlalchemy import func
from sqlmodel import select

from backend.meters.models import MeterReading, ReadingCorrection
from backend.meters.services import ingest_body
from backend.meters.trust import ReadingDomain
from backend.meters.validation import iso
from tests.fixtures.meters import NOW, TEST_CHAIN_ID, TEST_REGISTRY, approve, meter_key, signed

pytestmark = pytest.mark.postgres
DOMAIN = ReadingDomain(TEST_CHAIN_ID, TEST_REGISTRY)


def series(meter: str, count: int, first_back: int = 1) -> list[dict]:
    return [
        {
            "meterId": meter,
            "timestamp": iso(NOW - 900 * (first_back + i)),
            "importWh": 10 + (first_back + i) % 7,  # values by slot: an overlap repeats them
            "exportWh": 100 + (first_back + i) % 500,
            "quality": "high",
        }
        for i in range(count)
    ]


@pytest.fixture
def world(metered, meter_settings):
    session, owner, _other, solar, house = metered

    def ingest(body, content_type="application/json", **kwargs):
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return ingest_body(
            session, raw, content_type, source="rest", now=NOW, settings=meter_settings, **kwargs
        )

    return session, owner, solar, house, ingest


def totals(session, meter_id=None):
    """(rows, import Wh, export Wh) stored."""
    query = select(func.count(), func.sum(MeterReading.import_wh), func.sum(MeterReading.export_wh))
    if meter_id is not None:
        query = query.where(MeterReading.meter_id == meter_id)
    count, imported, exported = session.exec(query).one()
    return count, imported or 0, exported or 0


@pytest.mark.parametrize("shape", ["typed", "general"])
def test_a_mixed_batch_names_each_rejected_reading(world, shape):
    session, owner, solar, house, ingest = world
    good = series(solar.meter_id, 5)
    bad = [
        {"meterId": "meter:nobody", "timestamp": iso(NOW - 900), "exportWh": 1},
        {"meterId": solar.meter_id, "timestamp": iso(NOW), "exportWh": 1},
        {"meterId": solar.meter_id, "timestamp": iso(NOW - 900 * 50), "exportWh": 2_501},
        {"meterId": house.meter_id, "timestamp": iso(NOW - 900), "exportWh": 3},
    ]
    if shape == "general":  # one non-plain reading: the body goes the general way
        bad.append({"meterId": solar.meter_id, "timestamp": iso(NOW - 900 * 60), "exportWh": "x"})
    batch = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4]]
    batch += bad[4:]
    result = ingest(batch, sender_id=owner.id)
    assert (result.received, result.accepted, result.rejected) == (len(batch), 5, len(bad))
    reasons = {r.index: (r.reason, r.meterId) for r in result.rejections}
    assert reasons[1] == ("unknown meter meter:nobody", "meter:nobody")
    assert "future" in reasons[3][0]
    assert "exceeds the meter's declared capacity" in reasons[5][0]
    assert reasons[7][0] == "an import-only meter cannot report export"
    if shape == "general":
        assert reasons[9][0] == "exportWh must be a number, got str"
    assert totals(session) == (
        5,
        sum(r["importWh"] for r in good),
        sum(r["exportWh"] for r in good),
    )


def test_a_repeated_batch_is_idempotent_and_conserves_energy(world):
    session, _, solar, _, ingest = world
    body = orjson.dumps(series(solar.meter_id, 600))
    first = ingest(body)
    assert (first.accepted, first.duplicate, first.corrected) == (600, 0, 0)
    before = totals(session)
    again = ingest(body)
    assert (again.accepted, again.duplicate, again.corrected, again.rejected) == (0, 600, 0, 0)
    assert totals(session) == before
    assert session.exec(select(func.count()).select_from(ReadingCorrection)).one() == 0
    # half new, half stored: only the new half is added
    overlapping = series(solar.meter_id, 600, first_back=301)
    result = ingest(overlapping)
    assert (result.accepted, result.duplicate) == (300, 300)
    assert totals(session)[0] == 900


def test_a_changed_value_is_a_correction_with_an_audit_row(world):
    session, _, solar, _, ingest = world
    batch = series(solar.meter_id, 50)
    ingest(batch)
    _, imported, exported = totals(session)
    changed = [dict(r) for r in batch]
    changed[7]["exportWh"] += 11
    result = ingest(changed)
    assert (result.accepted, result.duplicate, result.corrected) == (0, 49, 1)
    audit = session.exec(select(ReadingCorrection)).one()
    slot = NOW - 900 * 8
    assert (audit.meter_id, audit.interval_start, audit.revision) == (solar.meter_id, slot, 1)
    assert (audit.previous_export_wh, audit.export_wh) == (
        batch[7]["exportWh"],
        batch[7]["exportWh"] + 11,
    )
    assert totals(session) == (50, imported, exported + 11)
    row = session.exec(select(MeterReading).where(MeterReading.interval_start == slot)).one()
    assert (row.revision, row.export_wh) == (1, batch[7]["exportWh"] + 11)


def test_signed_readings_are_verified_and_unsigned_ones_are_not(world):
    session, _, solar, _, ingest = world
    approve(session, solar, meter_key("solar"))
    batch = series(solar.meter_id, 6)
    for i in (0, 2, 4):
        batch[i] = signed(batch[i], meter_key("solar"), DOMAIN)
    batch[4] = signed(batch[4], meter_key("not the meter"), DOMAIN)  # a forgery: unverified
    result = ingest(batch)
    assert (result.accepted, result.verified, result.rejected) == (6, 2, 0)
    rows = session.exec(select(MeterReading).order_by(MeterReading.interval_start.desc())).all()
    assert [r.verified for r in rows] == [True, False, True, False, False, False]
    assert rows[0].signer == meter_key("solar").address
    assert rows[0].signature == batch[0]["signature"]
    assert rows[4].signer == meter_key("not the meter").address
    assert (rows[1].signature, rows[1].signer) == (None, None)


def test_a_malformed_signature_rejects_only_its_reading(world):
    session, _, solar, _, ingest = world
    batch = series(solar.meter_id, 3)
    batch[1]["signature"] = "0x1234"
    result = ingest(batch)
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.rejections[0].index == 1
    assert "signature must be 0x + 65 bytes" in result.rejections[0].reason
    assert totals(session)[0] == 2


def test_a_metering_data_provider_verifies_what_it_posts(world):
    session, _, solar, _, ingest = world
    provider = "0x" + "d0" * 20
    result = ingest(series(solar.meter_id, 4), provider=provider)
    assert (result.accepted, result.verified) == (4, 4)
    signers = session.exec(select(MeterReading.signer, MeterReading.verified)).all()
    assert signers == [(provider, True)] * 4


def test_ndjson_rejections_carry_each_bad_line_s_index(world):
    _, _, solar, _, ingest = world
    lines = [orjson.dumps(r) for r in series(solar.meter_id, 3)]
    body = b"\n".join([lines[0], b"{oops", b"[not json", lines[1], lines[2]])
    result = ingest(body, "application/x-ndjson")
    assert (result.received, result.accepted, result.rejected) == (5, 3, 2)
    assert [r.index for r in result.rejections] == [1, 2]
    assert all(r.reason.startswith("invalid JSON") for r in result.rejections)


def test_each_batch_logs_the_path_it_took(world, caplog):
    """New intervals are one COPY of runs; a batch touching stored ones is merged."""
    _, _, solar, _, ingest = world
    caplog.set_level(logging.DEBUG, logger="gridledger.meters.ingest")
    ingest(series(solar.meter_id, 20))
    ingest(series(solar.meter_id, 20, first_back=11))
    paths = [r.getMessage().split(":")[0] for r in caplog.records]
    assert paths == ["ingest copy", "ingest merge"]
    assert "20 readings, 20 stored" in caplog.records[1].getMessage()


def test_readings_name_their_meter_by_id_or_by_name(world):
    """The meter lookup (one statement on PostgreSQL) finds meters by id and by name."""
    session, _, solar, house, ingest = world
    readings = series(solar.meter_id, 3) + series(house.name, 3)
    for reading in readings[3:]:
        reading.pop("exportWh")  # an import-only meter
    result = ingest(readings + series("meter:nobody", 1))
    assert (result.accepted, result.rejected) == (6, 1)
    assert result.rejections[0].reason == "unknown meter meter:nobody"
    assert totals(session, house.meter_id)[0] == 3
