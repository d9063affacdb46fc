"""Meters and energy data: register meters, ingest readings (single and bulk), read series."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from backend.accounts.models import Account, Role
from backend.api.deps import (
    AsyncMeterDataAccount,
    ChainDep,
    MeterDataAccount,
    Reader,
    ReadsDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from backend.api.fast_json import ModelJSON
from backend.api.links import links, meter_links
from backend.api.problem_docs import raises
from backend.core.async_db import Reads
from backend.core.errors import InvalidInput, NotFound
from backend.meters import approval, services
from backend.meters import series as meter_series
from backend.meters.errors import ReadingRejectedError
from backend.meters.models import Meter, MeterStatus
from backend.meters.schemas import (
    Aggregation,
    Direction,
    EnergySeries,
    IngestResult,
    MeterApproval,
    MeterCreate,
    MeterPublic,
    ReadingIn,
)

router = APIRouter(tags=["energy"])
MAX_SERIES_SECONDS = 93 * 86_400


def sender(account: Account) -> uuid.UUID | None:
    """Operators, metering data providers and admins ingest for any meter; everyone else only
    for their own."""
    if account.has_role(Role.OPERATOR) or account.has_role(Role.METER_DATA_PROVIDER):
        return None
    return account.id


def provider(account: Account) -> str | None:
    """The address vouching for the readings when `account` is a metering data provider."""
    return account.address if account.has_role(Role.METER_DATA_PROVIDER) else None


@router.post(
    "/meters",
    response_model=MeterPublic,
    status_code=201,
    responses=links(201, "The registered meter", **meter_links),
)
def register_meter(data: MeterCreate, session: SessionDep, account: MeterDataAccount) -> Meter:
    """Register a meter (status `pending`): a registrar approves its capacity and signing key
    before anything it signs is verified."""
    return services.register_meter(session, account, data)


@router.get("/meters", response_model=list[MeterPublic])
def list_meters(
    session: SessionDep, account: Reader, status: MeterStatus | None = None
) -> list[Meter]:
    """My meters; for a registrar every meter (`?status=pending`: the approval queue)."""
    return services.list_meters(session, account, status)


@router.get(
    "/meters/{meter}",
    response_model=MeterPublic,
    responses=raises(NotFound) | links(200, "The meter", **meter_links),
)
def get_meter(meter: str, session: SessionDep, account: Reader) -> Meter:
    """A meter, its approval status and signing key (its owner and registrars)."""
    if account.has_role(Role.REGISTRAR):
        return services.get_meter(session, meter)
    return services.owned_meter(session, account, meter)


@router.post(
    "/meters/{meter}/approval",
    response_model=MeterPublic,
    responses=raises(NotFound) | links(200, "The approved meter", **meter_links),
    dependencies=[require_role(Role.REGISTRAR)],
)
def approve_meter(
    meter: str,
    data: MeterApproval,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    account: MeterDataAccount,
) -> Meter:
    """Approve a meter (or re-approve: new capacity, key rotation) on chain (`approveMeter`)
    and here: readings signed with its key are verified from now on, export above the
    approved capacity is rejected. Answers once the transaction is mined."""
    return approval.approve(
        session,
        settings,
        chain,
        registrar=account,
        meter=services.get_meter(session, meter),
        data=data,
    )


@router.post(
    "/meters/{meter}/suspension",
    response_model=MeterPublic,
    responses=raises(NotFound) | links(200, "The suspended meter", **meter_links),
    dependencies=[require_role(Role.REGISTRAR)],
)
def suspend_meter(
    meter: str,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    account: MeterDataAccount,
) -> Meter:
    """Suspend an approved meter on chain (`suspendMeter`) and here: its signatures verify
    nothing until it is re-approved."""
    return approval.suspend(
        session, settings, chain, registrar=account, meter=services.get_meter(session, meter)
    )


@router.post("/energy/readings", response_model=IngestResult)
@router.post("/energy/consumption", response_model=IngestResult, include_in_schema=True)
def post_reading(
    reading: ReadingIn, session: SessionDep, settings: SettingsDep, account: MeterDataAccount
) -> IngestResult:
    """One WIA-ENE-014 reading. A rejected reading is a 422 problem carrying the reason."""
    result = services.ingest_readings(
        session,
        [reading.model_dump(exclude_unset=True)],
        source="rest",
        settings=settings,
        sender_id=sender(account),
        provider=provider(account),
    )
    if result.rejected:
        raise ReadingRejectedError(
            result.rejections[0].reason, rejections=[r.model_dump() for r in result.rejections]
        )
    return result


@router.post(
    "/energy/readings/bulk",
    response_model=IngestResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": ReadingIn.model_json_schema()}
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one reading object per line"}
                },
            },
        }
    },
)
async def post_readings_bulk(
    request: Request, session: SessionDep, settings: SettingsDep, account: MeterDataAccount
) -> IngestResult:
    """Many readings as a JSON array or NDJSON. Valid readings are stored even when others are
    rejected; each rejection names the reading's index and the reason."""
    body = await request.body()
    # off the event loop: parsing, validating and storing 10,000 readings takes tens of ms
    return await run_in_threadpool(
        services.ingest_body,
        session,
        body,
        request.headers.get("content-type", ""),
        source="rest",
        settings=settings,
        sender_id=sender(account),
        provider=provider(account),
    )


async def series(
    direction: Direction,
    reads: Reads,
    account: Account,
    meter_id: str,
    aggregation: Aggregation,
    start: datetime | None,
    end: datetime | None,
) -> Response:
    end_ts = int((end or datetime.now(UTC)).timestamp())
    start_ts = int(start.timestamp()) if start else end_ts - 86_400
    if not 0 < end_ts - start_ts <= MAX_SERIES_SECONDS:
        raise InvalidInput(
            f"start must be before end and the range at most {MAX_SERIES_SECONDS // 86_400} days"
        )
    query, params = meter_series.series_params(
        meter_id, direction=direction, start=start_ts, end=end_ts
    )
    rows = await reads.all(query, params)
    return ModelJSON(
        meter_series.series_of(
            rows, account, meter_id, direction=direction, aggregation=aggregation
        )
    )


@router.get("/energy/consumption", response_model=EnergySeries, responses=raises(NotFound))
async def get_consumption(
    reads: ReadsDep,
    account: AsyncMeterDataAccount,
    meter_id: str = Query(alias="meterId"),
    aggregation: Aggregation = "hourly",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    """Imported energy of a meter the caller owns (default: the last 24 h, hourly)."""
    return await series("consumption", reads, account, meter_id, aggregation, start, end)


@router.get("/energy/generation", response_model=EnergySeries, responses=raises(NotFound))
async def get_generation(
    reads: ReadsDep,
    account: AsyncMeterDataAccount,
    meter_id: str = Query(alias="meterId"),
    aggregation: Aggregation = "hourly",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    """Exported energy of a meter the caller owns (default: the last 24 h, hourly)."""
    return await series("generation", reads, account, meter_id, aggregation, start, end)
