"""VEN management for operators (the API's `/v1/openadr/vens`): enrol a VEN (certificate from
the development CA, or a fingerprint of another CA's), list, revoke."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.meters.models import Meter
from backend.openadr.enrolment import issue_ven
from backend.openadr.errors import VenCertificateUnavailable, VenInvalid
from backend.openadr.models import Ven, VenMeter
from backend.openadr.registry import list_vens
from backend.openadr.schemas import VenCreate, VenEnrolled, VenPublic
from backend.openadr.services import add_ven


def dev_ca_dir(settings: Settings) -> Path:
    return settings.data_dir / "tls"


def ven_view(session: Session, ven: Ven) -> VenPublic:
    meters = session.exec(select(VenMeter.meter_id).where(VenMeter.ven_id == ven.ven_id)).all()
    return VenPublic(
        ven_id=ven.ven_id,
        ven_name=ven.ven_name,
        account_id=ven.account_id,
        meter_ids=sorted(meters),
        cert_fingerprint=ven.cert_fingerprint,
        active=ven.active,
        registered=ven.registration_id is not None,
        registered_at=ven.registered_at,
        last_contact_at=ven.last_contact_at,
        last_poll_at=ven.last_poll_at,
        revoked_at=ven.revoked_at,
        status=ven.status,
        status_at=ven.status_at,
        created_at=ven.created_at,
    )


def views(session: Session, *, include_revoked: bool) -> list[VenPublic]:
    return [ven_view(session, v) for v in list_vens(session, include_revoked=include_revoked)]


def enrol(session: Session, settings: Settings, data: VenCreate) -> VenEnrolled:
    """Record the VEN (flushed); with no fingerprint given, issue its certificate from the
    development CA (refused when the stack runs on a real CA, GRIDLEDGER_TLS=on)."""
    account = session.get(Account, data.account_id)
    if account is None or not account.active:
        raise VenInvalid(f"no active account {data.account_id}")
    known = set(
        session.exec(select(Meter.meter_id).where(col(Meter.meter_id).in_(data.meter_ids))).all()
    )
    if missing := [m for m in data.meter_ids if m not in known]:
        raise VenInvalid(f"unknown meters: {', '.join(missing)}")
    if data.cert_fingerprint is not None:
        ven = add_ven(
            session,
            ven_id=data.ven_id or f"ven-{data.ven_name}"[:64],
            ven_name=data.ven_name,
            account_id=data.account_id,
            cert_fingerprint=data.cert_fingerprint,
            meter_ids=data.meter_ids,
        )
        return VenEnrolled(**ven_view(session, ven).model_dump())
    if settings.tls == "on":
        raise VenCertificateUnavailable(
            "the stack uses a real CA (GRIDLEDGER_TLS=on): give the certificate's fingerprint"
        )
    ven, issued, ca = issue_ven(
        session,
        tls_dir=dev_ca_dir(settings),
        ven_name=data.ven_name,
        account_id=data.account_id,
        meter_ids=data.meter_ids,
        ven_id=data.ven_id,
    )
    return VenEnrolled(
        **ven_view(session, ven).model_dump(),
        certificate_pem=issued.cert_pem().decode(),
        private_key_pem=issued.key_pem().decode(),
        ca_pem=ca.cert_file.read_text(),
    )
