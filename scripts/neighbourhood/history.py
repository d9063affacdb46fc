"""A new neighbourhood's past of meter readings, so the VPP's demand forecast (`vppDemand`,
which its daily plan serves) has the week of history it needs from the first simulated day on,
not from the eighth.

Backfilled: the meters behind the VPP's members, what `vppDemand` reads (the PV homes', their
storage meters, the community battery's), over the same eight days as the VPP's telemetry
backfill (scripts/neighbourhood/vpp.py). Each past reading is what the simulation measures
live: a home's PV less its load (the silent meter silent), storage idle, the community battery
charging 10-15 h and discharging 17-22 h (its telemetry backfill reports that discharge).
Every reading is signed with the meter's own key and posted through the head-end's bulk
ingest like a live one: the API verifies each signature, so nothing self-reported counts.
The past pays nothing: no trade delivers before the start, and the REC devices are
commissioned at the start's hour (`Neighbourhood._register_device`), where the backfill ends,
so no certificate is issued for a backfilled hour. Once: meters that already hold readings
(a resumed neighbourhood) are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, select

from backend.core.db import get_engine
from backend.meters.models import MeterReading
from backend.meters.signing import SignedValues, sign_reading
from scripts.neighbourhood.profiles import SLOT_SECONDS

if TYPE_CHECKING:
    from scripts.neighbourhood.simulator import Neighbourhood

log = logging.getLogger("gridledger.neighbourhood")

HOUR = 3600
DAY = 86_400
BACKFILL_S = 8 * DAY  # as the VPP's telemetry: the forecast needs 168 h before its start
BATTERY_WH = 1_500  # per slot (6 kWh an hour) the community battery moved before the start

Wh = Callable[[int], tuple[int, int] | None]  # slot start → (import Wh, export Wh); None: silent
Sign = Callable[[str, LocalAccount, int, int, int], dict[str, Any]]


@dataclass(frozen=True)
class PastMeter:
    meter_id: str
    key: LocalAccount  # the meter's own signing key
    wh: Wh


def community_battery_wh(slot: int) -> tuple[int, int]:
    """The community battery's (import, export) Wh in a slot before the start: it charges in
    the cheap midday hours and sells in the evening, as many Wh a day each way."""
    hour = (slot % DAY) // HOUR
    return (BATTERY_WH if 10 <= hour <= 14 else 0, BATTERY_WH if 17 <= hour <= 21 else 0)


def idle(_slot: int) -> tuple[int, int]:
    return 0, 0


def signed_reading(
    meter_id: str,
    key: LocalAccount,
    slot: int,
    import_wh: int,
    export_wh: int,
    *,
    chain_id: int,
    registry: str,
) -> dict[str, Any]:
    """One meter's reading of a slot (the API's JSON), signed with the meter's key (EIP-712
    `MeterReading` in the registry's domain)."""
    values = SignedValues(bytes.fromhex(meter_id[2:]), slot, SLOT_SECONDS, import_wh, export_wh)
    signature = sign_reading(values, key.key, chain_id, registry)
    return {
        "meterId": meter_id,
        "timestamp": datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "intervalSeconds": SLOT_SECONDS,
        "importWh": import_wh,
        "exportWh": export_wh,
        "unit": "Wh",
        "quality": "high",
        "signature": "0x" + signature.hex(),
    }


def signed_days(
    meters: Sequence[PastMeter], start: int, end: int, sign: Sign
) -> Iterator[list[dict[str, Any]]]:
    """The meters' signed readings of every slot in [start, end), one day's per list."""
    for day in range(start, end, DAY):
        batch = []
        for slot in range(day, min(day + DAY, end), SLOT_SECONDS):
            for meter in meters:
                wh = meter.wh(slot)
                if wh is not None:
                    batch.append(sign(meter.meter_id, meter.key, slot, *wh))
        yield batch


def member_meters(town: Neighbourhood) -> list[PastMeter]:
    """The meters behind the VPP's members, with what each measured before the start."""
    found: dict[str, PastMeter] = {}
    for member in town.vpp.members:
        agent = member.agent
        if agent.meter_id is not None and agent.meter_id not in found:
            found[agent.meter_id] = PastMeter(
                agent.meter_id, town.meter_key(agent), town.past_wh(agent)
            )
        storage = agent.storage_meter_id
        if storage is not None and storage not in found:
            found[storage] = PastMeter(storage, town.storage_meter_key(agent), idle)
    return list(found.values())


def backfill_readings(town: Neighbourhood) -> int:
    """Post the members' meters' past readings unless they hold readings already; the number
    the API verified."""
    now = town.clock.now() // HOUR * HOUR  # where the REC devices' commissioning begins
    meters = member_meters(town)
    with Session(get_engine()) as session:
        seen = session.exec(
            select(MeterReading.meter_id)
            .where(col(MeterReading.meter_id).in_([m.meter_id.lower() for m in meters]))
            .limit(1)
        ).first()
    if seen is not None or not meters:
        return 0
    verified = 0
    for batch in signed_days(meters, now - BACKFILL_S, now, town.signed):
        result = town.operator.request("POST", "/v1/energy/readings/bulk", json=batch)
        verified += result["verified"]
        if result["rejected"]:
            log.warning(
                "backfill: %s readings rejected: %s", result["rejected"], result["rejections"][:3]
            )
    log.info("backfill: %d past readings of %d VPP member meters verified", verified, len(meters))
    return verified
