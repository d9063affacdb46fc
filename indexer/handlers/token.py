"""Payment-token (GridUSD) balances from ERC-20 Transfer events."""

from indexer.handlers import Log, on
from indexer.mirror import MirrorState

ZERO = "0x" + "00" * 20


def _accounts(log: Log):
    return [("token_balances", (a,)) for a in (log.args["from"], log.args["to"]) if a != ZERO]


def add_to_balance(state: MirrorState, account: str, delta: int, block_number: int) -> None:
    row = state.get("token_balances", account)
    balance = (row["balance"] if row else 0) + delta
    state.put(
        "token_balances", {"account": account, "balance": balance, "block_number": block_number}
    )


@on("GridUSD", "Transfer", touches=_accounts)
def transfer(state: MirrorState, log: Log) -> None:
    value = log.args["value"]
    if log.args["from"] != ZERO:
        add_to_balance(state, log.args["from"], -value, log.block_number)
    if log.args["to"] != ZERO:
        add_to_balance(state, log.args["to"], value, log.block_number)
