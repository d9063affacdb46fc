"""Decode raw logs of our contracts with their ABIs: topic0 → (contract, event) → args dict.

Addresses come out lower-case, bytes as 0x-hex, structs as dicts keyed by component name,
so rows compare equal whatever client produced them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic

AbiComponent = dict[str, Any]  # an ABI entry or parameter: {"name", "type", "components", ...}
Args = dict[str, Any]  # decoded event arguments by name


def abi_type(component: AbiComponent) -> str:
    """The canonical ABI type string, expanding tuples (structs) recursively."""
    kind = component["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in component["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def normalise(component: AbiComponent, value: Any) -> Any:
    kind = component["type"]
    if kind.startswith("tuple"):
        if kind.endswith("]"):
            item = {**component, "type": kind[: kind.rindex("[")]}
            return [normalise(item, v) for v in value]
        return {
            c["name"]: normalise(c, v) for c, v in zip(component["components"], value, strict=True)
        }
    if kind.endswith("]"):
        item = {**component, "type": kind[: kind.rindex("[")]}
        return [normalise(item, v) for v in value]
    if kind == "address":
        return value.lower()
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    if kind == "string":  # anyone can emit a NUL on chain; PostgreSQL text cannot store one
        return value.replace("\x00", "\ufffd")
    return value


_STATIC_KINDS = ("uint", "int", "address", "bool", "bytes")


def static_words(component: AbiComponent) -> int | None:
    """ABI words a static component occupies, or None for a dynamic one (string, T[], bytes)."""
    kind = component["type"]
    if kind == "tuple":
        total = 0
        for c in component["components"]:
            size = static_words(c)
            if size is None:
                return None
            total += size
        return total
    if kind.endswith("]") or kind in ("string", "bytes"):
        return None
    return 1 if kind.startswith(_STATIC_KINDS) else None


def static_size(component: AbiComponent) -> int:
    """ABI words of a component known to be static."""
    size = static_words(component)
    if size is None:
        raise ValueError(f"{component['type']} {component.get('name', '')} is dynamic")
    return size


def fast_decodable(component: AbiComponent) -> bool:
    """Static components, strings, bytes and arrays of one-word elements."""
    kind = component["type"]
    if static_words(component) is not None or kind in ("string", "bytes"):
        return True
    if kind.endswith("[]"):
        element = {**component, "type": kind[:-2]}
        return element["type"] != "tuple" and static_words(element) == 1
    return False


def decode_head(component: AbiComponent, data: bytes, word: int) -> Any:
    """Decode the component whose head starts at `word` (dynamic ones via their offset)."""
    kind = component["type"]
    if static_words(component) is not None:
        return decode_static(component, data, word)
    offset = int.from_bytes(data[word * 32 : word * 32 + 32], "big")
    length = int.from_bytes(data[offset : offset + 32], "big")
    start = offset + 32
    if kind == "string":  # anyone can emit any bytes: invalid UTF-8 and NUL become U+FFFD
        return data[start : start + length].decode("utf-8", "replace").replace("\x00", "\ufffd")
    if kind == "bytes":
        return "0x" + data[start : start + length].hex()
    element_kind = kind[:-2]
    end = start + 32 * length
    if element_kind.startswith("uint"):  # ids and amounts of a batch: the common case
        return [int.from_bytes(data[p : p + 32], "big") for p in range(start, end, 32)]
    if element_kind == "address":
        return ["0x" + data[p + 12 : p + 32].hex() for p in range(start, end, 32)]
    element = {**component, "type": element_kind}
    return [decode_static(element, data, start // 32 + i) for i in range(length)]


def decode_static(component: AbiComponent, data: bytes, word: int) -> Any:
    """Decode a static component straight from 32-byte words (eth_abi is ~20x slower)."""
    kind = component["type"]
    if kind == "tuple":
        result = {}
        for c in component["components"]:
            result[c["name"]] = decode_static(c, data, word)
            word += static_size(c)
        return result
    raw = data[word * 32 : word * 32 + 32]
    if kind == "address":
        return "0x" + raw[12:].hex()
    if kind == "bool":
        return raw[-1] == 1
    if kind.startswith("bytes"):
        return "0x" + raw[: int(kind[5:])].hex()
    return int.from_bytes(raw, "big", signed=kind.startswith("int"))


Column = list[str]  # one ABI word of every log of a group, as hex text (maybe 0x-prefixed)


def _words(column: Column) -> Column:
    return [value[-64:] for value in column]


def _uints(column: Column) -> list[Any]:
    return [int(value, 16) for value in column]


def _ints(column: Column) -> list[Any]:
    return [int.from_bytes(bytes.fromhex(w), "big", signed=True) for w in _words(column)]


def _addresses(column: Column) -> list[Any]:
    return ["0x" + value[-40:].lower() for value in column]


def _bools(column: Column) -> list[Any]:
    return [value[-2:] == "01" for value in column]


def _fixed_bytes(size: int) -> Callable[[Column], list[Any]]:
    chars = 2 * size
    return lambda column: ["0x" + value[-64:][:chars].lower() for value in column]


def column_converter(component: AbiComponent) -> Callable[[Column], list[Any]] | None:
    """Decoder of a column of one-word values of `component`'s type (as decode_static does);
    None for a type that is not a single word (tuple, array, string, bytes)."""
    kind = component["type"]
    if kind.endswith("]"):  # an array: an offset to its words, not a value
        return None
    if kind == "address":
        return _addresses
    if kind == "bool":
        return _bools
    if kind.startswith("uint"):
        return _uints
    if kind.startswith("int"):
        return _ints
    if kind.startswith("bytes") and kind != "bytes":
        return _fixed_bytes(int(kind[5:]))
    return None


def _data_word(data: list[str], index: int) -> Column:
    """Word `index` of every log's 0x-hex data."""
    start = 2 + 64 * index
    end = start + 64
    return [d[start:end] for d in data]


