"""RECRegistry: meters, devices, certificates, holdings (ERC-1155 movements), claims,
revocations."""

from __future__ import annotations

from indexer.handlers import ZERO_ADDRESS, Log, on
from indexer.mirror import MirrorState, Record, TableKey, new_row, record_type
from indexer.models import (
    Certificate,
    CertificateTransfer,
    ChainMeter,
    Claim,
    Device,
    DeviceStatus,
    Holding,
    MeterStatus,
)

CertificateRecord = record_type(Certificate)
HoldingRecord = record_type(Holding)
TransferRecord = record_type(CertificateTransfer)
ClaimRecord = record_type(Claim)

# RECRegistry's DeviceStatus enum, by its on-chain ordinal
DEVICE_STATUS = {0: DeviceStatus.PENDING, 1: DeviceStatus.APPROVED, 2: DeviceStatus.SUSPENDED}


def text32(value: str) -> str:
    """bytes32 short strings (technology, grid area) as text, trailing zeros dropped."""
    return bytes.fromhex(value[2:]).rstrip(b"\0").decode("utf-8", errors="replace")


@on("RECRegistry", "MeterApproved", touches=lambda log: [("chain_meters", (log.args["meterId"],))])
def meter_approved(state: MirrorState, log: Log) -> None:
    a = log.args
    state.put(
        "chain_meters",
        new_row(
            ChainMeter,
            meter_id=a["meterId"],
            chain_id=state.chain_id,
            owner=a["owner"],
            status=MeterStatus.APPROVED,
            capacity_w=a["capacityW"],
            signing_key=a["signingKey"],
            block_number=log.block_number,
        ),
    )


@on("RECRegistry", "MeterSuspended", touches=lambda log: [("chain_meters", (log.args["meterId"],))])
def meter_suspended(state: MirrorState, log: Log) -> None:
    meter = state.copy_of("chain_meters", log.args["meterId"])
    meter.update(status=MeterStatus.SUSPENDED, block_number=log.block_number)
    state.put("chain_meters", meter)


@on("RECRegistry", "DeviceRegistered")
def device_registered(state: MirrorState, log: Log) -> None:
    a = log.args
    state.insert(
        "devices",
        new_row(
            Device,
            device_id=a["deviceId"],
            chain_id=state.chain_id,
            owner=a["owner"],
            technology=text32(a["technology"]),
            capacity_w=a["capacityW"],
            grid_area=text32(a["gridArea"]),
            commissioned_at=a["commissionedAt"],
            meter_id=a["meterId"],
            status=DeviceStatus.PENDING,
            block_number=log.block_number,
        ),
    )


@on(
    "RECRegistry", "DeviceStatusChanged", touches=lambda log: [("devices", (log.args["deviceId"],))]
)
def device_status_changed(state: MirrorState, log: Log) -> None:
    device = state.copy_of("devices", log.args["deviceId"])
    device.update(status=DEVICE_STATUS[log.args["newStatus"]], block_number=log.block_number)
    state.put("devices", device)


@on("RECRegistry", "CertificateIssued")
def certificate_issued(state: MirrorState, log: Log) -> None:
    a = log.args
    state.insert(
        "certificates",
        CertificateRecord(
            certificate_id=a["certId"],
            chain_id=state.chain_id,
            device_id=a["deviceId"],
            period_start=a["periodStart"],
            period_end=a["periodEnd"],
            volume_wh=a["volumeWh"],
            claimed_wh=0,
            supply_wh=a["volumeWh"],
            issued_to=a["to"],
            issued_at=log.block_timestamp,
            issued_tx=log.tx_hash,
            evidence_root=a["evidenceRoot"],
            revoked=False,
            revoke_reason=None,
            block_number=log.block_number,
        ),
    )
    state.emit(
        log.block_number,
        "certificate.issued",
        {"tx_hash": log.tx_hash, "certificate_ids": [a["certId"]]},
        collect="certificate_ids",
    )


