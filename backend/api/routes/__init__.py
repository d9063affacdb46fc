"""All `/v1` routers. Each domain adds its router here, one line each."""
from fastapi import APIRouter

from backend.api.routes import admin, auth, energy, meters, public, recs, relay, settlement, trading, ws

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(trading.router)
api_router.include_router(energy.router)
api_router.include_router(meters.router)
api_router.include_router(settlement.router)
api_router.include_router(recs.router)
api_router.include_router(ws.router)
api_router.include_router(public.router)
api_router.include_router(relay.router)
api_router.include_router(admin.router)
