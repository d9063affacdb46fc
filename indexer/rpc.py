"""JSON-RPC client for the indexer: batching, timeouts, retries with backoff and jitter.

Transport faults (timeouts, refused connections, HTTP 5xx, truncated bodies) are retried;
a provider saying a log query is too large raises `RangeTooLarge` at once so the caller
can shrink its block range instead of hammering the node.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
import urllib3

from backend.core.errors import GridLedgerError

_TOO_LARGE_HINTS = ("too many", "more than", "range", "limit exceeded", "response size")

JsonObject = dict[str, Any]  # a JSON-RPC object: a block header, a log, a request


class RpcError(GridLedgerError):
    """The node answered with a JSON-RPC error that retrying will not fix."""


class RpcUnavailable(RpcError):
    """Every retry failed: the node is unreachable or keeps failing."""


class RangeTooLarge(RpcError):
    """eth_getLogs refused the block range (too many results or too wide)."""


@dataclass
class RetryPolicy:
    attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (AWS architecture blog's recommendation)."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


@dataclass
class RpcClient:
    url: str
    timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _retries: int = 0
    _forks: list[RpcClient] = field(default_factory=list)

    @property
    def retries_done(self) -> int:
        """Retries by this client and the clients forked from it."""
        return self._retries + sum(fork.retries_done for fork in self._forks)

    def count_retries(self, count: int) -> None:
        """Count retries made on this client's behalf elsewhere (a fetch worker's client)."""
        self._retries += count

    def fork(self) -> RpcClient:
        """A client to the same node with a session of its own (one per thread: a requests
        Session is not safe to share), counted in this one's `retries_done`."""
        forked = RpcClient(self.url, timeout_s=self.timeout_s, retry=self.retry)
        self._forks.append(forked)
        return forked

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        return self.batch([(method, params or [])])[0]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send calls in one HTTP request; results in call order."""
        if not calls:
            return []
        payload: list[JsonObject] = [
            {"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p} for m, p in calls
        ]
        responses = self._post_with_retries(payload)
        by_id = {r.get("id"): r for r in responses}
        results = []
        for request in payload:
            response = by_id.get(request["id"])
            if response is None:
                raise RpcError(f"{request['method']}: no response in batch")
            if "error" in response:
                raise self._classify(request["method"], response["error"])
            results.append(response["result"])
        return results

    def _post_with_retries(self, payload: list[JsonObject]) -> list[JsonObject]:
        last_error: Exception | None = None
        for attempt in range(self.retry.attempts):
            try:
                body = orjson.loads(self._post(payload))
                if isinstance(body, dict):  # a batch-level error
                    if "error" in body:
                        raise self._classify(payload[0]["method"], body["error"])
                    body = [body]
                return body
            except (
                requests.RequestException,
                urllib3.exceptions.HTTPError,  # a read cut short (`_post` reads the raw body)
                ValueError,
                orjson.JSONDecodeError,
            ) as exc:
                last_error = exc
                self._retries += 1
                time.sleep(self.retry.delay(attempt))
        raise RpcUnavailable(f"{self.url}: {self.retry.attempts} attempts failed ({last_error})")

    def _post(self, payload: list[JsonObject]) -> bytes:
        """The reply's body, read in one piece (a 10 MB eth_getLogs reply through
        `Response.content` costs 10 kB chunks and their join)."""
        reply = self.session.post(
            self.url,
            data=orjson.dumps(payload),
            timeout=self.timeout_s,
            headers={"Content-Type": "application/json"},
            stream=True,
        )
        try:
            if reply.status_code >= 500 or reply.status_code == 429:
                raise requests.HTTPError(f"HTTP {reply.status_code}")
            return bytes(reply.raw.read(decode_content=True))
        finally:
            reply.close()

    @staticmethod
    def _classify(method: str, error: JsonObject) -> RpcError:
        message = str(error.get("message", error))
        if method == "eth_getLogs" and any(hint in message.lower() for hint in _TOO_LARGE_HINTS):
            return RangeTooLarge(message)
        return RpcError(f"{method}: {message}")

    # Typed helpers -----------------------------------------------------------------------

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def get_logs(self, from_block: int, to_block: int, addresses: list[str]) -> list[JsonObject]:
        return self.call(
            "eth_getLogs",
            [{"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": addresses}],
        )

    def get_blocks(self, numbers: list[int]) -> list[JsonObject | None]:
        """Headers (no transactions) for many blocks in one round trip."""
        return self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
