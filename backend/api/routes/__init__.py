"""All `/v1` routers. Each domain adds its router here, one line each."""
from fastapi import APIRouter

from backend.api.routes import meters, settlement

api_router = APIRouter()
api_router.include_router(meters.router)
api_router.include_router(settlement.router)
