"""Demo meter keys: one deterministic key per simulated meter, derived from the simulation
seed and the meter's name. It stands in for the key sealed in a real meter's secure element:
the registrar approves the meter (API and chain) with this key's address, and the simulated meter
signs its readings with it. Only for the simulation: anyone who knows the seed knows the keys.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak


def meter_key(seed: int, meter_name: str) -> LocalAccount:
    """The signing key of simulated meter `meter_name` in the neighbourhood of `seed`."""
    return Account.from_key(keccak(text=f"gridledger-demo-meter:{seed}:{meter_name}"))
