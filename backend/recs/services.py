"""RECs: device registration (owner's custodial key), approval/suspension (registrar key),
certificate reads with history, transfers and claims with a verifiable proof."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, select
from web3.logs import DISCARD
from web3.types import TxReceipt

from backend.accounts.custody import record_signature, signer_for
from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.chain.wallet_calls import WalletCall, WalletMustSign, wallet_call
from backend.core.config import Settings
from backend.core.errors import NotFound
from backend.core.pagination import keyset_page
from backend.market.orders import default_meter_id
from backend.meters.chain_registry import registrar_transaction
from backend.recs.schemas import (
    CertificateDetail,
    CertificatePublic,
    ClaimProof,
    ClaimRequest,
    DeviceCreate,
    DevicePublic,
    HistoryEntry,
    TxAccepted,
)
from backend.resources.certified_meters import refuse_device_on_storage_meter
from indexer.models import (
    Block,
    Certificate,
    CertificateTransfer,
    ChainEvent,
    Claim,
    Device,
    DeviceStatus,
    Holding,
)

CLAIM_EVENT = (
    "CertificateClaimed(uint256,address,uint256,string,string,uint64,uint64,bytes32,uint256)"
)


def _custodial(account: Account, settings: Settings, *calls: WalletCall) -> LocalAccount:
    """The account's custodial key; for a wallet account, `WalletMustSign` with `calls`."""
    signer = signer_for(account, settings)
    if signer is None:
        raise WalletMustSign(
            "send this transaction from your wallet; the API holds no key for it", *calls
        )
    return signer


def _audited(session: Session, account: Account, action: str, receipt: TxReceipt) -> None:
    """Record the custodial signature of a sent transaction in the audit trail."""
    record_signature(session, account, action, tx_hash=tx_hash_hex(receipt))
    session.commit()


def _bytes32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def _accepted(kind: str, ident: str, receipt: TxReceipt, poll: str) -> TxAccepted:
    return TxAccepted(
        id=ident,
        status="submitted",
        tx_hash=tx_hash_hex(receipt),
        block_number=receipt["blockNumber"],
        poll=poll,
    )


# ------------------------------------------------------------------------ devices


def register_device(
    session: Session, settings: Settings, chain: Chain, account: Account, body: DeviceCreate
) -> TxAccepted:
    meter = bytes.fromhex(body.meter_id[2:]) if body.meter_id else default_meter_id(account.address)
    refuse_device_on_storage_meter(session, "0x" + meter.hex())
    signer = _custodial(account, settings)
    receipt = chain.transact(
        signer,
        chain.registry.functions.registerDevice(
            (
                _bytes32(body.technology),
                body.capacity_w,
                _bytes32(body.grid_area),
                body.commissioned_at,
                meter,
            )
        ),
    )
    _audited(session, account, "registry.registerDevice", receipt)
    events = chain.registry.events.DeviceRegistered().process_receipt(receipt, errors=DISCARD)
    device_id = events[0]["args"]["deviceId"]
    return _accepted("device", str(device_id), receipt, f"/v1/recs/devices/{device_id}")


def set_device_status(
    settings: Settings, chain: Chain, device_id: int, approve: bool
) -> TxAccepted:
    function = (
        chain.registry.functions.approveDevice
        if approve
        else chain.registry.functions.suspendDevice
    )
    receipt = registrar_transaction(settings, chain, function(device_id))
    return _accepted("device", str(device_id), receipt, f"/v1/recs/devices/{device_id}")


def list_devices(
    session: Session,
    *,
    owner: str | None,
    status: DeviceStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DevicePublic], str | None]:
    query = select(Device)
    if owner:
        query = query.where(Device.owner == owner.lower())
    if status:
        query = query.where(Device.status == status)
    rows, next_cursor = keyset_page(session, query, Device.device_id, cursor, limit, ascending=True)
    return [DevicePublic.model_validate(d, from_attributes=True) for d in rows], next_cursor


def get_device(session: Session, device_id: int) -> DevicePublic:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id}")
    return DevicePublic.model_validate(device, from_attributes=True)


# ------------------------------------------------------------------- certificates


def _public(cert: Certificate, device: Device) -> dict[str, Any]:
    return {
        "certificate_id": cert.certificate_id,
        "device_id": cert.device_id,
        "technology": device.technology,
        "grid_area": device.grid_area,
        "period_start": cert.period_start,
        "period_end": cert.period_end,
        "volume_wh": cert.volume_wh,
        "claimed_wh": cert.claimed_wh,
        "supply_wh": cert.supply_wh,
        "issued_to": cert.issued_to,
        "issued_at": cert.issued_at,
        "revoked": cert.revoked,
    }


