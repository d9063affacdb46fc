"""`/v1/trading/...`: markets, orders, order book, trades, history, prices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from backend.api.deps import (
    AppSettingsDep,
    AsyncReader,
    AsyncTrader,
    ChainDep,
    ChainTimeDep,
    Reader,
    ReadsDep,
    SessionDep,
    SettingsDep,
    SyncSessionsDep,
    Trader,
)
from backend.api.fast_json import ModelJSON
from backend.api.links import links, order_links
from backend.api.problem_docs import raises
from backend.core.errors import Conflict, NotFound
from backend.core.json_ints import MAX_SAFE_INTEGER
from backend.market import account_orders, async_intake, book, chain_actions, intake
from backend.market.errors import MeterNotOwned
from backend.market.markets import list_markets
from backend.market.models import OrderStatus
from backend.market.schemas import (
    Accepted,
    Approvals,
    Market,
    OrderBook,
    OrderCancellation,
    OrderCreate,
    OrderPublic,
    OrderPublicStatus,
    OrderTerms,
    Page,
    PriceBar,
    TradePublic,
    TypedDataResponse,
)
from backend.market.trades import (
    price_bars,
    public_trade,
    trades_json,
    trades_page,
    trades_params,
)

JSON = "application/json"

router = APIRouter(prefix="/trading", tags=["trading"])

MarketId = Annotated[str, Query(max_length=40, pattern=r"^(energy|rec)-[0-9]{1,18}$")]
OrderId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=64)]


@router.get("/markets", response_model=list[Market])
def markets(
    session: SessionDep, chain: ChainDep, hours: Annotated[int, Query(ge=1, le=48)] = 24
) -> list[Market]:
    """Energy per 15-minute delivery period (gate closure = period start) and REC markets."""
    return list_markets(session, now=chain.now(max_age_s=1.0), hours=hours)


@router.get("/order-typed-data", response_model=TypedDataResponse)
def order_typed_data(
    account: Reader, chain: ChainDep, terms: Annotated[OrderTerms, Query()]
) -> TypedDataResponse:
    """The `eth_signTypedData_v4` document of an order (nonce and salt filled in)."""
    document, digest = intake.typed_data_for(account, terms, chain)
    return TypedDataResponse(typed_data=document, order_hash=digest)


@router.post(
    "/orders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=raises(MeterNotOwned) | links(202, "The order, open", **order_links),
)
async def place_order(
    body: OrderCreate, account: AsyncTrader, settings: AppSettingsDep, sessions: SyncSessionsDep
) -> Response:
    """Custodial: terms only, the API signs. Wallet: terms + nonce, salt, expiry, signature.
    Checked against balance/allowance, period, gate closure and expiry before it is stored;
    403 `meter-not-owned` when an energy order names a meter that is not the maker's.
    Answered once the order is committed. The matcher trades it on chain. Poll
    `GET /orders/{id}`."""
    order_id = await async_intake.place_order(sessions.run, settings, account, body)
    accepted = Accepted(id=order_id, status=OrderStatus.OPEN, poll=f"/v1/trading/orders/{order_id}")
    return ModelJSON(accepted, status_code=status.HTTP_202_ACCEPTED)


@router.post("/approvals", response_model=Approvals)
def approve_market(
    account: Trader, session: SessionDep, settings: SettingsDep, chain: ChainDep
) -> Approvals:
    """Custodial: approve the market to move your gUSD (for bids) and certificates (REC offers)."""
    return chain_actions.approve_market(session, settings, chain, account)


@router.get("/orders", response_model=Page[OrderPublic])
async def my_orders(
    account: AsyncReader,
    reads: ReadsDep,
    now: ChainTimeDep,
    cursor: Cursor = None,
    limit: Limit = 100,
    status_: Annotated[OrderPublicStatus | None, Query(alias="status")] = None,
) -> Response:
    """My orders, newest first (status judged at chain time at most 1 s old)."""
    query, params = account_orders.my_orders_params(
        account.id, now=now, cursor=cursor, limit=limit, status=status_
    )
    rows = await reads.all(query, params)
    return Response(account_orders.my_orders_json(rows, limit), media_type=JSON)


@router.get(
    "/orders/{order_id}",
    response_model=OrderPublic,
    responses=links(200, "The order", **order_links),
)
def get_order(
    order_id: OrderId, account: Reader, session: SessionDep, chain: ChainDep
) -> OrderPublic:
    row = account_orders.find_order(session, account, order_id)
    return account_orders.order_public(session, row, now=chain.now())


@router.delete(
    "/orders/{order_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderCancellation,
    responses=raises(Conflict),
)
def cancel_order(
    order_id: OrderId,
    account: Trader,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
) -> OrderCancellation:
    """The rest of the order stops trading: custodial orders are cancelled on chain (`tx_hash`);
    a wallet order is cancelled here, or `withdrawn` from matching once the chain has traded
    it, and `cancel_on_chain` is the `cancelOrder` call its wallet sends. 409 when the order
    is already filled, expired or cancelled."""
    return chain_actions.cancel_order(session, settings, chain, account, order_id)


@router.get("/orderbook", response_model=OrderBook, responses=raises(NotFound))
async def orderbook(
    market_id: MarketId,
    reads: ReadsDep,
    now: ChainTimeDep,
    depth: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Bids and asks aggregated by price (live signed orders)."""
    params = book.order_book_params(market_id, now=now, depth=depth)
    rows = await reads.all(book.ORDER_BOOK, params)
    return ModelJSON(book.order_book_of(market_id, rows, now=now))


@router.get("/trades", response_model=Page[TradePublic], responses=raises(NotFound))
async def trades(
    reads: ReadsDep,
    market_id: MarketId | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    # well-formed requests are answered before routing, with these bytes (api/fast_trades.py)
    query, params = trades_params(market_id=market_id, cursor=cursor, limit=limit)
    return Response(trades_json(await reads.all(query, params), limit), media_type=JSON)


@router.get("/history", response_model=Page[TradePublic], responses=raises(NotFound))
async def history(
    account: AsyncReader,
    reads: ReadsDep,
    market_id: MarketId | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    """My trades, as seller or buyer."""
    query, params = trades_params(
        market_id=market_id, cursor=cursor, limit=limit, address=account.address.lower()
    )
    rows, next_cursor = trades_page(await reads.all(query, params), limit)
    return ModelJSON(
        Page[TradePublic](items=[public_trade(t) for t in rows], next_cursor=next_cursor)
    )


@router.get("/prices", response_model=list[PriceBar])
def prices(
    session: SessionDep,
    start: Annotated[int | None, Query(ge=0, le=MAX_SAFE_INTEGER)] = None,
    end: Annotated[int | None, Query(ge=0, le=MAX_SAFE_INTEGER)] = None,
) -> list[PriceBar]:
    """OHLC and volume per delivery period of energy trades."""
    return price_bars(session, start=start, end=end)
