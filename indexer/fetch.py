"""The backfill's fetch stage: one range of final blocks from the node, decoded, as the
`Batch` the writer stores in one transaction.

It runs apart from the writer: on a thread (`pipeline.Prefetcher`) or in a process of its own
(`fetch_process.FetchProcess`); it touches no database. Its `range` adapts toward
`target_logs` logs per `eth_getLogs` and halves when the provider refuses one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import starmap
from typing import Any

from indexer.bulk import BinaryCopy, dumps_json
from indexer.decoder import LogDecoder
from indexer.handlers import Log
from indexer.rpc import JsonObject, RangeTooLarge, RpcClient

log = logging.getLogger("gridledger.indexer")

# `chain_events` columns in the order of `event_records`, and their binary COPY types
EVENT_COLUMNS = [
    "chain_id",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
    "contract",
    "address",
    "event",
    "args",
]
EVENT_BINARY_TYPES = ["int8", "int8", "text", "text", "int8", "text", "text", "text", "text"]

EventRows = list[tuple[Any, ...]] | bytes  # COPY records, or a whole binary COPY of them
# a decoded log as plain values, in `Log`'s field order: (contract, event, args, address,
# block_number, block_hash, block_timestamp, tx_hash, log_index); `Log(*fields)` makes it one
LogFields = tuple[str, str, dict[str, Any], str, int, str, int, str, int]


@dataclass
class Batch:
    """Final blocks (from_block, to_block], decoded: what the writer stores in one transaction."""

    from_block: int
    to_block: int
    logs: list[Log]
    end_header: JsonObject | None  # None: the node did not have it (the writer retries)
    event_records: EventRows  # `chain_events` rows, ready for COPY


def decode_fields(
    decoder: LogDecoder,
    rpc: RpcClient,
    raw_logs: list[JsonObject],
    headers: dict[int, JsonObject] | None = None,
) -> list[LogFields]:
    """Logs of our events, decoded in bulk; a log without `blockTimestamp` takes it
    from `headers` or else from the node (through `rpc`)."""
    decoded: list[LogFields] = []
    lower: dict[str, str] = {}  # address as given → lower-case, once per contract
    hex_number, number, timestamp = "", 0, 0  # the block of the log before (logs come in order)
    for raw, result in zip(raw_logs, decoder.decode_many(raw_logs), strict=True):
        if result is None:
            continue
        event, args = result
        if raw["blockNumber"] != hex_number:
            hex_number = raw["blockNumber"]
            number = int(hex_number, 16)
            found = raw.get("blockTimestamp") or (headers or {}).get(number, {}).get("timestamp")
            if found is None:
                header = rpc.call("eth_getBlockByNumber", [hex(number), False])
                found = header["timestamp"]
            timestamp = int(found, 16)
        address = raw["address"]
        low = lower.get(address)
        if low is None:
            low = lower[address] = address.lower()
        decoded.append(
            (
                event.contract,
                event.name,
                args,
                low,
                number,
                raw["blockHash"],
                timestamp,
                raw["transactionHash"],
                int(raw["logIndex"], 16),
            )
        )
    return decoded


def event_records(chain_id: int, fields: list[LogFields]) -> list[tuple[Any, ...]]:
    """`chain_events` rows as COPY records in `EVENT_COLUMNS` order (args as JSON text)."""
    return [
        (
            chain_id,
            block_number,
            block_hash,
            tx_hash,
            log_index,
            contract,
            address,
            event,
            dumps_json(args),
        )
        for (
            contract,
            event,
            args,
            address,
            block_number,
            block_hash,
            _,
            tx_hash,
            log_index,
        ) in fields
    ]


# what a fetch sends the writer: (from_block, to_block, logs, end header, `chain_events` rows)
Fetched = tuple[int, int, list[LogFields], JsonObject | None, EventRows]


class Fetcher:
    """Produces the batches of final blocks: `produce(first block, last final block)`."""

    def __init__(
        self,
        rpc: RpcClient,
        decoder: LogDecoder,
        chain_id: int,
        *,
        initial_range: int,
        min_range: int,
        max_range: int,
        target_logs: int,
        binary_events: bool = False,
    ):
        self.rpc = rpc
        self.decoder = decoder
        self.chain_id = chain_id
        self.range = initial_range
        self.min_range = min_range
        self.max_range = max_range
        self.target_logs = target_logs
        # `chain_events` rows as one binary COPY (PostgreSQL) rather than records
        self.binary_events = binary_events

    def produce(self, from_block: int, final_head: int) -> Batch:
        """Fetch, decode and shape the range starting at `from_block`."""
        return batch_of(self.fetch(from_block, final_head))

    def fetch(self, from_block: int, final_head: int) -> Fetched:
        """`produce` as plain values (what a worker process sends)."""
        while True:
            to_block = min(from_block + self.range - 1, final_head)
            started = time.monotonic()
            try:
                raw_logs = self.rpc.get_logs(from_block, to_block, self.decoder.addresses)
            except RangeTooLarge:
                if to_block == from_block:
                    raise
                self.range = max(self.min_range, (to_block - from_block + 1) // 2)
                log.info("range too large, shrinking to %d blocks", self.range)
                continue
            end_header = self.rpc.call("eth_getBlockByNumber", [hex(to_block), False])
            self.adapt_range(
                logs=len(raw_logs),
                blocks=to_block - from_block + 1,
                seconds=time.monotonic() - started,
            )
            fields = decode_fields(self.decoder, self.rpc, raw_logs)
            return from_block, to_block, fields, end_header, self.events_of(fields)

    def events_of(self, fields: list[LogFields]) -> EventRows:
        records = event_records(self.chain_id, fields)
        if not self.binary_events:
            return records
        try:
            return BinaryCopy(EVENT_BINARY_TYPES).encode(records)
        except (TypeError, ValueError, OverflowError):  # a value binary cannot take: records
            return records

    def adapt_range(self, *, logs: int, blocks: int, seconds: float) -> None:
        """Aim at `target_logs` per batch: scale the range by target/actual, at most 2x."""
        if seconds > 10:
            factor = 0.5
        elif logs == 0:
            factor = 2.0
        else:
            factor = min(2.0, max(0.25, self.target_logs / logs))
        self.range = max(self.min_range, min(self.max_range, int(blocks * factor) or 1))


def batch_of(fetched: Fetched) -> Batch:
    from_block, to_block, fields, end_header, events = fetched
    return Batch(from_block, to_block, list(starmap(Log, fields)), end_header, events)