# (argument name, from the topics (else the data), topic or word index, column decoder)
ColumnPlan = tuple[tuple[str, bool, int, Callable[[Column], list[Any]]], ...]


def column_plan(indexed: Sequence[AbiComponent], data: Sequence[AbiComponent]) -> ColumnPlan | None:
    """How to decode an event column-wise: every argument one word, else None."""
    plan = []
    for in_topics, components in ((True, indexed), (False, data)):
        for index, component in enumerate(components):
            converter = column_converter(component)
            if converter is None:
                return None
            plan.append(
                (component["name"], in_topics, index + 1 if in_topics else index, converter)
            )
    return tuple(plan)


@dataclass(frozen=True)
class EventDecoder:
    contract: str
    name: str
    indexed: tuple[AbiComponent, ...]
    data: tuple[AbiComponent, ...]
    data_types: tuple[str, ...]
    static: bool
    columns: ColumnPlan | None = None  # set when every argument is one word

    @classmethod
    def from_abi(cls, contract: str, event_abi: AbiComponent) -> EventDecoder:
        inputs = event_abi["inputs"]
        data = tuple(i for i in inputs if not i.get("indexed"))
        return cls(
            contract=contract,
            name=event_abi["name"],
            indexed=tuple(i for i in inputs if i.get("indexed")),
            data=data,
            data_types=tuple(abi_type(i) for i in data),
            static=all(static_words(i) is not None for i in inputs if i.get("indexed"))
            and all(fast_decodable(i) for i in data),
            columns=column_plan([i for i in inputs if i.get("indexed")], data),
        )

    def decode_columns(self, topics: list[list[str]], data: list[str]) -> list[Args]:
        """The args of many logs of this event, decoded one argument (column) at a time;
        each log must have its topics and at least its words of data (see `fits`)."""
        if self.columns is None:
            raise ValueError(f"{self.name} has arguments of more than one word")
        names = [name for name, *_ in self.columns]
        columns = [
            convert([t[index] for t in topics] if in_topics else _data_word(data, index))
            for _, in_topics, index, convert in self.columns
        ]
        if not columns:  # an event without arguments
            return [{} for _ in data]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def fits(self, topics: list[str], data: str) -> bool:
        """A log column-wise decoding can take: its topics, and data of at least its words."""
        return len(topics) == self.topic_count and len(data) >= self.min_data_chars

    @property
    def topic_count(self) -> int:
        return 1 + len(self.indexed)

    @property
    def min_data_chars(self) -> int:
        return 2 + 64 * len(self.data)

    def decode(self, topics: list[str], data: str) -> Args:
        if self.static:
            return self._decode_static(topics, data)
        return self.decode_with_eth_abi(topics, data)

    def decode_with_eth_abi(self, topics: list[str], data: str) -> Args:
        args: Args = {}
        for component, topic in zip(self.indexed, topics[1:], strict=False):
            raw = bytes.fromhex(topic[2:])
            kind = abi_type(component)
            # Dynamic indexed values (string, bytes, arrays, structs) are only their hash.
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[component["name"]] = topic
            else:
                args[component["name"]] = normalise(component, decode([kind], raw)[0])
        values = decode(list(self.data_types), bytes.fromhex(data[2:])) if self.data else ()
        for component, value in zip(self.data, values, strict=True):
            args[component["name"]] = normalise(component, value)
        return args

    def _decode_static(self, topics: list[str], data: str) -> Args:
        args: Args = {}
        for component, topic in zip(self.indexed, topics[1:], strict=False):
            args[component["name"]] = decode_static(component, bytes.fromhex(topic[2:]), 0)
        raw = bytes.fromhex(data[2:])
        word = 0
        for component in self.data:
            args[component["name"]] = decode_head(component, raw, word)
            word += static_words(component) or 1
        return args


