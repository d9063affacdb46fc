"""Column-wise validation agrees with the per-reading rules, reading by reading."""

from __future__ import annotations

import uuid
from dataclasses import replace

import orjson
import pytest

from backend.meters.batch import Rules, decode_plain, validate_batch, validate_plain
from backend.meters.validation import (
    MeterLimits,
    ReadingRejected,
    iso,
    validate_reading,
)

NOW = 1_767_225_600
OWNER = uuid.uuid4()
SOLAR = "0x" + "11" * 32
HOUSE = "0x" + "22" * 32
STRANGER = "0x" + "33" * 32
METERS = {
    SOLAR: MeterLimits(SOLAR, "both", 10_000, OWNER, "approved"),
    "meter:solar": MeterLimits(SOLAR, "both", 10_000, OWNER, "approved"),
    HOUSE: MeterLimits(HOUSE, "import", 20_000, OWNER),
    STRANGER: MeterLimits(STRANGER, "export", 4_000, uuid.uuid4()),
}
RULES = Rules(now=NOW, skew_s=60, max_import_wh=1_000_000)


def plain(meter: str = SOLAR, back: int = 1, **fields) -> dict:
    return {"meterId": meter, "timestamp": iso(NOW - 900 * back), **fields}


# Each reading is one case: plain ones the columns accept, and every edge the per-reading
# rules decide (most must be rejected, some accepted only by validate_reading).
MIXED = [
    plain(importWh=5, exportWh=7),
    plain(SOLAR.upper().replace("0X", "0x"), exportWh=2_500, quality="high"),
    plain("meter:solar", importWh=0),
    plain(HOUSE, importWh=1_000_000),
    plain(HOUSE, importWh=1_000_001),
    plain(HOUSE, exportWh=1),
    plain(HOUSE, exportWh=0, importWh=3),
    plain(STRANGER, exportWh=1),
    plain(STRANGER, importWh=2),
    plain(exportWh=2_501),
    plain(exportWh=2.4, unit="kWh"),
    plain(exportWh=2.6, unit="kWh"),
    plain(exportWh=1, unit="kW"),
    plain(exportWh=1, unit=["Wh"]),
    plain(exportWh=1.5),
    plain(exportWh=True),
    plain(exportWh="1"),
    plain(exportWh=-1),
    plain(importWh=10**40),
    plain(importWh=1e30),
    plain(),
    plain(importWh=None, exportWh=None),
    plain(back=0, exportWh=1),
    plain(back=-96, exportWh=1),
    {"meterId": SOLAR, "timestamp": iso(NOW - 1000), "exportWh": 1},
    {"meterId": SOLAR, "timestamp": "yesterday", "exportWh": 1},
    {"meterId": SOLAR, "timestamp": "2025-12-31T23:45:00+01:00", "exportWh": 1},
    {"meterId": SOLAR, "timestamp": "2025-12-31T23:45:00", "exportWh": 1},
    {"meterId": SOLAR, "timestamp": 1_767_224_700, "exportWh": 1},
    {"timestamp": iso(NOW - 900), "exportWh": 1},
    {"meterId": SOLAR, "exportWh": 1},
    {"meterId": None, "timestamp": iso(NOW - 900), "exportWh": 1},
    {"meterId": ["x"], "timestamp": iso(NOW - 900), "exportWh": 1},
    plain("0x1234", exportWh=1),
    plain("meter:nobody", exportWh=1),
    plain(exportWh=1, intervalSeconds=300),
    plain(exportWh=1, intervalSeconds=900.0),
    plain(exportWh=1, intervalSeconds=None),
    plain(exportWh=1, intervalSeconds=True),
    plain(exportWh=1, quality="great"),
    plain(exportWh=1, quality=None),
    plain(exportWh=1, voltage=230, current=-4.5, powerFactor=0.97),
    plain(exportWh=1, voltage=-1),
    plain(exportWh=1, voltage=float("nan")),
    plain(exportWh=1, current=10**400),
    plain(exportWh=1, powerFactor=1.5),
    plain(exportWh=1, powerFactor="1"),
    plain(exportWh=1, metadata={"firmware": "1.2"}, standard="WIA-ENE-014", version="1"),
    [1, 2],
    "a reading",
    None,
]


