"""Enrol a VEN in one step (development CA): issue its client certificate, write the files
the VEN loads, record the VEN with the certificate's fingerprint. For `make run`'s simulated
VENs and operators' scripts; a VEN with a certificate of another CA uses `services.add_ven`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from backend.core.dev_ca import (
    CertificateAuthority,
    IssuedCertificate,
    ensure_ca,
    issue_client_certificate,
)
from backend.openadr.models import Ven
from backend.openadr.services import add_ven


@dataclass(frozen=True)
class VenCredentials:
    """What a VEN (openleadr's OpenADRClient) is started with."""

    ven_id: str
    ven_name: str
    cert_file: Path
    key_file: Path
    ca_file: Path  # the CA that also issued the VTN's server certificate
    fingerprint: str  # SHA-256 hex


def issue_ven(
    session: Session,
    *,
    tls_dir: Path,
    ven_name: str,
    account_id: uuid.UUID,
    meter_ids: Sequence[str] = (),
    ven_id: str | None = None,
) -> tuple[Ven, IssuedCertificate, CertificateAuthority]:
    """Issue a client certificate from the development CA in `tls_dir` for `ven_name` and
    record the VEN with its fingerprint (flushed, not committed). The key is not kept."""
    ca = ensure_ca(tls_dir)
    issued = issue_client_certificate(ca, ven_name)
    ven = add_ven(
        session,
        ven_id=ven_id or f"ven-{uuid.uuid4().hex[:12]}",
        ven_name=ven_name,
        account_id=account_id,
        cert_fingerprint=issued.fingerprint,
        meter_ids=meter_ids,
    )
    return ven, issued, ca


def enrol_ven(
    session: Session,
    *,
    tls_dir: Path,
    out_dir: Path,
    ven_name: str,
    account_id: uuid.UUID,
    meter_ids: Sequence[str] = (),
    ven_id: str | None = None,
) -> VenCredentials:
    """`issue_ven`, and write `<out_dir>/<ven_name>.pem` and `.key` (0600) for the VEN."""
    ven, issued, ca = issue_ven(
        session,
        tls_dir=tls_dir,
        ven_name=ven_name,
        account_id=account_id,
        meter_ids=meter_ids,
        ven_id=ven_id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = out_dir / f"{ven_name}.pem", out_dir / f"{ven_name}.key"
    cert_file.write_bytes(issued.cert_pem())
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(issued.key_pem())
    key_file.chmod(0o600)  # an older file keeps its mode through O_CREAT
    return VenCredentials(
        ven.ven_id, ven_name, cert_file, key_file, ca.cert_file, issued.fingerprint
    )
