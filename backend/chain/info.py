"""What a browser wallet needs to know about our chain (`GET /v1/chain`): its id, the public
JSON-RPC URL for `wallet_addEthereumChain`, the contract addresses and the payment token."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.chain.contracts import Chain
from backend.core.config import Settings


class TokenInfo(BaseModel):
    address: str
    symbol: str
    decimals: int


class Contracts(BaseModel):
    market: str
    registry: str
    token: str


class NativeCurrency(BaseModel):
    name: str = "Ether"
    symbol: str = "ETH"
    decimals: int = 18


class ChainInfo(BaseModel):
    """`chain_id` as a decimal string (EIP-155 ids may pass 2^53) and as the 0x-hex that
    EIP-1193 wallets speak; `rpc_url` is null when no public URL is configured."""

    chain_id: str = Field(pattern=r"^[0-9]+$")
    chain_id_hex: str = Field(pattern=r"^0x[0-9a-f]+$")
    chain_name: str
    rpc_url: str | None
    native_currency: NativeCurrency = NativeCurrency()
    contracts: Contracts
    token: TokenInfo


_tokens: dict[tuple[int, str], TokenInfo] = {}


def _token(chain: Chain) -> TokenInfo:
    """The token's symbol and decimals (immutable: asked once per chain and address)."""
    key = (chain.chain_id, chain.token.address)
    if key not in _tokens:
        _tokens[key] = TokenInfo(
            address=chain.token.address.lower(),
            symbol=str(chain.call(chain.token.functions.symbol())),
            decimals=int(chain.call(chain.token.functions.decimals())),
        )
    return _tokens[key]


def public_rpc_url(settings: Settings) -> str | None:
    if settings.public_rpc_url:
        return settings.public_rpc_url
    return settings.rpc_url if settings.environment == "development" else None


def chain_info(settings: Settings, chain: Chain) -> ChainInfo:
    return ChainInfo(
        chain_id=str(chain.chain_id),
        chain_id_hex=hex(chain.chain_id),
        chain_name=settings.chain_name,
        rpc_url=public_rpc_url(settings),
        contracts=Contracts(
            market=chain.market.address.lower(),
            registry=chain.registry.address.lower(),
            token=chain.token.address.lower(),
        ),
        token=_token(chain),
    )
