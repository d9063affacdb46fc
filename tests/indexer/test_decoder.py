"""The fast static decoder agrees with eth_abi on every event of our contracts."""

import random

from eth_abi import encode
from eth_utils import event_abi_to_log_topic

from backend.chain.artifacts import load_artifact
from indexer.decoder import EventDecoder, LogDecoder, abi_type


def random_value(component: dict, rng: random.Random):
    kind = component["type"]
    if kind == "tuple":
        return tuple(random_value(c, rng) for c in component["components"])
    if kind.endswith("]"):
        item = {**component, "type": kind[: kind.rindex("[")]}
        return [random_value(item, rng) for _ in range(rng.randrange(0, 4))]
    if kind == "address":
        return "0x" + rng.randbytes(20).hex()
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "string":
        return "beneficiary-" + str(rng.random())
    if kind == "bytes":
        return rng.randbytes(rng.randrange(0, 40))
    if kind.startswith("bytes"):
        return rng.randbytes(int(kind[5:]))
    bits = int(kind.lstrip("uint") or 256)
    if kind.startswith("int"):
        return rng.randrange(-(2 ** (bits - 1)), 2 ** (bits - 1))
    return rng.randrange(0, 2**bits)


def test_static_fast_path_matches_eth_abi_for_all_events():
    rng = random.Random(5)
    checked = 0
    for name in ("EnergyMarket", "RECRegistry", "GridUSD", "DemandResponse"):
        for item in load_artifact(name).abi:
            if item.get("type") != "event":
                continue
            decoder = EventDecoder.from_abi(name, item)
            for _ in range(20):
                values = {i["name"]: random_value(i, rng) for i in item["inputs"]}
                topics = ["0x" + "00" * 32] + [
                    "0x" + encode([abi_type(i)], [values[i["name"]]]).hex()
                    for i in decoder.indexed
                    if not abi_type(i).startswith("(")
                ]
                data = (
                    "0x"
                    + encode(
                        list(decoder.data_types), [values[i["name"]] for i in decoder.data]
                    ).hex()
                )
                assert decoder.decode(topics, data) == decoder.decode_with_eth_abi(topics, data), (
                    item["name"]
                )
                checked += decoder.static
    assert checked > 100  # most of our events take the fast path


def test_arrays_of_every_word_type_match_eth_abi():
    """uint and address arrays are sliced directly; other element types go word by word."""
    rng = random.Random(11)
    kinds = ["uint256[]", "uint64[]", "address[]", "int256[]", "bool[]", "bytes32[]", "string"]
    item = {
        "type": "event",
        "name": "Arrays",
        "anonymous": False,
        "inputs": [{"name": f"a{i}", "type": k, "indexed": False} for i, k in enumerate(kinds)],
    }
    decoder = EventDecoder.from_abi("Test", item)
    assert decoder.static  # the fast path is what this checks
    for _ in range(50):
        values = [random_value(i, rng) for i in item["inputs"]]
        data = "0x" + encode(kinds, values).hex()
        topics = ["0x" + "00" * 32]
        assert decoder.decode(topics, data) == decoder.decode_with_eth_abi(topics, data)


def test_bulk_column_wise_decoding_matches_one_by_one():
    """decode_many (column-wise per event type) gives what decode gives, log for log, in order,
    including unknown events, malformed (short) data and logs without topics."""
    rng = random.Random(7)
    contracts = {}
    logs = []
    for n, name in enumerate(("EnergyMarket", "RECRegistry", "GridUSD")):
        address = "0x" + f"{n + 1:040x}"
        abi = load_artifact(name).abi
        contracts[name] = (address, abi)
        for item in abi:
            if item.get("type") != "event" or item.get("anonymous"):
                continue
            decoder = EventDecoder.from_abi(name, item)
            topic0 = "0x" + event_abi_to_log_topic(item).hex()
            for _ in range(15):
                values = {i["name"]: random_value(i, rng) for i in item["inputs"]}
                topics = [topic0] + [
                    "0x" + encode([abi_type(i)], [values[i["name"]]]).hex()
                    for i in decoder.indexed
                    if not abi_type(i).startswith("(")
                ]
                data = encode(list(decoder.data_types), [values[i["name"]] for i in decoder.data])
                logs.append(
                    {
                        "address": address.upper().replace("0X", "0x"),
                        "topics": topics,
                        "data": "0x" + data.hex(),
                    }
                )
    assert sum(1 for log in logs if log["data"]) > 300
    logs.append({"address": "0x" + "ee" * 20, "topics": logs[0]["topics"], "data": "0x"})
    logs.append({"address": logs[0]["address"], "topics": [], "data": "0x"})
    logs.append({**logs[1], "data": logs[1]["data"][:-64]})  # one word short
    rng.shuffle(logs)
    decoder = LogDecoder(contracts)
    bulk = decoder.decode_many(logs)
    single = [decoder.decode(log) for log in logs]
    assert [b and (b[0].name, b[1]) for b in bulk] == [s and (s[0].name, s[1]) for s in single]
    columnar = {d.name for d in (b[0] for b in bulk if b) if d.columns is not None}
    assert {"CertificateIssued", "Transfer"} <= columnar  # the backfill's bulk of events


def test_a_nul_in_an_event_string_is_stored_as_a_replacement_character():
    """Anyone can claim a certificate for a beneficiary holding NUL or invalid UTF-8 straight on
    chain; the mirror must still insert the row (PostgreSQL text has no NUL), so both become
    U+FFFD instead of stopping the indexer."""
    (claimed,) = [
        e
        for e in load_artifact("RECRegistry").abi
        if e.get("type") == "event" and e["name"] == "CertificateClaimed"
    ]
    decoder = EventDecoder.from_abi("RECRegistry", claimed)
    rng = random.Random(7)
    values = {c["name"]: random_value(c, rng) for c in claimed["inputs"]}
    values["beneficiary"] = "ACME\x00GmbH"
    topics = ["0x" + event_abi_to_log_topic(claimed).hex()] + [
        "0x" + encode([abi_type(c)], [values[c["name"]]]).hex() for c in decoder.indexed
    ]
    data = encode(list(decoder.data_types), [values[c["name"]] for c in decoder.data])
    assert decoder.decode(topics, "0x" + data.hex())["beneficiary"] == "ACME\ufffdGmbH"
    invalid_utf8 = data.replace(b"ACME\x00GmbH", b"ACME\xffGmbH")
    assert decoder.decode(topics, "0x" + invalid_utf8.hex())["beneficiary"] == "ACME\ufffdGmbH"