def per_reading(readings, sender_id=None):
    """What validate_reading says of each reading: (index -> row) and (index -> reason)."""
    rows, reasons = {}, {}
    for index, reading in enumerate(readings):
        try:
            rows[index] = validate_reading(
                reading,
                METERS,
                now=RULES.now,
                skew_s=RULES.skew_s,
                max_import_wh=RULES.max_import_wh,
                sender_id=sender_id,
            )
        except ReadingRejected as exc:
            reasons[index] = exc.reason
    return rows, reasons


def by_index(columns):
    return {row.pop("idx"): row for row in (dict(r) for r in columns.rows())}


@pytest.mark.parametrize("sender_id", [None, OWNER, uuid.uuid4()])
def test_columns_accept_and_reject_exactly_what_validate_reading_does(sender_id):
    expected_rows, expected_reasons = per_reading(MIXED, sender_id)
    columns, reasons = validate_batch(MIXED, METERS, replace(RULES, sender_id=sender_id))
    assert reasons == expected_reasons
    got = by_index(columns)
    assert got.keys() == expected_rows.keys()
    for index, row in got.items():
        for name in ("verified", "signature", "signer"):
            assert row.pop(name) in (False, None)
        assert row == expected_rows[index], MIXED[index]
    if sender_id is None:  # sanity: the mix holds both outcomes in numbers
        assert len(expected_rows) >= 12
        assert len(expected_reasons) >= 30


def test_skipped_readings_are_neither_stored_nor_rejected():
    readings = [plain(exportWh=1), plain(back=2, exportWh=2), "junk"]
    columns, reasons = validate_batch(readings, METERS, RULES, skip={1, 2})
    assert (columns.idx, reasons) == ([0], {})


def test_a_body_of_plain_readings_decodes_typed_and_agrees():
    readings = []
    for reading in MIXED:
        try:  # as a device's JSON would carry it (NaN becomes null; a 400-digit int cannot)
            readings.append(orjson.loads(orjson.dumps(reading)))
        except orjson.JSONEncodeError:
            continue
    plain_ones = [r for r in readings if decode_plain(orjson.dumps([r])) is not None]
    # floats, kWh, 900.0, booleans, strings for numbers, NaN, nulls for meter: not plain
    assert 15 <= len(plain_ones) < len(readings)
    body = orjson.dumps(plain_ones)
    decoded = decode_plain(body)
    assert decoded is not None
    columns, reasons = validate_plain(decoded, METERS, RULES)
    expected_rows, expected_reasons = per_reading(plain_ones)
    assert reasons == expected_reasons
    got = by_index(columns)
    assert {i: {k: v for k, v in r.items() if k in expected_rows[i]} for i, r in got.items()} == (
        expected_rows
    )
    assert len(expected_reasons) >= 5  # the meter and clock rules still reject some


def test_one_non_plain_reading_sends_the_whole_body_the_general_way():
    assert decode_plain(orjson.dumps([plain(exportWh=1), plain(exportWh=1.5)])) is None
    assert decode_plain(b"[{]") is None
    assert decode_plain(orjson.dumps([plain(exportWh=1)])) is not None


@pytest.mark.parametrize(
    "fields",
    [
        {"quality": "high"},  # every reading: one quality, no electrical values, no signature
        {"quality": "estimated", "voltage": 230.5, "powerFactor": -0.5},
        {},
    ],
    ids=["one quality", "the same values everywhere", "nothing optional"],
)
def test_columns_sent_alike_by_every_reading_are_the_per_reading_rows(fields):
    readings = [plain(back=k, importWh=k, exportWh=2 * k, **fields) for k in range(1, 40)]
    readings += [plain(HOUSE, back=k, importWh=k, **fields) for k in range(1, 40)]
    decoded = decode_plain(orjson.dumps(readings))
    assert decoded is not None
    columns, reasons = validate_plain(decoded, METERS, RULES)
    expected_rows, expected_reasons = per_reading(readings)
    assert (reasons, expected_reasons) == ({}, {})
    got = by_index(columns)
    assert {i: {k: v for k, v in r.items() if k in expected_rows[i]} for i, r in got.items()} == (
        expected_rows
    )
    assert all(row["export_wh"] is None for i, row in got.items() if i >= 39)  # house: import