def list_certificates(
    session: Session,
    *,
    technology: str | None,
    grid_area: str | None,
    period_from: int | None,
    period_to: int | None,
    holder: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[CertificatePublic], str | None]:
    query = select(Certificate, Device).join(
        Device, col(Device.device_id) == col(Certificate.device_id)
    )
    if technology:
        query = query.where(Device.technology == technology)
    if grid_area:
        query = query.where(Device.grid_area == grid_area)
    if period_from is not None:
        query = query.where(Certificate.period_start >= period_from)
    if period_to is not None:
        query = query.where(Certificate.period_end <= period_to)
    if holder:
        query = query.join(
            Holding, col(Holding.certificate_id) == col(Certificate.certificate_id)
        ).where(Holding.account == holder.lower(), Holding.balance_wh > 0)
    rows, next_cursor = keyset_page(
        session,
        query,
        Certificate.certificate_id,
        cursor,
        limit,
        ascending=True,
        key_of=lambda row: row[0].certificate_id,
    )
    return [CertificatePublic(**_public(c, d)) for c, d in rows], next_cursor


def get_certificate(session: Session, certificate_id: int) -> CertificateDetail:
    cert = session.get(Certificate, certificate_id)
    if cert is None:
        raise NotFound(f"no certificate {certificate_id}")
    device = session.get(Device, cert.device_id)
    if device is None:  # the indexer mirrors a device before any certificate of it
        raise NotFound(f"no device {cert.device_id} for certificate {certificate_id}")
    issued_block = session.exec(
        select(ChainEvent.block_number).where(ChainEvent.tx_hash == cert.issued_tx)
    ).first()
    issuance = HistoryEntry(
        kind="issuance",
        tx_hash=cert.issued_tx,
        block_number=issued_block or cert.block_number,
        to_account=cert.issued_to,
        amount_wh=cert.volume_wh,
    )
    history = []
    claims = {
        c.tx_hash: c
        for c in session.exec(select(Claim).where(Claim.certificate_id == certificate_id))
    }
    zero = "0x" + "00" * 20
    for t in session.exec(
        select(CertificateTransfer)
        .where(CertificateTransfer.certificate_id == certificate_id)
        .order_by(col(CertificateTransfer.block_number), col(CertificateTransfer.id))
    ):
        if t.to_account == zero and t.tx_hash in claims:
            c = claims[t.tx_hash]
            history.append(
                HistoryEntry(
                    kind="claim",
                    tx_hash=t.tx_hash,
                    block_number=t.block_number,
                    from_account=t.from_account,
                    amount_wh=t.amount_wh,
                    beneficiary=c.beneficiary,
                    purpose=c.purpose,
                )
            )
        else:
            history.append(
                HistoryEntry(
                    kind="transfer",
                    tx_hash=t.tx_hash,
                    block_number=t.block_number,
                    from_account=t.from_account,
                    to_account=t.to_account,
                    amount_wh=t.amount_wh,
                )
            )
    history = [issuance, *sorted(history, key=lambda h: h.block_number)]
    holders = {
        h.account: h.balance_wh
        for h in session.exec(
            select(Holding).where(Holding.certificate_id == certificate_id, Holding.balance_wh > 0)
        )
    }
    return CertificateDetail(**_public(cert, device), holders=holders, history=history)


def transfer(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    *,
    certificate_id: int,
    to: str,
    amount_wh: int,
) -> TxAccepted:
    holder, recipient = (chain.w3.to_checksum_address(a) for a in (account.address, to))
    args = (holder, recipient, certificate_id, amount_wh, b"")
    signer = _custodial(account, settings, wallet_call(chain.registry, "safeTransferFrom", *args))
    receipt = chain.transact(signer, chain.registry.functions.safeTransferFrom(*args))
    _audited(session, account, "registry.safeTransferFrom", receipt)
    tx = tx_hash_hex(receipt)
    return _accepted("transfer", tx, receipt, f"/v1/recs/certificates/{certificate_id}")


def claim(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    certificate_id: int,
    body: ClaimRequest,
) -> TxAccepted:
    args = (
        certificate_id,
        body.amount_wh,
        (
            body.beneficiary,
            body.purpose,
            body.consumption_start,
            body.consumption_end,
            _bytes32(body.location),
        ),
    )
    signer = _custodial(account, settings, wallet_call(chain.registry, "claim", *args))
    receipt = chain.transact(signer, chain.registry.functions.claim(*args))
    _audited(session, account, "registry.claim", receipt)
    events = chain.registry.events.CertificateClaimed().process_receipt(receipt, errors=DISCARD)
    claim_id = events[0]["args"]["claimId"]
    return _accepted("claim", str(claim_id), receipt, f"/v1/recs/claims/{claim_id}/proof")


def claim_proof(
    session: Session, *, chain_id: int, registry_address: str, claim_id: int
) -> ClaimProof:
    row = session.get(Claim, claim_id)
    if row is None:
        raise NotFound(f"no claim {claim_id} (yet: it appears once indexed)")
    block = session.exec(select(Block).where(Block.number == row.block_number)).first()
    return ClaimProof(
        claim_id=row.claim_id,
        certificate_id=row.certificate_id,
        amount_wh=row.amount_wh,
        holder=row.holder,
        beneficiary=row.beneficiary,
        purpose=row.purpose,
        consumption_start=row.consumption_start,
        consumption_end=row.consumption_end,
        chain_id=chain_id,
        contract=registry_address.lower(),
        tx_hash=row.tx_hash,
        log_index=row.log_index,
        block_number=row.block_number,
        block_hash=block.hash if block else None,
        event_signature=CLAIM_EVENT,
    )
