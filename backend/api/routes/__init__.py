"""All `/v1` routers. Each domain adds its router here, one line each."""

from fastapi import APIRouter

from backend.api.routes import (
    admin,
    auth,
    chain,
    deadletters,
    dr,
    energy,
    forecast,
    meters,
    openadr,
    public,
    recs,
    relay,
    resources,
    settlement,
    things,
    trading,
    vpp,
    vpp_trading,
    ws,
)

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(trading.router)
api_router.include_router(energy.router)
api_router.include_router(meters.router)
api_router.include_router(settlement.router)
api_router.include_router(recs.router)
api_router.include_router(ws.router)
api_router.include_router(public.router)
api_router.include_router(chain.router)
api_router.include_router(relay.router)
api_router.include_router(admin.router)
api_router.include_router(resources.router)
api_router.include_router(things.router)
api_router.include_router(vpp.router)
api_router.include_router(vpp_trading.router)
api_router.include_router(deadletters.router)
api_router.include_router(dr.router)
api_router.include_router(forecast.router)
api_router.include_router(openadr.router)

# Anonymous GETs whose response is the same for every caller: served from each worker's
# read cache (backend/api/read_cache.py). Never list a route that reads the caller.
CACHED_PUBLIC_READS = (
    "/v1/trading/markets",
    "/v1/trading/orderbook",
    "/v1/trading/trades",
    "/v1/trading/prices",
    "/v1/public/summary",
    "/v1/public/settlements",
    "/v1/public/energy/periods",
    "/v1/public/recs/issuance",
    "/v1/public/recs/claims",
)
