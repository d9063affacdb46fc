"""What a deployment outside the local devnet must not start with.

Anvil's keys come from a published mnemonic and the development secrets are in this repository:
on any chain but the local devnet (or with `GRIDLEDGER_ENVIRONMENT` other than development)
they would hand the chain roles, the sessions and the custodial keys to anyone. So the
settings refuse them there, and refuse secrets too short or too uniform to be random.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

# The devnet's chain ids: Anvil/Hardhat (31337) and Ape's in-process chain / Ganache (1337).
LOCAL_DEVNET_CHAIN_IDS = frozenset({31337, 1337})

# Accounts 0-9 of the "test test ... junk" mnemonic that Anvil and Hardhat fund: public knowledge.
PUBLIC_DEV_KEYS = frozenset(
    {
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    }
)

MIN_SECRET_BYTES = 32
MIN_ENTROPY_BITS = 128  # what 32 random bytes give with room to spare for encodings
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

GENERATE_HINT = "python -c 'import secrets; print(secrets.token_hex(32))'"


def estimated_entropy_bits(value: str | bytes) -> float:
    """Length × Shannon entropy per symbol: a generous upper bound on the randomness in `value`;
    a secret made of few repeated symbols ("aaaa…", "0x1111…", a word) stays far below 128."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    per_symbol = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_symbol * total


def private_key_problem(name: str, value: str) -> str | None:
    raw = value.removeprefix("0x").removeprefix("0X").lower()
    try:
        scalar = int(raw, 16)
    except ValueError:
        return f"{name} is not a hex private key"
    if len(raw) != 64 or not 0 < scalar < SECP256K1_N:
        return f"{name} is not a 32-byte secp256k1 private key"
    if raw in PUBLIC_DEV_KEYS:
        return f"{name} is a public development key"
    if estimated_entropy_bits(bytes.fromhex(raw)) < MIN_ENTROPY_BITS:
        return f"{name} does not look random"
    return None


def shared_key_problems(keys: dict[str, str]) -> Iterable[str]:
    """Each role its own key: one key in two settings would give one process both powers
    (the admin key in the API's registrar setting, say)."""
    by_key: dict[str, list[str]] = {}
    for name, value in keys.items():
        by_key.setdefault(value.removeprefix("0x").removeprefix("0X").lower(), []).append(name)
    for names in by_key.values():
        if len(names) > 1:
            yield f"{' and '.join(names)} are the same key (use one key per role)"


def secret_problem(name: str, value: str | bytes, dev_value: str | bytes) -> str | None:
    if value == dev_value:
        return f"{name} is the development value"
    if len(value) < MIN_SECRET_BYTES:
        return f"{name} is shorter than {MIN_SECRET_BYTES} bytes"
    if estimated_entropy_bits(value) < MIN_ENTROPY_BITS:
        return f"{name} does not look random"
    return None


def refusal(where: str, problems: Iterable[str]) -> str | None:
    """One line naming every setting to change, or None when there is nothing to refuse."""
    found = list(problems)
    if not found:
        return None
    return (
        f"refusing to start {where}: "
        + "; ".join(found)
        + f" (generate secrets with {GENERATE_HINT})"
    )
