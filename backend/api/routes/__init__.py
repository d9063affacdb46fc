"""All `/v1` routers. Each domain adds its router here, one line each."""
from fastapi import APIRouter

api_router = APIRouter()
