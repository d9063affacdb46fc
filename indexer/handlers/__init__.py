"""Event handlers: each turns one decoded event into changes of the derived tables.

A handler is registered for (contract, event); contract "*" matches any of our contracts
(AccessControl events). `touches` names the rows it will read, so a batch can load them
all in one query per table before applying events in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from indexer.mirror import MirrorState, TableKey

ZERO_ADDRESS = "0x" + "00" * 20  # `from` of a mint, `to` of a burn
ZERO_HASH = "0x" + "00" * 32  # the order hash of a fill's taker side, which has no order


@dataclass(slots=True)
class Log:
    """A decoded log with its position on chain."""

    contract: str
    event: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    log_index: int

    @property
    def uid(self) -> str:
        return f"{self.tx_hash}:{self.log_index}"


Apply = Callable[[MirrorState, Log], None]
Touches = Callable[[Log], Iterable[TableKey]]


@dataclass(frozen=True)
class Handler:
    apply: Apply
    touches: Touches


HANDLERS: dict[tuple[str, str], Handler] = {}


def _touches_nothing(log: Log) -> Iterable[TableKey]:
    return ()


def on(contract: str, event: str, touches: Touches = _touches_nothing) -> Callable[[Apply], Apply]:
    """Register the decorated function as the handler of `event` from `contract`."""

    def register(apply: Apply) -> Apply:
        HANDLERS[(contract, event)] = Handler(apply=apply, touches=touches)
        return apply

    return register


@cache
def _lookup(contract: str, event: str) -> Handler | None:
    return HANDLERS.get((contract, event)) or HANDLERS.get(("*", event))


def handler_for(log: Log) -> Handler | None:
    return _lookup(log.contract, log.event)


def load_handlers() -> None:
    from indexer.handlers import (  # noqa: F401
        access,
        allowances,
        demand_response,
        market,
        registry,
        token,
    )
