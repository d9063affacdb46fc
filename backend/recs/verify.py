"""Check a certificate as a third party: with the evidence the API serves
(`GET /v1/recs/certificates/{id}/evidence`) and a chain RPC, trusting neither our database nor
our API for anything the chain or the signatures can say.

The chain of checks: the `CertificateIssued` log in the canonical chain carries the served
evidence root and amount → each served reading's EIP-712 digest, recomputed here (and by
`RECRegistry.readingDigest`), is the served leaf → its Merkle proof leads to the root → its
signature recovers to the meter's approved key or to a metering data provider, here AND by
`RECRegistry.isValidReading` → the meter is approved on chain and belongs to the device's
owner → the proven readings' export covers the certificate's Wh. Every check is reported,
failing or not, so one run shows everything that is wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.types import RPCEndpoint

from backend.meters.signing import SignedValues, reading_digest, reading_signer, struct_hash
from backend.recs.evidence import verify_proof

APPROVED = 1  # IRECRegistry.MeterStatus.Approved
METER_DATA_PROVIDER_ROLE = keccak(text="METER_DATA_PROVIDER_ROLE")
READING_TUPLE = "(bytes32,uint64,uint32,uint64,uint64)"  # IRECRegistry.MeterReading
IS_VALID_READING = keccak(text=f"isValidReading({READING_TUPLE},bytes)")[:4]
READING_DIGEST = keccak(text=f"readingDigest({READING_TUPLE})")[:4]
ISSUED_DATA = ("uint64", "uint64", "uint64", "bytes32")  # its non-indexed fields
ISSUED_TOPIC = keccak(text="CertificateIssued(uint256,uint32,address,uint64,uint64,uint64,bytes32)")


@dataclass(frozen=True)
class Check:
    """One verdict: `name` says what was checked, `detail` what was found (the reason if not ok)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(checks: list[Check]) -> bool:
    return bool(checks) and all(c.ok for c in checks)


def _lower(value: object) -> str:
    return str(value or "").lower()


