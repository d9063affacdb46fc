"""The CLI's REST client: base URL and tokens from options, environment or the config file,
RFC 9457 problems turned into one-line errors.

Configuration, first match wins:
  API URL  --api-url, GRIDLEDGER_API_URL, the config file, http://127.0.0.1:8000
  token    GRIDLEDGER_TOKEN (an access token or API key), the config file (from `gridledger login`)
  file     GRIDLEDGER_CONFIG, else ~/.config/gridledger/config.json (mode 0600)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"

Config = dict[str, Any]  # the config file's JSON object: api_url, access_token, refresh_token


class CliError(Exception):
    """An error the CLI prints as one line on stderr (`error: ...`) and exits 1 on."""


def config_path() -> Path:
    explicit = os.environ.get("GRIDLEDGER_CONFIG")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "gridledger" / "config.json"


def load_config() -> Config:
    path = config_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"unreadable config file {path}: {exc}") from exc


def save_config(config: Config) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def problem_line(reply: httpx.Response) -> str:
    """`<title>: <detail> (HTTP <status>, <type code>)` from a problem document, or the raw text."""
    try:
        problem = reply.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict) or "title" not in problem:
        text = (
            reply.text.strip().splitlines()[0][:200] if reply.text.strip() else reply.reason_phrase
        )
        return f"HTTP {reply.status_code}: {text}"
    code = str(problem.get("type", "")).rsplit("/problems/", 1)[-1]
    message = problem["title"]
    if problem.get("detail"):
        message += f": {problem['detail']}"
    errors = problem.get("errors")
    if errors:  # validation: name the fields
        message += (
            " ["
            + "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors[:5])
            + "]"
        )
    return f"{message} (HTTP {reply.status_code}, {code})"


@dataclass
class Api:
    base_url: str
    token: str | None = None
    refresh_token: str | None = None
    persist: bool = False  # tokens came from the config file: save refreshed ones back
    timeout_s: float = 60
    _http: httpx.Client | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, api_url: str | None) -> Api:
        config = load_config()
        base = (
            api_url
            or os.environ.get("GRIDLEDGER_API_URL")
            or config.get("api_url")
            or DEFAULT_API_URL
        )
        env_token = os.environ.get("GRIDLEDGER_TOKEN")
        if env_token:
            return cls(base.rstrip("/"), token=env_token)
        return cls(
            base.rstrip("/"),
            token=config.get("access_token"),
            refresh_token=config.get("refresh_token"),
            persist=True,
        )

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout_s)
        return self._http

    def _headers(self, auth: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        if auth:
            if not self.token:
                raise CliError("not signed in: run `gridledger login` or set GRIDLEDGER_TOKEN")
            if self.token.startswith("glk_"):  # an API key (from POST /v1/auth/api-keys)
                headers["X-API-Key"] = self.token
            else:
                headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        ok: tuple[int, ...] = (),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,  # passed on to httpx: json, params, content
    ) -> httpx.Response:
        """The reply if 2xx (or in `ok`), else CliError with the problem's one-line summary."""
        try:
            reply = self.http.request(method, path, headers=self._headers(auth, headers), **kwargs)
            if reply.status_code == 401 and auth and self.refresh_token and self._refresh():
                reply = self.http.request(
                    method, path, headers=self._headers(auth, headers), **kwargs
                )
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the API at {self.base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        if reply.is_success or reply.status_code in ok:
            return reply
        raise CliError(problem_line(reply))

    def _refresh(self) -> bool:
        reply = self.http.post("/v1/auth/refresh", json={"refresh_token": self.refresh_token})
        if not reply.is_success:
            return False
        tokens = reply.json()
        self.token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
        if self.persist:
            save_config(
                {**load_config(), "access_token": self.token, "refresh_token": self.refresh_token}
            )
        return True

    def get(self, path: str, **kwargs: Any) -> Any:
        """The reply's JSON."""
        return self.send("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        """The reply's JSON, or None for an empty reply."""
        reply = self.send("POST", path, **kwargs)
        return reply.json() if reply.content else None

    def delete(self, path: str, **kwargs: Any) -> Any:
        """The reply's JSON."""
        return self.send("DELETE", path, **kwargs).json()
