"""Sign-In with Ethereum (EIP-4361) messages as wallets build them: parse, check, build.

A message is accepted when
- its **domain** (host and port, as a wallet shows it) is one of `GRIDLEDGER_SIWE_DOMAINS`,
  or — that list empty (development) — the `Host` the request was sent to;
- its **URI** has the same origin: http(s), and the domain's host and port;
- it is **current**: `Issued At` within `GRIDLEDGER_SIWE_ISSUED_AT_WINDOW_S` of now (either
  way: clocks drift), `Expiration Time` after now and `Not Before` before now when present;
- its **Chain ID** is the API's chain and its version is 1.
The nonce (single use) and the signature (the address's key, or ERC-1271) are the sign-in's
part: `backend.accounts.services.siwe_login`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from backend.accounts.errors import (
    InvalidSiweMessage,
    SiweChainMismatch,
    SiweDomainMismatch,
    SiweNotCurrent,
    SiweUriMismatch,
)
from backend.core.config import Settings

_HEADER = re.compile(
    r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>\S+) "
    r"wants you to sign in with your Ethereum account:$"
)
_FIELDS = {
    "URI": "uri",
    "Version": "version",
    "Chain ID": "chain_id",
    "Nonce": "nonce",
    "Issued At": "issued_at",
    "Expiration Time": "expiration_time",
    "Not Before": "not_before",
}
_REQUIRED = ("URI", "Version", "Chain ID", "Nonce", "Issued At")
_DEFAULT_PORTS = {"http": 80, "https": 443}
STATEMENT = "Sign in to GridLedger"


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message that sign-in checks."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: str
    nonce: str
    issued_at: str
    scheme: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None


def parse(message: str) -> SiweMessage:
    """The message's fields (EIP-4361 layout: header, address, statement, `Name: value` lines)."""
    lines = message.split("\n")
    header = _HEADER.match(lines[0]) if lines else None
    if header is None or len(lines) < 2 or not re.fullmatch(r"0x[0-9a-fA-F]{40}", lines[1]):
        raise InvalidSiweMessage("not an EIP-4361 message")
    fields: dict[str, str] = {}
    for line in lines[2:]:
        name, sep, value = line.partition(": ")
        if sep and name in _FIELDS and _FIELDS[name] not in fields:
            fields[_FIELDS[name]] = value
    missing = [name for name in _REQUIRED if _FIELDS[name] not in fields]
    if missing:
        raise InvalidSiweMessage(f"missing field {missing[0]!r}")
    if not re.fullmatch(r"[0-9a-zA-Z]{8,64}", fields["nonce"]):
        raise InvalidSiweMessage("nonce must be 8-64 alphanumeric characters")
    return SiweMessage(domain=header["domain"], address=lines[1], scheme=header["scheme"], **fields)


def accepted_domains(settings: Settings, *, host: str) -> list[str]:
    """The domains a message may name: the configured allow-list, else the request's `host`."""
    return list(settings.siwe_domains) or ([host] if host else [])


def _authority(host: str, port: int | None, scheme: str) -> str:
    shown = host.lower()
    if ":" in shown:  # an IPv6 literal keeps its brackets
        shown = f"[{shown}]"
    return shown if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"


def check(message: SiweMessage, settings: Settings, *, host: str, now: datetime) -> None:
    """Domain, URI origin, time window and chain of a parsed message (see the module)."""
    domains = accepted_domains(settings, host=host)
    if message.domain.lower() not in {d.lower() for d in domains}:
        raise SiweDomainMismatch(
            f"domain {message.domain!r} is not where this API is served ({', '.join(domains)})",
            domain=message.domain,
            accepted=domains,
        )
    uri = urlsplit(message.uri)
    scheme = uri.scheme.lower()
    try:
        origin_matches = (
            scheme in _DEFAULT_PORTS
            and (message.scheme is None or message.scheme.lower() == scheme)
            and uri.hostname is not None
            and _authority(uri.hostname, uri.port, scheme)
            == _authority(*_host_port(message.domain), scheme)
        )
    except ValueError:  # a port that is not a number
        origin_matches = False
    if not origin_matches:
        raise SiweUriMismatch(
            f"URI {message.uri!r} is not on the domain {message.domain!r} (http or https)",
            uri=message.uri,
        )
    if message.version != "1":
        raise InvalidSiweMessage("version must be 1")
    if message.chain_id != str(settings.chain_id):
        raise SiweChainMismatch(
            f"chain id {message.chain_id} is not this API's chain {settings.chain_id}",
            chain_id=settings.chain_id,
        )
    window = settings.siwe_issued_at_window_s
    issued_at = _time(message.issued_at)
    if abs((now - issued_at).total_seconds()) > window:
        raise SiweNotCurrent(
            f"Issued At {message.issued_at} is more than {window} s from now "
            f"({now.strftime('%Y-%m-%dT%H:%M:%SZ')})",
            issued_at=message.issued_at,
        )
    if message.expiration_time is not None and _time(message.expiration_time) <= now:
        raise SiweNotCurrent(f"message expired at {message.expiration_time}")
    if message.not_before is not None and _time(message.not_before) > now:
        raise SiweNotCurrent(f"message is not valid before {message.not_before}")


def _host_port(domain: str) -> tuple[str, int | None]:
    """`host[:port]` (an IPv6 literal in brackets) as urlsplit would read it."""
    parts = urlsplit(f"//{domain}")
    if parts.hostname is None:
        raise ValueError(domain)
    return parts.hostname, parts.port


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidSiweMessage(f"bad timestamp {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def siwe_message(*, uri: str, chain_id: int, address: str, nonce: str, issued_at: datetime) -> str:
    """An EIP-4361 message as a wallet builds it for a page served at `uri` (its domain is the
    URI's host and port): what the simulator, the benchmarks and the tests sign."""
    parts = urlsplit(uri)
    domain = _authority(parts.hostname or "", parts.port, parts.scheme)
    return (
        f"{domain} wants you to sign in with your Ethereum account:\n{address}\n\n"
        f"{STATEMENT}\n\nURI: {uri}\nVersion: 1\nChain ID: {chain_id}\n"
        f"Nonce: {nonce}\nIssued At: {issued_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
