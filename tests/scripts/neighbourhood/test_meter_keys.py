"""Demo meter keys: the same key for the same seed and meter, different otherwise, and a
reading it signs names it as the signer."""

from backend.market.orders import meter_id
from backend.meters.signing import SignedValues, reading_signer, sign_reading
from scripts.neighbourhood.meter_keys import meter_key

REGISTRY = "0x" + "ab" * 20


def test_keys_are_deterministic_per_seed_and_meter():
    assert meter_key(7, "alice-meter").address == meter_key(7, "alice-meter").address
    others = {meter_key(7, "bob-meter").address, meter_key(8, "alice-meter").address}
    assert meter_key(7, "alice-meter").address not in others
    assert len(others) == 2


def test_a_reading_signed_with_the_demo_key_recovers_to_it():
    key = meter_key(7, "alice-meter")
    values = SignedValues(meter_id(key.address, "alice-meter"), 1_767_225_600, 900, 0, 420)
    signature = sign_reading(values, key.key, 31337, REGISTRY)
    assert reading_signer(values, signature, 31337, REGISTRY) == key.address