def _hex(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%MZ")


class Verifier:
    """The checks of one certificate's `evidence` against the chain behind `w3`."""

    def __init__(self, evidence: dict[str, Any], w3: Web3, registry: str | None = None) -> None:
        self.evidence = evidence
        self.w3 = w3
        self.address = to_checksum_address(registry or evidence["contract"])
        self.checks: list[Check] = []
        self.root: bytes | None = None  # the evidence root of the event on chain
        self.meter: tuple[Any, ...] | None = None  # meter(meterId) on chain
        self.chain_id = int(evidence["chain_id"])
        self.seen: set[bytes] = set()  # digests of the readings checked so far
        self.code: dict[str, bool] = {}  # whether an address is a contract (ERC-1271 key)
        self.views: dict[bytes, Any] = {}  # call data -> decoded answer (`_view`)

    def check(self, name: str, test: Callable[[], tuple[bool, str]]) -> bool:
        """Run one check; an RPC failure or a malformed document fails it with the reason."""
        try:
            ok, detail = test()
        except (Web3Exception, DecodingError, ValueError, KeyError, TypeError, OSError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {str(exc)[:160]}"
        self.checks.append(Check(name, ok, detail))
        return ok

    def run(self) -> list[Check]:
        if not self.check("chain", self._chain):
            return self.checks  # nothing below means anything on another chain
        readings = [(served, self._values(served)) for served in self.evidence["readings"]]
        self._prefetch([(served, values) for served, values in readings if values is not None])
        self.check("issuance event", self._event)
        self.check("certificate", self._certificate)
        self.check("device", self._device)
        self.check("meter", self._meter)
        proven_export = 0
        for index, (served, values) in enumerate(readings, 1):
            proven_export += self._reading(index, served, values)
        self.check("export", lambda: self._export(proven_export))
        return self.checks

    # --------------------------------------------------------------- certificate level

    def _chain(self) -> tuple[bool, str]:
        actual = self.w3.eth.chain_id
        served = _lower(self.evidence["contract"])
        if actual != self.chain_id:
            return False, f"the RPC is chain {actual}, the evidence is for chain {self.chain_id}"
        if served != self.address.lower():
            return False, f"the API names registry {served}, you asked for {self.address}"
        if not self.w3.eth.get_code(self.address):
            return False, f"no contract at {self.address} on chain {actual}"
        return True, f"chain {actual}, RECRegistry {self.address}"

    def _event(self) -> tuple[bool, str]:
        e = self.evidence
        try:
            receipt = self.w3.eth.get_transaction_receipt(e["tx_hash"])
        except TransactionNotFound:
            return False, f"transaction {e['tx_hash']} is not in the chain"
        cert_topic = int(e["certificate_id"]).to_bytes(32, "big")
        logs = [
            log
            for log in receipt["logs"]
            if log["address"].lower() == self.address.lower()
            and bytes(log["topics"][0]) == ISSUED_TOPIC
            and bytes(log["topics"][1]) == cert_topic
        ]
        if not logs:
            return False, f"transaction {e['tx_hash']} issued no certificate {e['certificate_id']}"
        log = logs[0]
        start, end, volume, root = abi_decode(ISSUED_DATA, bytes(log["data"]))
        args = {
            "deviceId": int.from_bytes(bytes(log["topics"][2]), "big"),
            "periodStart": start,
            "periodEnd": end,
            "volumeWh": volume,
            "evidenceRoot": _hex(root),
        }
        self.root = bytes(root)
        expected = {
            "evidenceRoot": _lower(e["evidence_root"]),
            "volumeWh": int(e["volume_wh"]),
            "deviceId": int(e["device_id"]),
            "periodStart": int(e["period_start"]),
            "periodEnd": int(e["period_end"]),
        }
        wrong = [
            f"{k} is {args[k]} on chain, served {v}" for k, v in expected.items() if args[k] != v
        ]
        if e.get("log_index") is not None and log["logIndex"] != int(e["log_index"]):
            wrong.append(f"log index is {log['logIndex']}, served {e['log_index']}")
        if wrong:
            return False, "; ".join(wrong)
        return True, (
            f"CertificateIssued in block {receipt['blockNumber']} (log {log['logIndex']}): "
            f"{args['volumeWh']} Wh, evidence root {_hex(self.root)}"
        )

    def _certificate(self) -> tuple[bool, str]:
        (view,) = self._view(*_certificate_call(int(self.evidence["certificate_id"])))
        volume, revoked = view[6], view[8]
        if revoked:
            return False, "revoked on chain"
        return True, f"live on chain, {volume} Wh"

    def _device(self) -> tuple[bool, str]:
        (device,) = self._view(*_device_call(int(self.evidence["device_id"])))
        owner, meter_id = to_checksum_address(device[0]), _hex(device[6])
        if meter_id != _lower(self.evidence["meter_id"]):
            return False, (
                f"device {self.evidence['device_id']} is on meter {meter_id}, "
                f"served {self.evidence['meter_id']}"
            )
        if owner.lower() != _lower(self.evidence["device_owner"]):
            return False, f"device owner is {owner}, served {self.evidence['device_owner']}"
        return True, f"device {self.evidence['device_id']} of {owner} on meter {meter_id}"

    def _meter(self) -> tuple[bool, str]:
        (device,) = self._view(*_device_call(int(self.evidence["device_id"])))
        meter_id = _bytes(self.evidence["meter_id"])
        (meter,) = self._view(*_meter_call(meter_id))
        self.meter = owner, status, capacity, key = (
            to_checksum_address(meter[0]),
            meter[1],
            meter[2],
            to_checksum_address(meter[3]),
        )
        problems = []
        if status != APPROVED:
            problems.append(f"status is {('pending', 'approved', 'suspended')[status]}")
        if owner.lower() != device[0].lower():
            problems.append(
                f"meter belongs to {owner}, the device's owner is {to_checksum_address(device[0])}"
            )
        if problems:
            return False, f"meter {self.evidence['meter_id']}: " + "; ".join(problems)
        return True, f"approved by the registrar, {capacity} W, key {key}, owner {owner}"

    def _export(self, proven: int) -> tuple[bool, str]:
        volume = int(self.evidence["volume_wh"])
        if proven < volume:
            return False, f"proven readings export {proven} Wh, the certificate is for {volume} Wh"
        return True, f"proven readings export {proven} Wh >= {volume} Wh certified"

    # ------------------------------------------------------------------ reading level

    @staticmethod
    def _values(served: dict[str, Any]) -> SignedValues | None:
        """The signed values of a served reading; None if they are missing or malformed."""
        try:
            message = served["reading"]
            values = SignedValues(
                meter_id=_bytes(message["meterId"]),
                interval_start=int(message["intervalStart"]),
                interval_seconds=int(message["intervalSeconds"]),
                import_wh=int(message["importWh"]),
                export_wh=int(message["exportWh"]),
            )
            struct_hash(values)  # raises ValueError for a value that does not fit its type
        except (KeyError, TypeError, ValueError):
            return None
        return values

    def _prefetch(self, readings: list[tuple[dict[str, Any], SignedValues]]) -> None:
        """The certificate's, device's and meter's views and every reading's `readingDigest`
        and `isValidReading` in one JSON-RPC batch (one round trip per certificate instead of
        two per reading); `_view` answers from it, and asks the node itself for anything
        missing."""
        e = self.evidence
        calls = [_digest_call(values) for _, values in readings]
        with contextlib.suppress(KeyError, TypeError, ValueError):  # the checks report them
            calls += [
                _certificate_call(int(e["certificate_id"])),
                _device_call(int(e["device_id"])),
                _meter_call(_bytes(e["meter_id"])),
            ]
        for served, values in readings:
            signature = served.get("signature")
            with contextlib.suppress(TypeError, ValueError):  # the check reports a bad one
                if isinstance(signature, str):
                    calls.append(_valid_call(values, _bytes(signature)))
        if not calls:
            return
        requests = [
            (RPCEndpoint("eth_call"), [{"to": self.address, "data": _hex(data)}, "latest"])
            for data, _ in calls
        ]
        try:
            answers = cast(HTTPProvider, self.w3.provider).make_batch_request(requests)
        except (Web3Exception, ValueError, OSError, AttributeError):
            return  # each check asks on its own, and reports what fails
        if not isinstance(answers, list) or len(answers) != len(calls):
            return  # the node refused the batch: the same
        for (data, output), answer in zip(calls, answers, strict=True):
            with contextlib.suppress(KeyError, TypeError, ValueError, DecodingError):
                self.views[data] = abi_decode([output], _bytes(answer["result"]))

    def _reading(self, index: int, served: dict[str, Any], values: SignedValues | None) -> int:
        """The three checks of one reading; its export Wh if its digest and proof hold."""
        if values is None:
            self.check(f"reading #{index}", lambda: (False, "missing or malformed values"))
            return 0
        label = f"reading {_when(values.interval_start)}"
        digest = reading_digest(values, self.chain_id, self.address)
        holds = self.check(f"{label} digest", lambda: self._digest(served, values, digest))
        holds &= self.check(f"{label} proof", lambda: self._proof(served, digest))
        self.check(f"{label} signature", lambda: self._signature(served, values))
        return values.export_wh if holds else 0

    def _digest(
        self, served: dict[str, Any], values: SignedValues, digest: bytes
    ) -> tuple[bool, str]:
        e = self.evidence
        if _hex(values.meter_id) != _lower(e["meter_id"]):
            return False, f"a reading of meter {_hex(values.meter_id)}, not the certificate's"
        if not int(e["period_start"]) <= values.interval_start < int(e["period_end"]):
            return False, "the interval is outside the certificate's period"
        (on_chain,) = self._view(*_digest_call(values))
        if on_chain != digest:
            return False, f"RECRegistry.readingDigest is {_hex(on_chain)}, here {_hex(digest)}"
        if digest in self.seen:
            return False, "the same reading is served twice (its export would count twice)"
        self.seen.add(digest)
        if _lower(served["digest"]) != _hex(digest):
            return False, (
                f"the values hash to {_hex(digest)}, served digest {served['digest']} "
                "(the reading was altered)"
            )
        return True, f"{values.export_wh} Wh export, digest {_hex(digest)}"

    def _proof(self, served: dict[str, Any], digest: bytes) -> tuple[bool, str]:
        if self.root is None:
            return False, "no evidence root on chain to prove against"
        proof = [_bytes(p) for p in served["proof"]]
        if not verify_proof(proof, self.root, digest):
            return False, "the Merkle proof does not lead to the certificate's evidence root"
        return True, f"{len(proof)} sibling hashes lead to the evidence root"

    def _signature(self, served: dict[str, Any], values: SignedValues) -> tuple[bool, str]:
        key = self.meter[3] if self.meter else None
        if served.get("signature") is None:
            signer = to_checksum_address(served["signer"])
            if self._provider(signer):
                return True, (
                    f"posted unsigned by metering data provider {signer} "
                    "(holds METER_DATA_PROVIDER_ROLE on chain; no signature to check)"
                )
            return False, f"no signature, and {signer} is no metering data provider on chain"
        signature = _bytes(served["signature"])
        (on_chain,) = self._view(*_valid_call(values, signature))
        recovered = reading_signer(values, signature, self.chain_id, self.address)
        if key is not None and self._has_code(key):
            local_ok, who = True, f"contract key {key} (ERC-1271: checked on chain)"
        elif recovered is None:
            local_ok, who = False, "a malformed signature"
        elif key is not None and recovered == key:
            local_ok, who = True, f"the meter's key {recovered}"
        elif self._provider(recovered):
            local_ok, who = True, f"metering data provider {recovered}"
        else:
            local_ok, who = False, f"{recovered}, neither the meter's key {key} nor a provider"
        if not local_ok:
            return False, f"recovers to {who}"
        if not on_chain:
            return False, f"recovers to {who}, but RECRegistry.isValidReading says no"
        return True, f"signed by {who}; RECRegistry.isValidReading agrees"

    def _view(self, data: bytes, output: str) -> Any:
        """A view call of the registry encoded here (the per-reading calls skip web3's ABI
        lookup, most of the time of a contract call); answered from `_prefetch` if there."""
        if data not in self.views:
            raw = self.w3.eth.call({"to": self.address, "data": data})
            self.views[data] = abi_decode([output], bytes(raw))
        return self.views[data]

    def _has_code(self, address: str) -> bool:
        if address not in self.code:
            self.code[address] = bool(self.w3.eth.get_code(to_checksum_address(address)))
        return self.code[address]

    def _provider(self, address: str) -> bool:
        data = _selector("hasRole(bytes32,address)") + abi_encode(
            ["bytes32", "address"], [METER_DATA_PROVIDER_ROLE, address]
        )
        (holds,) = self._view(data, "bool")
        return bool(holds)


def _certificate_call(certificate_id: int) -> tuple[bytes, str]:
    """`certificate(id)`: IRECRegistry.CertificateView."""
    return _selector("certificate(uint256)") + abi_encode(["uint256"], [certificate_id]), (
        "(uint32,bytes32,bytes32,uint64,uint64,uint64,uint64,uint64,bool)"
    )


def _device_call(device_id: int) -> tuple[bytes, str]:
    """`device(id)`: IRECRegistry.Device (owner, status, ..., meterId)."""
    return _selector("device(uint32)") + abi_encode(["uint32"], [device_id]), (
        "(address,uint8,bytes32,uint64,bytes32,uint64,bytes32)"
    )


def _meter_call(meter_id: bytes) -> tuple[bytes, str]:
    """`meter(meterId)`: IRECRegistry.MeterRecord (owner, status, capacityW, signingKey)."""
    return _selector("meter(bytes32)") + abi_encode(["bytes32"], [meter_id]), (
        "(address,uint8,uint64,address)"
    )


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _digest_call(values: SignedValues) -> tuple[bytes, str]:
    """`readingDigest(reading)`: the call data and the output type."""
    return READING_DIGEST + abi_encode([READING_TUPLE], [values.as_tuple()]), "bytes32"


def _valid_call(values: SignedValues, signature: bytes) -> tuple[bytes, str]:
    """`isValidReading(reading, signature)`: the call data and the output type."""
    data = abi_encode([READING_TUPLE, "bytes"], [values.as_tuple(), signature])
    return IS_VALID_READING + data, "bool"


def verify_evidence(evidence: dict[str, Any], w3: Web3, registry: str | None = None) -> list[Check]:
    """Every check of a certificate's served `evidence` against the chain of `w3`; `registry`
    pins the RECRegistry address instead of taking the one the API names."""
    return Verifier(evidence, w3, registry).run()


def verify_certificate(
    api_url: str, rpc_url: str, certificate_id: int, registry: str | None = None
) -> list[Check]:
    """Fetch the evidence from the API at `api_url` and check it against `rpc_url`."""
    reply = httpx.get(
        f"{api_url.rstrip('/')}/v1/recs/certificates/{certificate_id}/evidence", timeout=30
    )
    reply.raise_for_status()
    return verify_evidence(reply.json(), rpc_web3(rpc_url), registry)


def rpc_web3(rpc_url: str) -> Web3:
    """web3 on `rpc_url`, caching `eth_chainId` (web3 asks for it before every call)."""
    return Web3(
        Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}, cache_allowed_requests=True)
    )
