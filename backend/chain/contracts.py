"""Bound contracts of the current deployment, chain time, and revert decoding.

Contract custom errors (`error EnergyMarketOrderExpired(bytes32, uint64)`) are decoded with
the ABI's error selectors into `ContractReverted`, whose `code` is `contract/<ErrorName>`: a
stable problem type per error at the API edge.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import orjson
import urllib3
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    Web3RPCError,
    Web3ValidationError,
)
from web3.types import TxParams, TxReceipt

from backend.chain.deployment import Deployment, DeploymentNotFound
from backend.chain.transactions import TransactionFailed, send
from backend.core.config import Settings
from backend.core.errors import Conflict, InvalidInput, ServiceUnavailable


class ContractReverted(Conflict):
    """A call or transaction reverted with one of our contracts' custom errors."""

    title = "The contract rejected the call"

    def __init__(self, error: str, arguments: dict[str, Any], detail: str = ""):
        self.code = f"contract/{error}"
        super().__init__(
            detail or f"{error}({', '.join(f'{k}={v}' for k, v in arguments.items())})",
            error=error,
            arguments=arguments,
        )


class InsufficientGasFunds(Conflict):
    code = "insufficient-gas-funds"
    title = "The sending account cannot pay for gas"


def _rpc_error(exc: Exception) -> Exception:
    if "insufficient funds" in str(exc).lower():
        return InsufficientGasFunds("the account has too little ETH to pay for this transaction")
    return ServiceUnavailable(f"chain RPC rejected the request: {str(exc)[:160]}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)
    return value


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


@dataclass(frozen=True)
class ViewCall:
    """A view function call encoded for `eth_call` (see `Chain.view` and `Chain.read`).

    An `optional` call is a probe of an address that may not implement the function (an
    ERC-1271 `isValidSignature` of an address that may have no code): a revert, an empty or an
    undecodable answer reads as None instead of raising."""

    to: str
    data: str
    outputs: tuple[str, ...]
    optional: bool = False


@dataclass
class Chain:
    """web3 + the deployed contracts; one per (RPC URL, deployment file)."""

    w3: Web3
    deployment: Deployment
    errors: dict[bytes, tuple[str, list[str], list[str]]] = field(default_factory=dict)
    _now_cache: tuple[float, int] | None = None
    _head_cache: tuple[float, int, int] | None = None  # when seen, block time, block number
    _views: dict[tuple[str, str, int], tuple[bytes, list[str], tuple[str, ...]]] = field(
        default_factory=dict
    )
    # `read`'s transport: keep-alive connections shared by the API's worker threads (plain
    # urllib3 costs half of what requests + web3's provider do per round trip). The batch only
    # reads, so a dropped keep-alive connection is retried (once after a send, twice to connect).
    _http: urllib3.PoolManager = field(
        default_factory=lambda: urllib3.PoolManager(
            maxsize=64,
            timeout=urllib3.Timeout(connect=2, read=10),
            retries=urllib3.Retry(total=2, read=1, allowed_methods=None),
        )
    )

    def __post_init__(self) -> None:
        self.market = self._bind("EnergyMarket")
        self.registry = self._bind("RECRegistry")
        self.token = self._bind("GridUSD")
        # None: a deployment file from before DemandResponse existed
        self.demand_response = (
            self._bind("DemandResponse") if "DemandResponse" in self.deployment.contracts else None
        )
        c = self.deployment.contracts
        timelock = [self.deployment.timelock] if self.deployment.timelock else []
        for contract in [*c.values(), *timelock]:
            for item in contract.abi:
                if item.get("type") == "error":
                    types = [_abi_type(i) for i in item["inputs"]]
                    selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                    self.errors[selector] = (
                        item["name"],
                        [i["name"] for i in item["inputs"]],
                        types,
                    )

    def _bind(self, name: str) -> Contract:
        deployed = self.deployment.contracts[name]
        return self.w3.eth.contract(address=to_checksum_address(deployed.address), abi=deployed.abi)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def recent_now(self, max_age_s: float) -> int | None:
        """The chain time `now` last read, if it is at most `max_age_s` old (no round trip)."""
        cached = self._now_cache
        return cached[1] if cached and time.monotonic() - cached[0] <= max_age_s else None

    def recent_head(self, max_age_s: float) -> tuple[int, int] | None:
        """(time, number) of the latest block last read, if at most `max_age_s` old."""
        cached = self._head_cache
        if cached and time.monotonic() - cached[0] <= max_age_s:
            return cached[1], cached[2]
        return None

    def now(self, max_age_s: float = 0.0) -> int:
        """Timestamp of the latest block: gate closure and expiry are judged in chain time.
        Reads may accept a value up to `max_age_s` old (writes always ask the node)."""
        cached = self._now_cache
        if max_age_s and cached and time.monotonic() - cached[0] <= max_age_s:
            return cached[1]
        try:
            block = self.w3.eth.get_block("latest")
        except (OSError, ConnectionError, Web3RPCError) as exc:
            raise ServiceUnavailable("chain RPC unreachable") from exc
        value, seen = int(block["timestamp"]), time.monotonic()
        self._now_cache = (seen, value)
        self._head_cache = (seen, value, int(block["number"]))
        return value

    def view(self, contract: Contract, name: str, *args: Any) -> ViewCall:
        """`contract.name(*args)` encoded for `read` (selector and ABI types cached per
        function)."""
        key = (contract.address, name, len(args))
        spec = self._views.get(key)
        if spec is None:
            # plain JSON entries: web3's TypedDicts differ per entry kind (no `name` on fallback)
            abi = cast(list[dict[str, Any]], contract.abi)
            item = next(
                (
                    i
                    for i in abi
                    if i.get("type") == "function"
                    and i["name"] == name
                    and len(i["inputs"]) == len(args)
                ),
                None,
            )
            if item is None:
                raise InvalidInput(f"no function {name} with {len(args)} arguments")
            inputs = [_abi_type(i) for i in item["inputs"]]
            spec = (
                keccak(text=f"{name}({','.join(inputs)})")[:4],
                inputs,
                tuple(_abi_type(o) for o in item["outputs"]),
            )
            self._views[key] = spec
        selector, inputs, outputs = spec
        return ViewCall(
            contract.address, "0x" + (selector + abi_encode(inputs, args)).hex(), outputs
        )

    def read(self, *calls: ViewCall) -> tuple[int, list[Any]]:
        """Chain time (the latest block's timestamp, as `now()`) and the result of each view
        call, in one JSON-RPC batch: one round trip to the node instead of two per value (web3
        sends an `eth_chainId` before every `eth_call`). Every call runs against the latest block;
        reverts become `ContractReverted` as in `call`. Values are eth_abi's (addresses
        lower-case)."""
        batch = [
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "eth_getBlockByNumber",
                "params": ["latest", False],
            }
        ]
        batch += [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": c.to, "data": c.data}, "latest"],
            }
            for i, c in enumerate(calls, 1)
        ]
        try:
            # `_chain` builds every Chain on an HTTPProvider
            provider = cast(HTTPProvider, self.w3.provider)
            reply = self._http.request(
                "POST",
                str(provider.endpoint_uri),
                body=orjson.dumps(batch),
                headers={"Content-Type": "application/json"},
            )
            responses = orjson.loads(reply.data) if reply.status == 200 else reply.data[:160]
        except (OSError, urllib3.exceptions.HTTPError, orjson.JSONDecodeError) as exc:
            raise ServiceUnavailable("chain RPC unreachable") from exc
        by_id = (
            {r.get("id"): r for r in responses if isinstance(r, dict)}
            if isinstance(responses, list)
            else {}
        )
        if set(by_id) != set(range(len(batch))):
            raise ServiceUnavailable(f"chain RPC rejected the batch: {str(responses)[:160]}")
        block = self._result(by_id[0])
        if not isinstance(block, dict):
            raise ServiceUnavailable("chain RPC returned no latest block")
        now, seen = int(block["timestamp"], 16), time.monotonic()
        self._now_cache = (seen, now)
        self._head_cache = (seen, now, int(block["number"], 16))
        values = [self._value(call, by_id[i]) for i, call in enumerate(calls, 1)]
        return now, values

    def _value(self, call: ViewCall, response: dict[str, Any]) -> Any:
        """The decoded answer of one `read` call (one value, or a tuple of several)."""
        try:
            raw = self._result(response)
        except ContractReverted:
            if call.optional:
                return None
            raise
        try:
            decoded = abi_decode(call.outputs, bytes.fromhex(raw[2:]))
        except (DecodingError, ValueError) as exc:
            if call.optional:
                return None
            raise ServiceUnavailable(
                f"{call.to} answered {raw[:20]!r}: is the deployment file current?"
            ) from exc
        return decoded[0] if len(decoded) == 1 else decoded

    def _result(self, response: dict[str, Any]) -> Any:
        error = response.get("error")
        if error is None:
            return response["result"]
        data = error.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            decoded = self.decode_revert(data)
            if decoded is not None:
                raise decoded
        if "revert" in str(error.get("message", "")).lower():
            raise ContractReverted("Unknown", {}, detail=str(error.get("message"))[:200])
        raise _rpc_error(Exception(error.get("message", error)))

    def decode_revert(self, data: str | bytes) -> ContractReverted | None:
        raw = (
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
            if isinstance(data, str)
            else data
        )
        known = self.errors.get(raw[:4])
        if known is None:
            return None
        name, names, types = known
        values: Sequence[Any]
        try:
            values = abi_decode(types, raw[4:])
        except Exception:  # malformed revert data: report the error name only
            values = [None] * len(names)
        return ContractReverted(
            name, {n: _json_safe(v) for n, v in zip(names, values, strict=True)}
        )

    def translate(self, exc: Exception) -> Exception:
        """The domain error for a web3 revert (unknown reverts become a generic contract error)."""
        data = getattr(exc, "data", None)
        if isinstance(data, (str, bytes)) and data:
            decoded = self.decode_revert(data)
            if decoded is not None:
                return decoded
        return ContractReverted("Unknown", {}, detail=str(exc)[:200])

    def call(self, function_call: ContractFunction, **kwargs: Any) -> Any:
        """A view call or simulation; custom-error reverts become `ContractReverted`."""
        try:
            # `kwargs` are call fields such as "from"; web3 checks them
            return function_call.call(cast(TxParams, kwargs) if kwargs else None)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self.translate(exc) from exc
        except Web3ValidationError as exc:
            raise InvalidInput(f"arguments do not fit the contract ABI: {str(exc)[:160]}") from exc
        except Web3RPCError as exc:
            raise _rpc_error(exc) from exc
        except (OSError, ConnectionError) as exc:
            raise ServiceUnavailable("chain RPC unreachable") from exc

    def transact(
        self, account: LocalAccount, function_call: ContractFunction, **tx_fields: Any
    ) -> TxReceipt:
        """Simulate (decoding any revert), then sign locally, send and wait."""
        self.call(function_call, **{"from": account.address})
        built = function_call.build_transaction({"from": account.address, "gas": 0})
        tx = {"to": built["to"], "data": built["data"], **tx_fields}
        try:
            return send(self.w3, account, tx)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self.translate(exc) from exc
        except TransactionFailed as exc:
            raise ContractReverted("Unknown", {}, detail=str(exc)) from exc
        except Web3RPCError as exc:
            raise _rpc_error(exc) from exc
        except (OSError, ConnectionError) as exc:
            raise ServiceUnavailable("chain RPC unreachable") from exc


@lru_cache(maxsize=8)
def _chain(rpc_url: str, deployment_file: Path, mtime: float) -> Chain:
    return Chain(
        Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10})),
        Deployment.read(deployment_file),
    )


def chain_for(settings: Settings) -> Chain:
    """The chain of `settings` (re-read when the deployment file changes)."""
    try:
        mtime = settings.deployment_file.stat().st_mtime
    except OSError:
        mtime = 0.0
    try:
        return _chain(settings.rpc_url, settings.deployment_file, mtime)
    except DeploymentNotFound as exc:
        raise ServiceUnavailable(exc.detail) from exc
