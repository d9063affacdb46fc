"""Bytes32Text: a claim's `location` must fit its bytes32 on chain as UTF-8 (the stateful
fuzzer found 32 characters of multi-byte text answered 500 from deep inside the chain call)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.recs.schemas import ClaimRequest

CLAIM = {"amount_wh": "1", "beneficiary": "b", "consumption_start": 0, "consumption_end": 1}


def test_a_location_of_32_bytes_fits():
    assert ClaimRequest(**CLAIM, location="x" * 32).location == "x" * 32
    assert ClaimRequest(**CLAIM, location="é" * 16).location == "é" * 16  # 2 bytes each


def test_a_location_over_32_bytes_of_utf8_is_refused():
    with pytest.raises(ValidationError, match="at most 32 bytes of UTF-8"):
        ClaimRequest(**CLAIM, location="é" * 17)
