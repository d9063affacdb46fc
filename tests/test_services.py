"""The test services are real: Redis per-test db, and an Anvil node from npm."""


def test_redis_is_flushed_per_test_first(redis_client):
    assert redis_client.dbsize() == 0
    redis_client.set("gridledger:probe", "1")
    assert redis_client.get("gridledger:probe") == b"1"


def test_redis_is_flushed_per_test_second(redis_client):
    assert redis_client.get("gridledger:probe") is None


def test_anvil_mines_on_request(anvil):
    assert int(anvil.request("eth_chainId"), 16) == 31337
    before = int(anvil.request("eth_blockNumber"), 16)
    anvil.request("anvil_mine", [3])
    assert int(anvil.request("eth_blockNumber"), 16) == before + 3
