"""Bytes32Text: a claim's `location` must fit its bytes32 on chain as UTF-8 (the stateful
fuzzer found 32 characters of multi-byte text answered 500 from deep inside the chain call).
FreeText: no NUL in text the database keeps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.dr.schemas import ProgramCreate
from backend.recs.schemas import ClaimRequest
from backend.vpp.schemas import VppCreate

CLAIM = {"amount_wh": "1", "beneficiary": "b", "consumption_start": 0, "consumption_end": 1}
PROGRAM = {
    "name": "p",
    "program_type": "economic",
    "incentive_per_kwh": "1",
    "penalty_per_kwh": "0",
    "notification_lead_s": 0,
    "max_events": 1,
}


def test_a_location_of_32_bytes_fits():
    assert ClaimRequest(**CLAIM, location="x" * 32).location == "x" * 32
    assert ClaimRequest(**CLAIM, location="é" * 16).location == "é" * 16  # 2 bytes each


def test_a_location_over_32_bytes_of_utf8_is_refused():
    with pytest.raises(ValidationError, match="at most 32 bytes of UTF-8"):
        ClaimRequest(**CLAIM, location="é" * 17)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (ClaimRequest, {**CLAIM, "beneficiary": "ACME\x00"}),
        (ClaimRequest, {**CLAIM, "purpose": "\x00"}),
        (VppCreate, {"name": "miss", "description": "\x00³"}),  # what the stateful fuzzer sent
        (ProgramCreate, PROGRAM | {"description": "a\x00b"}),
    ],
)
def test_free_text_with_a_nul_is_refused_at_the_edge(model, fields):
    """PostgreSQL text cannot hold NUL: refused as a 422, not a 500 from the insert."""
    with pytest.raises(ValidationError, match="must not contain NUL"):
        model(**fields)
