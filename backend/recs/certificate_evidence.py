"""A certificate's evidence, served so that anyone can check it without trusting us.

The readings behind a certificate are the ones issuance committed to (backend/settlement/
issuance.py `evidence_roots`): the verified export readings of the device's meter inside the
certificate's period. Each comes with its EIP-712 digest and its Merkle proof to the
`evidenceRoot` of `CertificateIssued`. Nothing here is checked: a reading corrected after
issuance is served as it is now, and the verifier (backend/recs/verify.py) reports that its
digest no longer leads to the root.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session, col, select

from backend.core.errors import NotFound
from backend.meters.models import MeterReading
from backend.meters.runs import day_bounds
from backend.meters.signing import DOMAIN_NAME, DOMAIN_VERSION, SignedValues, reading_digest
from backend.recs.evidence import evidence_proofs
from backend.recs.schemas import CertificateEvidence, EvidenceReading
from indexer.models import Certificate, ChainEvent, ChainMeter, Device


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def issuance_log_index(session: Session, cert: Certificate) -> int | None:
    """The log index of the certificate's `CertificateIssued` in its transaction (a batch
    issues several certificates in one transaction)."""
    events = session.exec(
        select(ChainEvent).where(
            ChainEvent.tx_hash == cert.issued_tx, ChainEvent.event == "CertificateIssued"
        )
    ).all()
    for event in events:
        if int(event.args.get("certId", -1)) == cert.certificate_id:
            return event.log_index
    return None


def _attestation(reading: MeterReading, meter_key: str | None) -> str:
    if reading.signature is None:
        return "provider-posted"
    signer = (reading.signer or "").lower()
    return "meter-signature" if signer == (meter_key or "").lower() else "provider-signature"


def certificate_evidence(
    session: Session,
    *,
    chain_id: int,
    registry_address: str,
    certificate_id: int,
) -> CertificateEvidence:
    """The certificate, its issuance log and every verified reading behind it with its digest
    and Merkle proof."""
    cert = session.get(Certificate, certificate_id)
    if cert is None:
        raise NotFound(f"no certificate {certificate_id} (yet: it appears once indexed)")
    device = session.get(Device, cert.device_id)
    if device is None:  # the indexer mirrors a device before any certificate of it
        raise NotFound(f"no device {cert.device_id} for certificate {certificate_id}")
    meter = device.meter_id.lower()
    readings = session.exec(
        select(MeterReading)
        .where(
            MeterReading.meter_id == meter,
            col(MeterReading.export_wh).is_not(None),
            col(MeterReading.verified).is_(True),
            MeterReading.interval_start >= cert.period_start,
            MeterReading.interval_start < cert.period_end,
            *day_bounds(session, cert.period_start, cert.period_end),
        )
        .order_by(col(MeterReading.interval_start))
    ).all()
    on_chain = session.get(ChainMeter, meter)
    meter_key = on_chain.signing_key if on_chain else None
    registry = to_checksum_address(registry_address)
    values = [
        SignedValues(
            bytes.fromhex(meter[2:]),
            r.interval_start,
            r.interval_s,
            r.import_wh or 0,
            r.export_wh or 0,
        )
        for r in readings
    ]
    digests = [reading_digest(v, chain_id, registry) for v in values]
    proofs = evidence_proofs(digests) if digests else {}
    served = [
        EvidenceReading(
            reading=v.message(),
            attestation=_attestation(r, meter_key),
            signature=r.signature,
            signer=r.signer,
            digest=_hex(d),
            proof=[_hex(p) for p in proofs[d]],
        )
        for r, v, d in zip(readings, values, digests, strict=True)
    ]
    return CertificateEvidence(
        certificate_id=cert.certificate_id,
        device_id=cert.device_id,
        device_owner=device.owner.lower(),
        meter_id=meter,
        period_start=cert.period_start,
        period_end=cert.period_end,
        volume_wh=cert.volume_wh,
        evidence_root=cert.evidence_root,
        chain_id=chain_id,
        contract=registry.lower(),
        tx_hash=cert.issued_tx,
        block_number=cert.block_number,
        log_index=issuance_log_index(session, cert),
        domain={
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": registry,
        },
        readings=served,
    )
