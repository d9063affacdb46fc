"""`/v1/recs/...`: devices, certificates (list/filter/get with history), transfer, claim, proof."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from backend.accounts.models import Role, Scope
from backend.api.deps import (
    CertificateHolder,
    ChainDep,
    Reader,
    SessionDep,
    SettingsDep,
    require_role,
    require_scope,
)
from backend.api.problem_docs import raises
from backend.core.json_ints import MAX_SAFE_INTEGER
from backend.market.schemas import Page
from backend.recs import services
from backend.recs.certificate_evidence import certificate_evidence
from backend.recs.schemas import (
    CertificateDetail,
    CertificateEvidence,
    CertificatePublic,
    ClaimProof,
    ClaimRequest,
    DeviceCreate,
    DevicePublic,
    TransferRequest,
    TxAccepted,
)
from backend.resources.errors import StorageBehindCertifiedMeter
from indexer.models import DeviceStatus

router = APIRouter(prefix="/recs", tags=["recs"])

DeviceId = Annotated[int, Path(ge=1, le=2**32 - 1)]
CertificateId = Annotated[int, Path(ge=1, le=MAX_SAFE_INTEGER)]
Cursor = Annotated[str | None, Query(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Address = Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")]
Text32 = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
Time = Annotated[int | None, Query(ge=0, le=MAX_SAFE_INTEGER)]


@router.post(
    "/devices",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TxAccepted,
    responses=raises(StorageBehindCertifiedMeter),
)
def register_device(
    body: DeviceCreate,
    account: CertificateHolder,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
) -> TxAccepted:
    """Registers a device from the caller's custodial key; a registrar approves it. Refused
    (409) on a meter with an active battery or EV charger behind it."""
    return services.register_device(session, settings, chain, account, body)


@router.get("/devices", response_model=Page[DevicePublic])
def devices(
    session: SessionDep,
    _: Reader,
    owner: Address = None,
    status_: Annotated[DeviceStatus | None, Query(alias="status")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[DevicePublic]:
    items, next_cursor = services.list_devices(
        session, owner=owner, status=status_, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/devices/{device_id}", response_model=DevicePublic)
def device(device_id: DeviceId, session: SessionDep, _: Reader) -> DevicePublic:
    return services.get_device(session, device_id)


@router.post(
    "/devices/{device_id}/approve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TxAccepted,
    dependencies=[require_role(Role.REGISTRAR), require_scope(Scope.CERTIFICATES)],
)
def approve_device(device_id: DeviceId, settings: SettingsDep, chain: ChainDep) -> TxAccepted:
    return services.set_device_status(settings, chain, device_id, approve=True)


@router.post(
    "/devices/{device_id}/suspend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TxAccepted,
    dependencies=[require_role(Role.REGISTRAR), require_scope(Scope.CERTIFICATES)],
)
def suspend_device(device_id: DeviceId, settings: SettingsDep, chain: ChainDep) -> TxAccepted:
    return services.set_device_status(settings, chain, device_id, approve=False)


@router.get("/certificates", response_model=Page[CertificatePublic])
def certificates(
    session: SessionDep,
    _: Reader,
    technology: Text32 = None,
    grid_area: Text32 = None,
    period_from: Time = None,
    period_to: Time = None,
    holder: Address = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[CertificatePublic]:
    items, next_cursor = services.list_certificates(
        session,
        technology=technology,
        grid_area=grid_area,
        period_from=period_from,
        period_to=period_to,
        holder=holder,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/certificates/{certificate_id}", response_model=CertificateDetail)
def certificate(certificate_id: CertificateId, session: SessionDep, _: Reader) -> CertificateDetail:
    """One certificate with its holders and full history (issuance, transfers, claims)."""
    return services.get_certificate(session, certificate_id)


@router.get("/certificates/{certificate_id}/evidence", response_model=CertificateEvidence)
def evidence(
    certificate_id: CertificateId, session: SessionDep, chain: ChainDep
) -> CertificateEvidence:
    """Public: a certificate's issuance log and the signed readings behind it, each with its
    EIP-712 digest and Merkle proof to the certificate's evidence root
    (`gridledger recs verify` checks them against the chain)."""
    return certificate_evidence(
        session,
        chain_id=chain.chain_id,
        registry_address=chain.registry.address,
        certificate_id=certificate_id,
    )


@router.post(
    "/certificates/{certificate_id}/transfer",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TxAccepted,
)
def transfer(
    certificate_id: CertificateId,
    body: TransferRequest,
    account: CertificateHolder,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
) -> TxAccepted:
    return services.transfer(
        session,
        settings,
        chain,
        account,
        certificate_id=certificate_id,
        to=body.to,
        amount_wh=body.amount_wh,
    )


@router.post(
    "/certificates/{certificate_id}/claim",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TxAccepted,
)
def claim(
    certificate_id: CertificateId,
    body: ClaimRequest,
    account: CertificateHolder,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
) -> TxAccepted:
    """Retire Wh of the certificate for a beneficiary and purpose; poll the claim's proof."""
    return services.claim(session, settings, chain, account, certificate_id, body)


@router.get("/claims/{claim_id}/proof", response_model=ClaimProof)
def claim_proof(
    claim_id: Annotated[int, Path(ge=1, le=MAX_SAFE_INTEGER)], session: SessionDep, chain: ChainDep
) -> ClaimProof:
    """Public: certificate, Wh, beneficiary, tx hash and block of a claim, to verify on chain."""
    return services.claim_proof(
        session, chain_id=chain.chain_id, registry_address=chain.registry.address, claim_id=claim_id
    )
