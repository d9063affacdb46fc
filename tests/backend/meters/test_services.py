"""Reading ingestion: validation reasons, idempotent duplicates, corrections with an audit trail."""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.meters.models import MeterReading, ReadingCorrection
from backend.meters.services import ingest_readings
from backend.meters.validation import iso
from tests.fixtures.meters import NOW


def reading(meter, start, export_wh=None, import_wh=None, **extra):
    body = {"meterId": meter, "timestamp": iso(start)}
    if export_wh is not None:
        body["exportWh"] = export_wh
    if import_wh is not None:
        body["importWh"] = import_wh
    return {**body, **extra}


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def world(request):
    return request.getfixturevalue("metered" if request.param == "postgresql" else "sqlite_metered")


def test_new_duplicate_and_corrected_readings(world):
    session, _owner, _, solar, _ = world
    batch = [
        reading(solar.meter_id, NOW - 900 * (i + 1), export_wh=100 + i, import_wh=5)
        for i in range(8)
    ]
    first = ingest_readings(session, batch, source="rest", now=NOW)
    assert (first.accepted, first.duplicate, first.corrected, first.rejected) == (8, 0, 0, 0)

    again = ingest_readings(session, list(reversed(batch)), source="rest", now=NOW)
    assert (again.accepted, again.duplicate, again.corrected) == (0, 8, 0)

    changed = [reading(solar.meter_id, NOW - 900, export_wh=999), batch[1]]
    result = ingest_readings(session, changed, source="mqtt", now=NOW)
    assert (result.accepted, result.duplicate, result.corrected) == (0, 1, 1)

    row = session.exec(select(MeterReading).where(MeterReading.interval_start == NOW - 900)).one()
    assert (row.export_wh, row.import_wh, row.revision, row.source) == (999, 5, 1, "mqtt")
    audit = session.exec(select(ReadingCorrection)).all()
    assert [(a.previous_export_wh, a.export_wh, a.revision) for a in audit] == [(100, 999, 1)]
    assert len(session.exec(select(MeterReading)).all()) == 8


def test_same_interval_twice_in_one_batch(world):
    session, _, _, solar, _ = world
    start = NOW - 1800
    batch = [
        reading(solar.meter_id, start, export_wh=10),
        reading(solar.meter_id, start, export_wh=10),
        reading(solar.meter_id, start, export_wh=12),
    ]
    result = ingest_readings(session, batch, source="rest", now=NOW)
    assert (result.accepted, result.duplicate, result.corrected) == (1, 1, 1)
    assert session.exec(select(MeterReading.export_wh)).all() == [12]
    assert result.superseded == 2
    assert [(s.index, s.by, s.meterId) for s in result.supersededReadings] == [
        (0, 2, solar.meter_id),
        (1, 2, solar.meter_id),
    ]
    audit = session.exec(select(ReadingCorrection)).all()
    assert [(a.previous_export_wh, a.export_wh) for a in audit] == [(10, 12)]


@pytest.mark.parametrize("kwh_first", [True, False])
def test_the_last_reading_of_an_interval_in_a_batch_wins_however_it_is_validated(world, kwh_first):
    """A kWh reading is validated one by one, after the plain readings the columns pass; the
    later reading in the message still wins, whichever of the two it is."""
    session, _, _, solar, _ = world
    start = NOW - 2700
    kwh = reading(solar.meter_id, start, export_wh=0.012, unit="kWh")  # 12 Wh
    wh = reading(solar.meter_id, start, export_wh=10)
    others = [reading(solar.meter_id, NOW - 900 * k, export_wh=k) for k in (1, 2, 4)]
    batch = [others[0], kwh, others[1], wh, others[2]] if kwh_first else [wh, others[0], kwh]
    result = ingest_readings(session, batch, source="rest", now=NOW)
    row = session.exec(select(MeterReading).where(MeterReading.interval_start == start)).one()
    assert row.export_wh == (10 if kwh_first else 12)
    assert result.corrected == 1 and result.rejected == 0
    assert [(s.index, s.by) for s in result.supersededReadings] == (
        [(1, 3)] if kwh_first else [(0, 2)]
    )


def test_a_batch_without_repeats_supersedes_nothing(world):
    session, _, _, solar, _ = world
    batch = [reading(solar.meter_id, NOW - 900 * k, export_wh=k) for k in range(1, 5)]
    ingest_readings(session, batch[:2], source="rest", now=NOW)
    result = ingest_readings(session, batch, source="rest", now=NOW)  # merged: 2 stored before
    assert (result.accepted, result.duplicate, result.superseded) == (2, 2, 0)
    assert result.supersededReadings == []


def test_a_missing_direction_is_filled_not_corrected(world):
    session, _, _, solar, _ = world
    ingest_readings(
        session, [reading("meter:solar-1", NOW - 900, export_wh=40)], source="mqtt", now=NOW
    )
    result = ingest_readings(
        session, [reading("meter:solar-1", NOW - 900, import_wh=7)], source="mqtt", now=NOW
    )
    assert (result.accepted, result.corrected) == (1, 0)
    row = session.exec(select(MeterReading)).one()
    assert (row.meter_id, row.import_wh, row.export_wh, row.revision) == (solar.meter_id, 7, 40, 0)


