"""Custodial chain keys: generated server-side, stored encrypted with AES-256-GCM.

The stored form is `v1:<nonce hex>:<ciphertext+tag hex>`; the account id is bound in as
associated data, so a ciphertext copied onto another account does not decrypt. Private keys
are only ever held in memory to sign; they never leave this module except as a signer.
"""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from backend.accounts.models import Account, AccountKind
from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.core.config import Settings
from backend.core.errors import ConfigurationError


def _aead(settings: Settings) -> AESGCM:
    return AESGCM(bytes.fromhex(settings.master_key_hex.get_secret_value()))


def new_custodial_key(account_id: uuid.UUID, settings: Settings) -> tuple[str, str]:
    """A fresh chain key: (lower-case address, encrypted private key)."""
    account = EthAccount.create()
    return account.address.lower(), encrypt_key(bytes(account.key), account_id, settings)


def encrypt_key(private_key: bytes, account_id: uuid.UUID, settings: Settings) -> str:
    nonce = os.urandom(12)
    sealed = _aead(settings).encrypt(nonce, private_key, account_id.bytes)
    return f"v1:{nonce.hex()}:{sealed.hex()}"


def custodial_signer(encrypted: str, account_id: uuid.UUID, settings: Settings) -> LocalAccount:
    try:
        version, nonce_hex, sealed_hex = encrypted.split(":")
        if version != "v1":
            raise ValueError(version)
        key = _aead(settings).decrypt(
            bytes.fromhex(nonce_hex), bytes.fromhex(sealed_hex), account_id.bytes
        )
    except (ValueError, InvalidTag) as exc:
        raise ConfigurationError(
            "custodial key cannot be decrypted with the configured master key"
        ) from exc
    return EthAccount.from_key(key)


def signer_for(account: Account, settings: Settings) -> LocalAccount | None:
    """The account's custodial signer, or None when the API holds no key for it (a wallet
    account signs and sends its own transactions)."""
    if account.kind != AccountKind.CUSTODIAL or not account.encrypted_key:
        return None
    return custodial_signer(account.encrypted_key, account.id, settings)


def record_signature(
    session: Session,
    account: Account,
    action: str,
    *,
    tx_hash: str | None = None,
    order_hash: str | None = None,
) -> None:
    """Audit one signature the API made with the account's custodial key: what for (`action`,
    e.g. `market.withdraw`) and the transaction or order it signed. Added to the session's
    transaction; the caller commits."""
    details = {"action": action, "address": account.address.lower()}
    if tx_hash:
        details["tx_hash"] = tx_hash
    if order_hash:
        details["order_hash"] = order_hash
    audit.record(
        session,
        AuditAction.CUSTODIAL_SIGNATURE,
        actor_id=account.id,
        subject=tx_hash or order_hash or action,
        details=details,
    )
