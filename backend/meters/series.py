"""A meter's energy series (`GET /v1/energy/consumption` and `/generation`): the owned meter
and its readings in one statement for the async read path (`series_params`, `series_of`), and
the per-bucket sums both paths share (`points_of`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, String, and_, bindparam
from sqlalchemy import select as select_core

from backend.accounts.models import Account
from backend.core.async_db import Query
from backend.core.db import table_of
from backend.meters.errors import MeterAccessDenied, MeterNotFound
from backend.meters.models import INTERVAL_SECONDS, Meter, MeterReading
from backend.meters.schemas import Aggregation, Direction, EnergyPoint, EnergySeries
from backend.meters.validation import ReadingRejected, normalise_meter_id


def points_of(rows: Iterable[Sequence[Any]], aggregation: Aggregation) -> list[EnergyPoint]:
    """Sums per 15 minutes or hour of (interval start, Wh, verified) rows, oldest first."""
    bucket = 3600 if aggregation == "hourly" else INTERVAL_SECONDS
    sums: dict[int, list[int]] = {}
    for interval_start, wh, verified in rows:
        key = interval_start // bucket * bucket
        total = sums.setdefault(key, [0, 0, 0, 0])
        total[0] += wh or 0  # never NULL: filtered out by the queries
        total[1] += 1
        if verified:
            total[2] += wh or 0
            total[3] += 1
    return [
        EnergyPoint(
            start=datetime.fromtimestamp(k, UTC),
            end=datetime.fromtimestamp(k + bucket, UTC),
            wh=wh,
            intervals=n,
            verified_wh=verified_wh,
            verified_intervals=verified_n,
        )
        for k, (wh, n, verified_wh, verified_n) in sorted(sums.items())
    ]


@lru_cache(maxsize=4)
def series_query(*, by_name: bool, direction: Direction) -> Query:
    """The meter named by `meter` (its id, or its name when `by_name`) with its owner, LEFT
    JOINed to its readings in [`start`, `end`) that have a value for `direction`: one row with
    NULL readings for a meter without any, no row for no meter."""
    meters, readings = table_of(Meter), table_of(MeterReading)
    wh = readings.c.import_wh if direction == "consumption" else readings.c.export_wh
    key = meters.c.name if by_name else meters.c.meter_id
    return Query(
        select_core(
            meters.c.meter_id,
            meters.c.owner_id,
            readings.c.interval_start,
            wh.label("wh"),
            readings.c.verified,
        )
        .select_from(meters)
        .outerjoin(
            readings,
            and_(
                readings.c.meter_id == meters.c.meter_id,
                readings.c.interval_start >= bindparam("start", type_=BigInteger),
                readings.c.interval_start < bindparam("end", type_=BigInteger),
                wh.is_not(None),
            ),
        )
        .where(key == bindparam("meter", type_=String))
        .order_by(readings.c.interval_start)
    )


def series_params(
    meter: str, *, direction: Direction, start: int, end: int
) -> tuple[Query, dict[str, Any]]:
    """The query and parameters of `meter`'s series (MeterNotFound for a malformed name)."""
    try:
        key = normalise_meter_id(meter)
    except ReadingRejected as exc:
        raise MeterNotFound(exc.reason) from None
    query = series_query(by_name=not key.startswith("0x"), direction=direction)
    return query, {"meter": key, "start": start, "end": end}


def series_of(
    rows: Sequence[Any],
    account: Account,
    meter: str,
    *,
    direction: Direction,
    aggregation: Aggregation,
) -> EnergySeries:
    """`services.energy_series`'s answer from the rows of `series_params`: MeterNotFound for
    no meter, MeterAccessDenied for another account's."""
    if not rows:
        raise MeterNotFound(f"no meter {meter}", meter_id=meter)
    meter_id, owner_id = rows[0].meter_id, rows[0].owner_id
    if owner_id != account.id:
        raise MeterAccessDenied(f"meter {meter_id} belongs to another account", meter_id=meter_id)
    readings = [(r.interval_start, r.wh, r.verified) for r in rows if r.interval_start is not None]
    return EnergySeries(
        meterId=meter_id,
        direction=direction,
        aggregation=aggregation,
        points=points_of(readings, aggregation),
    )