def _movements(log: Log) -> list[tuple[int, int]]:
    if log.event == "TransferSingle":
        return [(log.args["id"], log.args["value"])]
    return list(zip(log.args["ids"], log.args["values"], strict=True))


def _holding_keys(log: Log) -> list[TableKey]:
    # A mint creates a new certificate (the registry mints only at issuance), so the
    # recipient cannot hold it yet: nothing to load for the `to` side of a mint.
    accounts = [log.args["from"]] if log.args["from"] != ZERO_ADDRESS else []
    if log.args["from"] != ZERO_ADDRESS and log.args["to"] != ZERO_ADDRESS:
        accounts.append(log.args["to"])
    return [("holdings", (cert, account)) for cert, _ in _movements(log) for account in accounts]


def _holding(log: Log, *, certificate_id: int, account: str, balance_wh: int) -> Record:
    return HoldingRecord(
        certificate_id=certificate_id,
        account=account,
        balance_wh=balance_wh,
        block_number=log.block_number,
    )


def _add_holding(
    state: MirrorState, log: Log, *, certificate_id: int, account: str, delta: int
) -> None:
    row = state.get("holdings", certificate_id, account)
    balance = (row["balance_wh"] if row else 0) + delta
    state.put(
        "holdings",
        _holding(log, certificate_id=certificate_id, account=account, balance_wh=balance),
    )


def _transfer(state: MirrorState, log: Log) -> None:
    """Holdings follow every movement; the transfer history skips mints (the certificate
    row already records its issuance to `issued_to`)."""
    a = log.args
    for position, (cert, value) in enumerate(_movements(log)):
        if a["from"] == ZERO_ADDRESS:
            holding = _holding(log, certificate_id=cert, account=a["to"], balance_wh=value)
            state.insert("holdings", holding)
            continue
        _add_holding(state, log, certificate_id=cert, account=a["from"], delta=-value)
        if a["to"] != ZERO_ADDRESS:
            _add_holding(state, log, certificate_id=cert, account=a["to"], delta=value)
        state.insert(
            "certificate_transfers",
            TransferRecord(
                id=f"{log.uid}:{position}",
                chain_id=state.chain_id,
                certificate_id=cert,
                operator=a["operator"],
                from_account=a["from"],
                to_account=a["to"],
                amount_wh=value,
                tx_hash=log.tx_hash,
                block_number=log.block_number,
            ),
        )


on("RECRegistry", "TransferSingle", touches=_holding_keys)(_transfer)
on("RECRegistry", "TransferBatch", touches=_holding_keys)(_transfer)


@on(
    "RECRegistry",
    "CertificateClaimed",
    touches=lambda log: [("certificates", (log.args["certId"],))],
)
def certificate_claimed(state: MirrorState, log: Log) -> None:
    a = log.args
    certificate = state.copy_of("certificates", a["certId"])
    certificate["claimed_wh"] += a["amountWh"]
    certificate["supply_wh"] = certificate["volume_wh"] - certificate["claimed_wh"]
    certificate["block_number"] = log.block_number
    state.put("certificates", certificate)
    state.insert(
        "claims",
        ClaimRecord(
            claim_id=a["claimId"],
            chain_id=state.chain_id,
            certificate_id=a["certId"],
            holder=a["holder"],
            amount_wh=a["amountWh"],
            beneficiary=a["beneficiary"],
            purpose=a["purpose"],
            consumption_start=a["consumptionStart"],
            consumption_end=a["consumptionEnd"],
            location=a["location"],
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            block_number=log.block_number,
        ),
    )
    state.emit(
        log.block_number, "certificate.claimed", {"claim_id": a["claimId"], "tx_hash": log.tx_hash}
    )


@on(
    "RECRegistry",
    "CertificateRevoked",
    touches=lambda log: [("certificates", (log.args["certId"],))],
)
def certificate_revoked(state: MirrorState, log: Log) -> None:
    certificate = state.copy_of("certificates", log.args["certId"])
    certificate.update(
        revoked=True, revoke_reason=log.args["reason"], block_number=log.block_number
    )
    state.put("certificates", certificate)
