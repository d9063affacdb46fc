"""Decode raw logs of our contracts with their ABIs: topic0 → (contract, event) → args dict.

Addresses come out lower-case, bytes as 0x-hex, structs as dicts keyed by component name,
so rows compare equal whatever client produced them.
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode
from eth_utils import event_abi_to_log_topic


def abi_type(component: dict) -> str:
    """The canonical ABI type string, expanding tuples (structs) recursively."""
    kind = component["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in component["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def normalise(component: dict, value):
    kind = component["type"]
    if kind.startswith("tuple"):
        if kind.endswith("]"):
            item = {**component, "type": kind[: kind.rindex("[")]}
            return [normalise(item, v) for v in value]
        return {c["name"]: normalise(c, v) for c, v in zip(component["components"], value)}
    if kind.endswith("]"):
        item = {**component, "type": kind[: kind.rindex("[")]}
        return [normalise(item, v) for v in value]
    if kind == "address":
        return value.lower()
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


@dataclass(frozen=True)
class EventDecoder:
    contract: str
    name: str
    indexed: tuple[dict, ...]
    data: tuple[dict, ...]
    data_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, contract: str, event_abi: dict) -> "EventDecoder":
        inputs = event_abi["inputs"]
        data = tuple(i for i in inputs if not i.get("indexed"))
        return cls(
            contract=contract,
            name=event_abi["name"],
            indexed=tuple(i for i in inputs if i.get("indexed")),
            data=data,
            data_types=tuple(abi_type(i) for i in data),
        )

    def decode(self, topics: list[str], data: str) -> dict:
        args = {}
        for component, topic in zip(self.indexed, topics[1:]):
            raw = bytes.fromhex(topic[2:])
            kind = abi_type(component)
            # Dynamic indexed values (string, bytes, arrays, structs) are only their hash.
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[component["name"]] = topic
            else:
                args[component["name"]] = normalise(component, decode([kind], raw)[0])
        values = decode(list(self.data_types), bytes.fromhex(data[2:])) if self.data else ()
        for component, value in zip(self.data, values):
            args[component["name"]] = normalise(component, value)
        return args


class LogDecoder:
    """Decoders for every event of every contract in a deployment, keyed by (address, topic0)."""

    def __init__(self, contracts: dict[str, tuple[str, list[dict]]]):
        """`contracts`: contract name → (address, abi)."""
        self._by_key: dict[tuple[str, str], EventDecoder] = {}
        self.address_to_contract = {}
        for name, (address, abi) in contracts.items():
            self.address_to_contract[address.lower()] = name
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    topic = "0x" + event_abi_to_log_topic(item).hex()
                    self._by_key[(address.lower(), topic)] = EventDecoder.from_abi(name, item)

    @property
    def addresses(self) -> list[str]:
        return list(self.address_to_contract)

    def decode(self, log: dict) -> tuple[EventDecoder, dict] | None:
        """(decoder, args) for a log of ours, None for an unknown event."""
        topics = log["topics"]
        if not topics:
            return None
        decoder = self._by_key.get((log["address"].lower(), topics[0]))
        if decoder is None:
            return None
        return decoder, decoder.decode(topics, log["data"])
