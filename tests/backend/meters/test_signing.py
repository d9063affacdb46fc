"""EIP-712 meter readings: the digest is the generic typed-data digest, and a signature binds
the meter, the interval, the values, the chain and the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from backend.meters.signing import (
    SignedValues,
    domain_separator,
    reading_digest,
    reading_digests,
    reading_signer,
    sign_reading,
    typed_data,
)

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
METER_KEY = Account.from_key("0x" + "42" * 32)
VALUES = SignedValues(bytes(range(32)), 1_767_225_600, 900, 1_234, 5_678)


def generic_digest(values: SignedValues, chain_id: int, registry: str) -> bytes:
    document = typed_data(values, chain_id, registry)
    document["message"] = {
        "meterId": values.meter_id,
        "intervalStart": values.interval_start,
        "intervalSeconds": values.interval_seconds,
        "importWh": values.import_wh,
        "exportWh": values.export_wh,
    }
    signable = encode_typed_data(full_message=document)
    return keccak(b"\x19\x01" + signable.header + signable.body)


@given(
    meter=st.binary(min_size=32, max_size=32),
    start=st.integers(0, 2**64 - 1),
    seconds=st.integers(0, 2**32 - 1),
    import_wh=st.integers(0, 2**64 - 1),
    export_wh=st.integers(0, 2**64 - 1),
)
def test_digest_is_the_generic_eip712_digest(
    meter: bytes, start: int, seconds: int, import_wh: int, export_wh: int
) -> None:
    values = SignedValues(meter, start, seconds, import_wh, export_wh)
    assert reading_digest(values, CHAIN_ID, REGISTRY) == generic_digest(values, CHAIN_ID, REGISTRY)


def test_signature_recovers_the_meter_key() -> None:
    signature = sign_reading(VALUES, METER_KEY.key, CHAIN_ID, REGISTRY)
    assert reading_signer(VALUES, signature, CHAIN_ID, REGISTRY) == METER_KEY.address


@pytest.mark.parametrize(
    "change",
    [
        {"meter_id": bytes(31) + b"\x01"},
        {"interval_start": VALUES.interval_start + 900},
        {"interval_seconds": 1_800},
        {"import_wh": VALUES.import_wh + 1},
        {"export_wh": VALUES.export_wh + 1},
    ],
)
def test_replayed_or_altered_reading_recovers_a_stranger(change: dict[str, object]) -> None:
    signature = sign_reading(VALUES, METER_KEY.key, CHAIN_ID, REGISTRY)
    altered = replace(VALUES, **change)  # type: ignore[arg-type]
    assert reading_signer(altered, signature, CHAIN_ID, REGISTRY) != METER_KEY.address


def test_signature_does_not_carry_to_another_chain_or_registry() -> None:
    signature = sign_reading(VALUES, METER_KEY.key, CHAIN_ID, REGISTRY)
    other_registry = "0x" + "ab" * 20
    assert reading_signer(VALUES, signature, CHAIN_ID + 1, REGISTRY) != METER_KEY.address
    assert reading_signer(VALUES, signature, CHAIN_ID, other_registry) != METER_KEY.address


@pytest.mark.parametrize("signature", [b"", b"\x00" * 65, b"\x01" * 64, b"\xff" * 66])
def test_malformed_signature_recovers_nobody(signature: bytes) -> None:
    assert reading_signer(VALUES, signature, CHAIN_ID, REGISTRY) is None


def test_value_outside_its_type_recovers_nobody() -> None:
    signature = sign_reading(VALUES, METER_KEY.key, CHAIN_ID, REGISTRY)
    assert reading_signer(replace(VALUES, export_wh=2**64), signature, CHAIN_ID, REGISTRY) is None
    assert reading_signer(replace(VALUES, import_wh=-1), signature, CHAIN_ID, REGISTRY) is None


WH = st.one_of(st.none(), st.integers(0, 10**12))


@given(
    st.lists(
        st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**40), WH, WH),
        min_size=1,
        max_size=20,
    )
)
def test_digests_hashed_by_columns_are_the_generic_typed_data_digests(readings):
    """Absent values are signed as 0, as `reading_digest` of one reading signs them."""
    digests = reading_digests(
        ["0x" + meter.hex() for meter, *_ in readings],
        [start for _, start, _, _ in readings],
        [imported for *_, imported, _ in readings],
        [exported for *_, exported in readings],
        domain_separator(CHAIN_ID, REGISTRY),
    )
    assert digests == [
        generic_digest(SignedValues(meter, start, 900, i or 0, e or 0), CHAIN_ID, REGISTRY)
        for meter, start, i, e in readings
    ]


def test_a_value_that_does_not_fit_its_type_digests_to_none_not_to_a_wrong_word():
    separator = domain_separator(CHAIN_ID, REGISTRY)
    good = "0x" + VALUES.meter_id.hex()
    assert reading_digests([good, good], [-900, 900], [1, 1], [None, 2**64], separator) == [
        None,
        None,
    ]
    digests = reading_digests(["0x1234", good], [900, 900], [1, 1], [2, 2], separator)
    assert digests[0] is None
    assert digests[1] == reading_digest(
        replace(VALUES, interval_start=900, import_wh=1, export_wh=2), CHAIN_ID, REGISTRY
    )