class LogDecoder:
    """Decoders for every event of every contract in a deployment, keyed by (address, topic0)."""

    def __init__(self, contracts: dict[str, tuple[str, list[AbiComponent]]]):
        """`contracts`: contract name → (address, abi)."""
        self._by_key: dict[tuple[str, str], EventDecoder] = {}
        # (topics, least data chars) a log of a column-decodable event needs, by key
        self._column_fit: dict[tuple[str, str], tuple[int, int]] = {}
        self.address_to_contract: dict[str, str] = {}
        for name, (address, abi) in contracts.items():
            self.address_to_contract[address.lower()] = name
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    # an ABI "event" entry is an ABIEvent; eth_typing cannot know from a dict
                    topic = "0x" + event_abi_to_log_topic(cast(ABIEvent, item)).hex()
                    decoder = EventDecoder.from_abi(name, item)
                    self._by_key[(address.lower(), topic)] = decoder
                    if decoder.columns is not None:
                        fit = (decoder.topic_count, decoder.min_data_chars)
                        self._column_fit[(address.lower(), topic)] = fit

    @property
    def addresses(self) -> list[str]:
        return list(self.address_to_contract)

    def decode_many(self, logs: Sequence[dict[str, Any]]) -> list[tuple[EventDecoder, Args] | None]:
        """`decode` of each of `logs`, in bulk: the logs of each one-word-arguments event are
        decoded column-wise (one pass per argument over them all), the others one by one."""
        decoded: list[tuple[EventDecoder, Args] | None] = [None] * len(logs)
        groups: dict[tuple[str, str], list[int]] = {}
        by_key, fits = self._by_key, self._column_fit
        for position, log in enumerate(logs):
            topics = log["topics"]
            if not topics:
                continue
            key = (log["address"].lower(), topics[0])
            fit = fits.get(key)
            if fit is not None and len(topics) == fit[0] and len(log["data"]) >= fit[1]:
                group = groups.get(key)
                if group is None:
                    groups[key] = [position]
                else:
                    group.append(position)
                continue
            decoder = by_key.get(key)
            if decoder is not None:
                decoded[position] = decoder, decoder.decode(topics, log["data"])
        for key, positions in groups.items():
            decoder = by_key[key]
            args = decoder.decode_columns(
                [logs[p]["topics"] for p in positions], [logs[p]["data"] for p in positions]
            )
            for position, values in zip(positions, args, strict=True):
                decoded[position] = decoder, values
        return decoded

    def decode(self, log: dict[str, Any]) -> tuple[EventDecoder, Args] | None:
        """(decoder, args) for a log of ours, None for an unknown event."""
        topics = log["topics"]
        if not topics:
            return None
        decoder = self._by_key.get((log["address"].lower(), topics[0]))
        if decoder is None:
            return None
        return decoder, decoder.decode(topics, log["data"])
