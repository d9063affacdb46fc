"""The neighbourhood's participants as API clients: custodial (email + password) and wallet
(SIWE sign-in, EIP-712 orders signed locally with eth-account). Only the public REST API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from backend.accounts.siwe import siwe_message
from backend.core.config import Settings
from backend.core.errors import GridLedgerError

PASSWORD = "neighbourhood-simulation"


class ApiError(GridLedgerError):
    def __init__(self, method: str, path: str, response: httpx.Response):
        self.status = response.status_code
        try:
            self.problem = response.json()
        except ValueError:
            self.problem = {"detail": response.text[:200]}
        super().__init__(
            f"{method} {path} -> {self.status} {self.problem.get('code', '')} "
            f"{str(self.problem.get('detail', ''))[:200]}"
        )


@dataclass
class Participant:
    """One account of the neighbourhood and its authenticated session."""

    http: httpx.Client
    settings: Settings
    name: str
    wallet: LocalAccount | None = None  # None: custodial (the API holds the key)
    address: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return f"{self.name}@neighbourhood.example.org"

    @property
    def custodial(self) -> bool:
        return self.wallet is None

    # -------------------------------------------------------------------- sign-in

    def sign_in(self) -> None:
        if self.wallet is None:
            reply = self.http.post(
                "/v1/auth/register",
                json={"email": self.email, "password": PASSWORD, "display_name": self.name},
            )
            if reply.status_code not in (201, 409):
                raise ApiError("POST", "/v1/auth/register", reply)
            tokens = self._checked(
                "POST", "/v1/auth/login", json={"email": self.email, "password": PASSWORD}
            )
        else:
            nonce = self._checked("GET", "/v1/auth/siwe/nonce")["nonce"]
            message = siwe_message(
                uri=str(self.http.base_url),
                chain_id=self.settings.chain_id,
                address=self.wallet.address,
                nonce=nonce,
                issued_at=datetime.now(UTC),
            )
            signature = EthAccount.sign_message(
                encode_defunct(text=message), self.wallet.key
            ).signature
            tokens = self._checked(
                "POST",
                "/v1/auth/siwe/verify",
                json={"message": message, "signature": "0x" + bytes(signature).hex()},
            )
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.address = self.request("GET", "/v1/auth/me")["address"]

    def _checked(self, method: str, path: str, **kwargs: Any) -> Any:
        """An unauthenticated call; its JSON body (None when empty)."""
        reply = self.http.request(method, path, **kwargs)
        if reply.status_code >= 300:
            raise ApiError(method, path, reply)
        return reply.json() if reply.content else None

    def request(self, method: str, path: str, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """An authenticated call, its JSON body (None when empty); signs in again once when the
        access token has expired."""
        reply = self.http.request(method, path, headers=self.headers, **kwargs)
        if reply.status_code == 401:
            self.sign_in()
            reply = self.http.request(method, path, headers=self.headers, **kwargs)
        if reply.status_code >= 300 and reply.status_code not in ok:
            raise ApiError(method, path, reply)
        return reply.json() if reply.content else None

    # -------------------------------------------------------------------- trading

    def place_order(self, **terms: Any) -> dict[str, Any]:
        """Custodial: the terms (the API signs). Wallet: sign the typed data it returns."""
        if self.wallet is None:
            return self.request("POST", "/v1/trading/orders", json=terms)
        typed = self.request("GET", "/v1/trading/order-typed-data", params=terms)
        document = typed["typed_data"]
        signature = EthAccount.sign_typed_data(self.wallet.key, full_message=document).signature
        message = document["message"]
        body = {
            **terms,
            "nonce": message["nonce"],
            "salt": message["salt"],
            "expiry": message["expiry"],
            "signature": "0x" + bytes(signature).hex(),
        }
        return self.request("POST", "/v1/trading/orders", json=body)