MALFORMED = [
    ("not an object", [1, 2], "must be a JSON object"),
    ("no meter", {"timestamp": iso(NOW - 900), "exportWh": 1}, "missing required field meterId"),
    ("unknown meter", reading("meter:nobody", NOW - 900, export_wh=1), "unknown meter"),
    ("short hex id", reading("0x1234", NOW - 900, export_wh=1), "32 bytes"),
    ("wrong type", reading("meter:solar-1", NOW - 900, export_wh="12"), "must be a number"),
    ("boolean", reading("meter:solar-1", NOW - 900, export_wh=True), "must be a number"),
    ("NaN", reading("meter:solar-1", NOW - 900, export_wh=float("nan")), "must be finite"),
    ("infinite", reading("meter:solar-1", NOW - 900, import_wh=float("inf")), "must be finite"),
    ("negative", reading("meter:solar-1", NOW - 900, export_wh=-1), "must not be negative"),
    ("huge", reading("meter:solar-1", NOW - 900, import_wh=1e30), "implausibly large"),
    (
        "above capacity",
        reading("meter:solar-1", NOW - 900, export_wh=2_501),
        "exceeds the meter's declared capacity",
    ),
    (
        "kWh above capacity",
        reading("meter:solar-1", NOW - 900, export_wh=2.6, unit="kWh"),
        "exceeds the meter's declared capacity",
    ),
    (
        "bad unit",
        reading("meter:solar-1", NOW - 900, export_wh=1, unit="kW"),
        "unit must be Wh or kWh",
    ),
    ("future", reading("meter:solar-1", NOW, export_wh=1), "future"),
    ("far future", reading("meter:solar-1", NOW + 86_400, export_wh=1), "future"),
    (
        "misaligned",
        {"meterId": "meter:solar-1", "timestamp": iso(NOW - 1000), "exportWh": 1},
        "not aligned",
    ),
    (
        "not ISO",
        {"meterId": "meter:solar-1", "timestamp": "yesterday", "exportWh": 1},
        "not ISO 8601",
    ),
    (
        "not UTC",
        {"meterId": "meter:solar-1", "timestamp": "2025-12-31T23:45:00+01:00", "exportWh": 1},
        "must be UTC",
    ),
    (
        "naive time",
        {"meterId": "meter:solar-1", "timestamp": "2025-12-31T23:45:00", "exportWh": 1},
        "must be UTC",
    ),
    (
        "interval",
        reading("meter:solar-1", NOW - 900, export_wh=1, intervalSeconds=300),
        "intervalSeconds must be 900",
    ),
    ("no energy", reading("meter:solar-1", NOW - 900), "needs importWh, exportWh or both"),
    (
        "export on import meter",
        reading("meter:house-1", NOW - 900, export_wh=1),
        "import-only meter",
    ),
    (
        "import too large",
        reading("meter:house-1", NOW - 900, import_wh=5_000_000),
        "plausible maximum",
    ),
    (
        "power factor",
        reading("meter:solar-1", NOW - 900, export_wh=1, powerFactor=1.5),
        "powerFactor",
    ),
    (
        "quality",
        reading("meter:solar-1", NOW - 900, export_wh=1, quality="great"),
        "quality must be one of",
    ),
]


def test_malformed_corpus_each_rejected_with_reason_nothing_else_lost(world):
    session, *_ = world
    good = [reading("meter:solar-1", NOW - 900 * k, export_wh=k) for k in (2, 3)]
    batch = [good[0], *[body for _, body, _ in MALFORMED], good[1]]
    result = ingest_readings(session, batch, source="rest", now=NOW)
    assert (result.accepted, result.rejected) == (2, len(MALFORMED))
    reasons = {r.index: r.reason for r in result.rejections}
    for position, (name, _, expected) in enumerate(MALFORMED, start=1):
        assert expected in reasons[position], (name, reasons[position])
    assert sorted(session.exec(select(MeterReading.export_wh)).all()) == [2, 3]


def test_mqtt_credentials_are_hashed_per_meter(world):
    from backend.meters.services import check_mqtt_credentials

    session, _, _, solar, _house = world
    assert (
        solar.mqtt_password_hash.startswith("$7$210000$")
        and "solar-secret-123" not in solar.mqtt_password_hash
    )
    assert check_mqtt_credentials(session, "meter:solar-1", "solar-secret-123") == solar.meter_id
    assert check_mqtt_credentials(session, solar.meter_id, "solar-secret-123") == solar.meter_id
    assert check_mqtt_credentials(session, "meter:solar-1", "wrong-password") is None
    assert (
        check_mqtt_credentials(session, "meter:house-1", "solar-secret-123") is None
    )  # no MQTT login
    assert check_mqtt_credentials(session, "meter:nobody", "solar-secret-123") is None
