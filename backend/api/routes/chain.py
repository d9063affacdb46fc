"""`/v1/chain`: the chain's parameters, for browser wallets (`wallet_addEthereumChain`)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import ChainDep, SettingsDep
from backend.chain.info import ChainInfo, chain_info

router = APIRouter(prefix="/chain", tags=["chain"])


@router.get("", response_model=ChainInfo)
def chain(settings: SettingsDep, chain: ChainDep) -> ChainInfo:
    """Public: chain id (decimal and hex), public JSON-RPC URL, contracts, payment token."""
    return chain_info(settings, chain)
