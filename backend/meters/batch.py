"""A batch of readings validated column by column, stored as columns.

`validate_batch` checks the plain shape most readings have (meter known and owned, UTC
timestamp on a 15-minute boundary that has ended, `intervalSeconds` 900 or absent, unit Wh,
integer Wh within the meter's limits, a known quality, finite electrical values in range)
over whole columns: one list comprehension or numpy expression per rule instead of one
`validate_reading` call per reading. The column checks only ever *accept*: every reading they
do not pass goes through `validate_reading`, so rejection reasons and the rules at their
edges (kWh, float values, 900.0) stay exactly the per-reading ones.

The result is a `Columns`: one list per stored column, what the binary COPY writes
(backend/meters/copy_in.py) and what the set-based merge gets back as rows when a batch
touches stored intervals.

A batch holding one interval (meter and start) more than once: the last of them in message
order wins, the way a head-end's later message about an interval corrects an earlier one
(and an MQTT subscriber's batch is only an accident of timing). `Columns` keeps the rows of
one interval in message order, so the merge stores them one after another: the earlier
value is stored and then corrected (kept in the corrections audit trail), or the later one
is refused by the same rule as a separate message would be (a verified reading is corrected
only by a metering data provider). `superseded` names the earlier readings that lost.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from backend.meters.models import INTERVAL_SECONDS, MeterKind
from backend.meters.validation import (
    MAX_WH,
    QUALITIES,
    MeterLimits,
    ReadingRejected,
    normalise_meter_id,
    parse_timestamp,
    validate_reading,
)

STORED = (
    "idx",
    "meter_id",
    "interval_start",
    "import_wh",
    "export_wh",
    "voltage_v",
    "current_a",
    "power_factor",
    "quality",
    "verified",
    "signature",
    "signer",
)
_EMPTY: dict[str, Any] = {}
_ABSENT = object()


@dataclass(frozen=True)
class Rules:
    """What readings are checked against besides their meters (validate_reading's arguments)."""

    now: int
    skew_s: int
    max_import_wh: int
    sender_id: uuid.UUID | None = None


@dataclass(frozen=True)
class KeyArrays:
    """The column checks' numpy arrays of a `Columns`' key and Wh columns, row for row, so
    that cutting the rows into runs and encoding them for COPY (backend/meters/runs.py) need
    not turn the lists back into arrays. Valid only while the `Columns` holds the very lists
    they were made with, unchanged in length (`Columns.key_arrays`)."""

    meter_code: np.ndarray  # int64: one code per meter
    interval_start: np.ndarray  # int64
    import_wh: np.ndarray  # int64, -1 where absent
    export_wh: np.ndarray  # int64, -1 where absent
    lists: tuple[list[Any], ...]  # the lists they mirror: meter_id, interval_start, Wh


@dataclass
class Columns:
    """Validated readings, one list per column (`STORED`); `raw_signature` is the reading's
    `signature` field as sent, checked and recovered by the caller. The rows of one interval
    are in message order (`idx`)."""

    idx: list[int] = field(default_factory=list)
    meter_id: list[str] = field(default_factory=list)
    interval_start: list[int] = field(default_factory=list)
    import_wh: list[int | None] = field(default_factory=list)
    export_wh: list[int | None] = field(default_factory=list)
    voltage_v: list[float | None] = field(default_factory=list)
    current_a: list[float | None] = field(default_factory=list)
    power_factor: list[float | None] = field(default_factory=list)
    quality: list[str | None] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    signature: list[str | None] = field(default_factory=list)
    signer: list[str | None] = field(default_factory=list)
    raw_signature: list[object] = field(default_factory=list)
    arrays: KeyArrays | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.idx)

    def key_arrays(self) -> KeyArrays | None:
        """The column checks' arrays of these rows, if they still describe them."""
        arrays = self.arrays
        if arrays is None:
            return None
        now = (self.meter_id, self.interval_start, self.import_wh, self.export_wh)
        same = all(a is b for a, b in zip(arrays.lists, now, strict=True))
        return arrays if same and len(arrays.meter_code) == len(self.idx) else None

    def append(self, row: dict[str, Any], raw_signature: object) -> None:
        """One row as `validate_reading` returns it (plus `idx`)."""
        self.arrays = None
        for name in STORED[:9]:
            getattr(self, name).append(row[name])
        self.verified.append(False)
        self.signature.append(None)
        self.signer.append(None)
        self.raw_signature.append(raw_signature)

    def drop(self, positions: set[int]) -> None:
        """Remove the rows at `positions` (rejected after validation: a bad signature)."""
        if not positions:
            return
        self.arrays = None
        keep = [i for i in range(len(self.idx)) if i not in positions]
        for name in (*STORED, "raw_signature"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in keep])

    def reorder(self, positions: list[int]) -> None:
        """Put the rows in the order of `positions` (a permutation)."""
        self.arrays = None
        for name in (*STORED, "raw_signature"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in positions])

    def row(self, position: int) -> dict[str, Any]:
        return {name: getattr(self, name)[position] for name in STORED}

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (the set-based merge's staging input)."""
        return [dict(zip(STORED, values, strict=True)) for values in self.tuples()]

    def tuples(self) -> Iterator[tuple[Any, ...]]:
        return zip(*(getattr(self, name) for name in STORED), strict=True)


@dataclass(frozen=True)
class _MeterCodes:
    """Per-meter facts as arrays indexed by a small code (0: unknown meter)."""

    codes: np.ndarray  # per reading
    meter_id: np.ndarray  # object: code -> meter id
    export_limit: np.ndarray
    may_import: np.ndarray
    may_export: np.ndarray
    owned: np.ndarray


def _meter_codes(
    values: list[str | None], meters: dict[str, MeterLimits], sender_id: uuid.UUID | None
) -> _MeterCodes:
    code: dict[object, int] = {None: 0}
    known: list[MeterLimits] = []
    for value in set(values) - {None}:
        try:
            limits = meters.get(normalise_meter_id(value))
        except ReadingRejected:
            limits = None
        if limits is not None:
            known.append(limits)
        code[value] = 0 if limits is None else len(known)
    return _MeterCodes(
        codes=np.fromiter(map(code.__getitem__, values), np.int64, len(values)),
        meter_id=np.array([None] + [m.meter_id for m in known], dtype=object),
        export_limit=np.array(
            [-1] + [m.capacity_w * INTERVAL_SECONDS // 3600 for m in known], dtype=np.int64
        ),
        may_import=np.array([False] + [m.kind != MeterKind.EXPORT for m in known]),
        may_export=np.array([False] + [m.kind != MeterKind.IMPORT for m in known]),
        owned=np.array([False] + [sender_id is None or m.owner_id == sender_id for m in known]),
    )


def _starts(values: list[str | None], n: int) -> np.ndarray:
    """Interval starts (Unix seconds) of the timestamps; -1 where absent or not parsed."""
    parsed: dict[str | None, int] = {None: -1}
    for value in set(values) - {None}:
        try:
            parsed[value] = parse_timestamp(value)
        except ReadingRejected:
            parsed[value] = -1
    return np.fromiter(map(parsed.__getitem__, values), np.int64, n)


def _number_ok(value: object, low: float, high: float) -> bool:
    if type(value) is float:
        return math.isfinite(value) and low <= value <= high
    return type(value) is int and low <= value <= high


@dataclass
class _Raw:
    """The fields the column checks read, one list per field, and `shape`: per reading, whether
    everything else about it is plain (a JSON object, intervalSeconds 900, unit Wh, integer
    Wh in [0, MAX_WH] or absent, a known quality, electrical values in range)."""

    shape: np.ndarray
    meter: list[Any]  # str | None once built
    timestamp: list[Any]  # str | None once built
    import_wh: list[Any]  # int | None once built
    export_wh: list[Any]  # int | None once built
    quality: list[object]
    voltage: list[object]
    current: list[object]
    power_factor: list[object]
    signature: list[object]


def _raw_of_dicts(readings: list[Any]) -> _Raw:
    dicts = [r if type(r) is dict else _EMPTY for r in readings]
    raw = _Raw(
        np.array([type(r) is dict for r in readings], dtype=bool),
        *[[d.get(name) for d in dicts] for name in FIELDS],
    )
    raw.shape &= np.array(
        [
            type(i) is int and i == INTERVAL_SECONDS
            for i in (d.get("intervalSeconds", INTERVAL_SECONDS) for d in dicts)
        ],
        dtype=bool,
    )
    raw.shape &= np.array([d.get("unit", "Wh") == "Wh" for d in dicts], dtype=bool)
    raw.shape &= np.array(
        [q is None or (type(q) is str and q in QUALITIES) for q in raw.quality], dtype=bool
    )
    for values in (raw.import_wh, raw.export_wh):
        raw.shape &= np.array(
            [v is None or (type(v) is int and 0 <= v <= MAX_WH) for v in values], dtype=bool
        )
    for values, (low, high) in zip(
        (raw.voltage, raw.current, raw.power_factor), RANGES, strict=True
    ):
        raw.shape &= np.array([v is None or _number_ok(v, low, high) for v in values], dtype=bool)
    # what the column checks read is then of one type: str or None, plain Wh or None (a value
    # of another type makes its reading not plain, so validate_reading gives the reason)
    raw.meter = [v if type(v) is str else None for v in raw.meter]
    raw.timestamp = [v if type(v) is str else None for v in raw.timestamp]
    raw.import_wh = [v if type(v) is int and 0 <= v <= MAX_WH else None for v in raw.import_wh]
    raw.export_wh = [v if type(v) is int and 0 <= v <= MAX_WH else None for v in raw.export_wh]
    return raw


FIELDS = (
    "meterId",
    "timestamp",
    "importWh",
    "exportWh",
    "quality",
    "voltage",
    "current",
    "powerFactor",
    "signature",
)
RANGES = ((0, 1_000_000), (-1_000_000, 1_000_000), (-1, 1))  # voltage, current, powerFactor


def _wh(values: list[int | None]) -> np.ndarray:
    """Wh per reading, -1 where absent."""
    if values.count(None):
        return np.array([-1 if v is None else v for v in values], dtype=np.int64)
    return np.array(values, dtype=np.int64)


def _floats(values: list[object], at: list[int]) -> list[float | None]:
    if values.count(None) == len(values):  # the usual case: the field is not sent
        return [None] * len(at)
    return [None if (v := values[i]) is None else float(v) for i in at]  # type: ignore[arg-type]


def _picked(values: list[Any], at: list[int]) -> list[Any]:
    """`values` at the positions `at`; a list multiplication when every value is None or one
    text (a field not sent, one quality): equal strings are interchangeable."""
    if values and (values[0] is None or type(values[0]) is str):
        first = values[0]
        if values.count(first) == len(values):
            return [first] * len(at)
    return [values[i] for i in at]


def _optional_wh(values: np.ndarray) -> list[int | None]:
    """Wh per reading from `_wh`'s array (-1: absent) as ints or None."""
    if values.size and int(values.min()) >= 0:
        return values.tolist()
    return [None if v < 0 else v for v in values.tolist()]


def _checked(
    raw: _Raw,
    meters: dict[str, MeterLimits],
    rules: Rules,
    skip: set[int] | None,
) -> tuple[Columns, list[int]]:
    """The readings that pass every column check, as columns, and the indices of the others
    (for `validate_reading`)."""
    n = len(raw.meter)
    meter = _meter_codes(raw.meter, meters, rules.sender_id)
    codes = meter.codes
    start = _starts(raw.timestamp, n)
    import_wh = _wh(raw.import_wh)
    export_wh = _wh(raw.export_wh)
    plain = raw.shape.copy()
    plain &= (codes > 0) & meter.owned[codes]
    plain &= (start >= 0) & (start % INTERVAL_SECONDS == 0)
    plain &= start + INTERVAL_SECONDS <= rules.now + rules.skew_s
    plain &= (import_wh >= 0) | (export_wh >= 0)
    plain &= ~((import_wh > 0) & ~meter.may_import[codes])
    plain &= ~((export_wh > 0) & ~meter.may_export[codes])
    plain &= export_wh <= meter.export_limit[codes]
    plain &= import_wh <= rules.max_import_wh
    if skip:
        plain[list(skip)] = False
    fast = np.flatnonzero(plain)
    # in key order (meter, interval; stable, so repeats of an interval keep theirs): the
    # batch's index entries then fill one leaf page after another (PostgreSQL CPU per stored
    # row -10% on the 2-core machine)
    fast = fast[np.lexsort((start[fast], codes[fast]))]
    at: list[int] = fast.tolist()
    codes, start, import_wh, export_wh = codes[fast], start[fast], import_wh[fast], export_wh[fast]
    out = Columns(
        idx=list(at),
        meter_id=meter.meter_id[codes].tolist(),
        interval_start=start.tolist(),
        import_wh=_optional_wh(import_wh),
        export_wh=_optional_wh(export_wh),
        voltage_v=_floats(raw.voltage, at),
        current_a=_floats(raw.current, at),
        power_factor=_floats(raw.power_factor, at),
        quality=_picked(raw.quality, at),
        verified=[False] * len(at),
        signature=[None] * len(at),
        signer=[None] * len(at),
        raw_signature=_picked(raw.signature, at),
    )
    out.arrays = KeyArrays(
        codes,
        start,
        import_wh,
        export_wh,
        (out.meter_id, out.interval_start, out.import_wh, out.export_wh),
    )
    skipped = skip or set()
    return out, [i for i in np.flatnonzero(~plain).tolist() if i not in skipped]


def validate_batch(
    readings: list[Any],
    meters: dict[str, MeterLimits],
    rules: Rules,
    *,
    skip: set[int] | None = None,
) -> tuple[Columns, dict[int, str]]:
    """The storable columns of `readings` (parsed JSON) and the reason of each rejected one
    (by index); readings at `skip` (already rejected, unparsable) are left out."""
    out, others = _checked(
        _raw_of_dicts(readings),
        meters,
        rules,
        skip,
    )
    fast = len(out)
    rejected = _one_by_one(
        out,
        {i: readings[i] for i in others},
        meters,
        rules,
    )
    _in_message_order(out, fast)
    return out, rejected


def _one_by_one(
    out: Columns,
    readings: dict[int, Any],
    meters: dict[str, MeterLimits],
    rules: Rules,
) -> dict[int, str]:
    """`validate_reading` for the readings the columns did not pass (by index): valid ones are
    appended to `out`; the reasons of the others are returned."""
    rejected: dict[int, str] = {}
    for index, reading in readings.items():
        try:
            row = validate_reading(
                reading,
                meters,
                now=rules.now,
                skew_s=rules.skew_s,
                max_import_wh=rules.max_import_wh,
                sender_id=rules.sender_id,
            )
        except ReadingRejected as exc:
            rejected[index] = exc.reason
            continue
        row["idx"] = index
        out.append(row, reading.get("signature"))
    return rejected


def _in_message_order(out: Columns, fast: int) -> None:
    """After `_one_by_one` appended rows behind the `fast` ones the columns passed: sort the
    rows by interval, and the rows of one interval by message order (the last one wins)."""
    if fast == len(out):
        return
    out.reorder(
        sorted(range(len(out)), key=lambda p: (out.meter_id[p], out.interval_start[p], out.idx[p]))
    )


def superseded(rows: Columns, refused: Collection[int] = ()) -> dict[int, int]:
    """For each interval `rows` hold more than once: the index of every earlier reading of it
    -> the index of the last one, in message order, that was stored (not `refused`)."""
    if len(set(zip(rows.meter_id, rows.interval_start, strict=True))) == len(rows):
        return {}
    repeats: dict[tuple[str, int], list[int]] = defaultdict(list)
    for meter_id, start, idx in zip(rows.meter_id, rows.interval_start, rows.idx, strict=True):
        if idx not in refused:
            repeats[(meter_id, start)].append(idx)
    lost: dict[int, int] = {}
    for indices in repeats.values():
        if len(indices) > 1:
            indices.sort()
            lost.update(dict.fromkeys(indices[:-1], indices[-1]))
    return lost


# ------------------------------------------------------------- typed decoding of plain batches

WhValue = Annotated[int, msgspec.Meta(ge=0, le=MAX_WH)]


class PlainReading(msgspec.Struct, rename="camel", gc=False):
    """A reading of the plain shape, as msgspec decodes it straight from the request body
    (types and ranges checked in C; fields it does not name are ignored, as they are by
    `validate_reading`). A body with any reading of another shape does not decode.
    Not tracked by the garbage collector (`gc=False`: it holds only text and numbers, so it
    cannot be part of a cycle): a 10k batch no longer adds 10k objects to its passes."""

    meter_id: str
    timestamp: str
    interval_seconds: Literal[900] = 900
    unit: Literal["Wh"] = "Wh"
    import_wh: WhValue | None = None
    export_wh: WhValue | None = None
    quality: Literal["high", "medium", "low", "estimated"] | None = None
    voltage: Annotated[float, msgspec.Meta(ge=RANGES[0][0], le=RANGES[0][1])] | None = None
    current: Annotated[float, msgspec.Meta(ge=RANGES[1][0], le=RANGES[1][1])] | None = None
    power_factor: Annotated[float, msgspec.Meta(ge=RANGES[2][0], le=RANGES[2][1])] | None = None
    signature: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The reading as JSON would have given it (absent fields left out)."""
        return {
            key: value
            for key, value in zip(WIRE_NAMES, msgspec.structs.astuple(self), strict=True)
            if value is not None
        }


WIRE_NAMES = PlainReading.__struct_encode_fields__
_DECODE_PLAIN = msgspec.json.Decoder(list[PlainReading])


def decode_plain(body: bytes) -> list[PlainReading] | None:
    """The readings of a JSON array body in which every reading is plain; None otherwise
    (then the body goes the general way: orjson, `validate_batch`)."""
    try:
        return _DECODE_PLAIN.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def validate_plain(
    readings: Sequence[PlainReading],
    meters: dict[str, MeterLimits],
    rules: Rules,
) -> tuple[Columns, dict[int, str]]:
    """`validate_batch` for decoded plain readings: only the checks against meters and the
    clock are left to do."""
    raw = _Raw(
        np.ones(len(readings), dtype=bool),
        [r.meter_id for r in readings],
        [r.timestamp for r in readings],
        [r.import_wh for r in readings],
        [r.export_wh for r in readings],
        [r.quality for r in readings],
        [r.voltage for r in readings],
        [r.current for r in readings],
        [r.power_factor for r in readings],
        [r.signature for r in readings],
    )
    out, others = _checked(
        raw,
        meters,
        rules,
        None,
    )
    fast = len(out)
    rejected = _one_by_one(
        out,
        {i: readings[i].as_dict() for i in others},
        meters,
        rules,
    )
    _in_message_order(out, fast)
    return out, rejected
