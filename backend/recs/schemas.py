"""Request and response bodies of the REC API (integers: `backend.core.json_ints`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.core.json_ints import MAX_SAFE_INTEGER, U63, AmountStr, SafeInt, Uint64Str
from backend.core.text import Bytes32Text, FreeText

ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class DeviceCreate(BaseModel):
    technology: str = Field(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$"
    )  # e.g. SOLAR_PV
    capacity_w: AmountStr = Field(ge=1, le=U63)
    grid_area: str = Field(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$"
    )  # e.g. DE-50HZ
    commissioned_at: SafeInt = Field(default=0, ge=0, le=MAX_SAFE_INTEGER)
    meter_id: str | None = Field(
        default=None, pattern=r"^0x[0-9a-fA-F]{64}$"
    )  # default: meter:<address>


class DevicePublic(BaseModel):
    device_id: int
    owner: str
    technology: str
    capacity_w: AmountStr  # uint64 on chain, set by whoever registers the device
    grid_area: str
    commissioned_at: Uint64Str
    meter_id: str
    status: str


class TxAccepted(BaseModel):
    """202 body of a chain write; state is final when the indexer mirrors `tx_hash`."""

    id: str
    status: str
    tx_hash: str
    block_number: int
    poll: str


class CertificatePublic(BaseModel):
    certificate_id: int
    device_id: int
    technology: str
    grid_area: str
    period_start: int
    period_end: int
    volume_wh: AmountStr
    claimed_wh: AmountStr
    supply_wh: AmountStr
    issued_to: str
    issued_at: int
    revoked: bool


class HistoryEntry(BaseModel):
    kind: str  # issuance | transfer | claim
    tx_hash: str
    block_number: int
    from_account: str | None = None
    to_account: str | None = None
    amount_wh: AmountStr
    beneficiary: str | None = None
    purpose: str | None = None


class CertificateDetail(CertificatePublic):
    holders: dict[str, AmountStr]
    history: list[HistoryEntry]


class TransferRequest(BaseModel):
    to: str = Field(pattern=ADDRESS)
    amount_wh: AmountStr = Field(ge=1, le=U63)


class ClaimRequest(BaseModel):
    amount_wh: AmountStr = Field(ge=1, le=U63)
    beneficiary: FreeText = Field(min_length=1, max_length=200)
    purpose: FreeText = Field(default="", max_length=200)
    consumption_start: SafeInt = Field(ge=0, le=MAX_SAFE_INTEGER)
    consumption_end: SafeInt = Field(ge=0, le=MAX_SAFE_INTEGER)
    location: Bytes32Text = Field(
        default="", max_length=32, description="at most 32 bytes of UTF-8"
    )


class ClaimProof(BaseModel):
    """Everything a third party needs to check the claim against the chain: fetch the
    receipt of `tx_hash`, find the CertificateClaimed log at `log_index` emitted by `contract`."""

    claim_id: int
    certificate_id: int
    amount_wh: AmountStr
    holder: str
    beneficiary: str
    purpose: str
    consumption_start: int
    consumption_end: int
    chain_id: int
    contract: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str | None
    event_signature: str


class EvidenceReading(BaseModel):
    """One verified reading behind a certificate. `reading` is the EIP-712 `MeterReading`
    message exactly as signed (uint64 values as decimal strings); `digest` its EIP-712 digest,
    the Merkle leaf; `proof` the sibling hashes from the leaf to the certificate's
    `evidence_root` (sorted pairs, OpenZeppelin `MerkleProof`). `signature` is the meter's (or
    a metering data provider's) 65-byte signature; a reading a provider posted unsigned has
    none and `signer` is the provider's address (`attestation` says which)."""

    reading: dict[str, str]
    attestation: str  # meter-signature | provider-signature | provider-posted
    signature: str | None
    signer: str | None
    digest: str
    proof: list[str]


class CertificateEvidence(BaseModel):
    """Everything a third party needs to check a certificate down to the meter: the issuance
    log (`tx_hash`, `log_index` in `block_number`, emitted by `contract`), the readings with
    their signatures and Merkle proofs, and the EIP-712 domain they were signed in
    (`gridledger recs verify` checks all of it against the chain)."""

    certificate_id: int
    device_id: int
    device_owner: str
    meter_id: str
    period_start: int
    period_end: int
    volume_wh: AmountStr
    evidence_root: str | None
    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    log_index: int | None
    domain: dict[str, str | int]
    readings: list[EvidenceReading]
