"""Order intake on the event loop: a wallet's order signed by the maker's own key (energy offer,
bid or REC offer) goes to the group commit (backend/market/order_writer.py) with no worker
thread and no chain round trip; every other order takes the sync intake
(`intake.place_order`) on a worker thread.

The sync intake also takes what the writer hands back (`ASK_CHAIN`: the mirror is behind or
would refuse the order: the chain decides), custodial orders (the API signs them: a custodial
order is rare and reads its nonce from the chain), contract wallets' signatures (an ERC-1271
call to the chain) and every order when the database has no async driver (SQLite).

Signer recovery (~0.2 ms, libsecp256k1) stays on the event loop: handing it to a worker thread
costs about as much as it saves on two cores that the load generator, PostgreSQL and the
server share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.accounts.models import Account, AccountKind
from backend.chain.contracts import Chain, chain_for
from backend.chain.signatures import checksum_address, ecdsa_signer
from backend.core.config import Settings
from backend.market import intake, mirror_state
from backend.market import orders as eip712
from backend.market.order_writer import ASK_CHAIN, Pending, writer_for
from backend.market.schemas import OrderCreate

SyncRunner = Callable[[Callable[[Session], str]], Awaitable[str]]

# The chain head refresh in flight per (event loop, chain): concurrent requests wait for one
# node round trip.
_refreshing: dict[tuple[int, int], asyncio.Future[int]] = {}


async def place_order(
    run_sync: SyncRunner, settings: Settings, account: Account, request: OrderCreate
) -> str:
    """The stored order's id (0x-hex EIP-712 digest), or the refusal raised. `run_sync` runs a
    function of a sync session on a worker thread (`deps.SyncSessions.run`)."""
    pending = await writer_pending(settings, account, request)
    if pending is not None:
        stored = await submit(settings, pending)
        if stored is not None:
            return stored
    return await run_sync(sync_intake(settings, account, request))


def sync_intake(
    settings: Settings, account: Account, request: OrderCreate
) -> Callable[[Session], str]:
    """The sync intake of `request` as a function of a session (for `run_sync`)."""

    def work(session: Session) -> str:
        return intake.place_order(
            session, settings, chain_for(settings), account, request
        ).order_hash

    return work


async def writer_pending(
    settings: Settings, account: Account, request: OrderCreate
) -> Pending | None:
    """`request` ready for the group commit, or None when the sync intake must take it: no
    writer (SQLite), a custodial account, or a signature that is not the maker's own key's (a
    contract wallet's, or a wrong one). Raises InvalidOrder for a wallet order without nonce,
    salt, expiry or signature."""
    writer = writer_for(settings)
    if writer is None or account.kind == AccountKind.CUSTODIAL:
        return None
    order, signature = intake.wallet_order(account, request)
    chain = chain_for(settings)
    digest = eip712.order_digest(order, chain.chain_id, chain.market.address)
    if ecdsa_signer(digest, signature) != checksum_address(account.address):
        return None  # a contract wallet's signature, or a wrong one
    return Pending(
        account_id=account.id,
        order=order,
        order_id="0x" + digest.hex(),
        signature=signature,
        head=await fresh_head(chain),
        market=chain.market.address,
    )


async def submit(settings: Settings, pending: Pending) -> str | None:
    """The order's id once the group commit stored it; None (ASK_CHAIN): take the sync intake;
    or the final refusal raised."""
    writer = writer_for(settings)
    return ASK_CHAIN if writer is None else await writer.submit(pending)


async def fresh_head(chain: Chain) -> tuple[int, int]:
    """(time, number) of the latest block, at most `CLOCK_MAX_AGE_S` old: one worker thread
    asks the node when it is older, and requests arriving meanwhile wait for its answer."""
    head = chain.recent_head(mirror_state.CLOCK_MAX_AGE_S)
    key = (id(asyncio.get_running_loop()), id(chain))
    while head is None:
        refresh = _refreshing.get(key)
        if refresh is None:
            refresh = _refreshing[key] = asyncio.ensure_future(run_in_threadpool(chain.now))
            refresh.add_done_callback(lambda _: _refreshing.pop(key, None))
        await asyncio.shield(refresh)
        head = chain.recent_head(mirror_state.CLOCK_MAX_AGE_S)
    return head
