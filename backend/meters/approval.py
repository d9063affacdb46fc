"""A registrar's approval or suspension of a meter: on chain first, then in the database.

Order and why: the database row (status, key, capacity) is what ingestion trusts to mark
readings verified, and the chain is what settlement, issuance and third parties check. So the
transaction goes first and the row changes (with its audit entry) only once it is mined: a
revert or an unreachable chain leaves the database as it was and answers the error. The one
gap left is a crash between the receipt and the commit; the chain calls are idempotent
(backend/meters/chain_registry.py), so the registrar's retry sends nothing and commits the
row. We chose this over "pending on chain + a reconciler" because it needs no new state, no
worker and no migration, and the database never claims an approval the chain has not granted
(a suspension is in the database at most one request later than on chain); the audit trail's
advisory lock is taken only after the chain wait, so no transaction holds it for a block time.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session

from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.core.config import Settings
from backend.meters import chain_registry, services
from backend.meters.errors import MeterNotApproved, MeterSigningKeyMissing
from backend.meters.models import Meter, MeterStatus
from backend.meters.schemas import MeterApproval


def approve(
    session: Session,
    settings: Settings,
    chain: Chain,
    *,
    registrar: Account,
    meter: Meter,
    data: MeterApproval,
) -> Meter:
    """`approveMeter` on chain with the capacity and key, then the row; committed."""
    key = data.signing_key or meter.signing_key
    if key is None:
        raise MeterSigningKeyMissing(
            f"meter {meter.meter_id} has no signing key: give signing_key", meter_id=meter.meter_id
        )
    chain_registry.send_approval(
        settings,
        chain,
        meter_id=meter.meter_id,
        capacity_w=data.capacity_w,
        signing_key=to_checksum_address(key),
    )
    services.approve_meter(session, registrar, meter, data)
    session.commit()
    session.refresh(meter)
    return meter


def suspend(
    session: Session, settings: Settings, chain: Chain, *, registrar: Account, meter: Meter
) -> Meter:
    """`suspendMeter` on chain, then the row; committed."""
    if meter.status != MeterStatus.APPROVED:
        raise MeterNotApproved(
            f"meter {meter.meter_id} is {meter.status}, not approved", meter_id=meter.meter_id
        )
    chain_registry.send_suspension(settings, chain, meter_id=meter.meter_id)
    services.suspend_meter(session, meter, by=registrar)
    session.commit()
    session.refresh(meter)
    return meter
