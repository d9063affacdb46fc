"""Payment-token (GridUSD) balances from ERC-20 Transfer events."""

from indexer.handlers import ZERO_ADDRESS, Log, on
from indexer.mirror import MirrorState, TableKey


def _accounts(log: Log) -> list[TableKey]:
    return [
        ("token_balances", (a,)) for a in (log.args["from"], log.args["to"]) if a != ZERO_ADDRESS
    ]


def add_to_balance(state: MirrorState, log: Log, *, account: str, delta: int) -> None:
    row = state.get("token_balances", account)
    balance = (row["balance"] if row else 0) + delta
    state.put(
        "token_balances", {"account": account, "balance": balance, "block_number": log.block_number}
    )


@on("GridUSD", "Transfer", touches=_accounts)
def transfer(state: MirrorState, log: Log) -> None:
    value = log.args["value"]
    if log.args["from"] != ZERO_ADDRESS:
        add_to_balance(state, log, account=log.args["from"], delta=-value)
    if log.args["to"] != ZERO_ADDRESS:
        add_to_balance(state, log, account=log.args["to"], delta=value)
