"""`python -m backend.admin` (`gridledger-admin`): role changes through the admin timelock.

    propose grant-role ROLE ACCOUNT [--contract NAME]   schedule grantRole after the delay
    propose revoke-role ROLE ACCOUNT [--contract NAME]  schedule revokeRole after the delay
    list                                                pending operations and their ETA
    execute ID                                          run an operation whose delay has passed
    cancel ID                                           drop a pending operation

Signs with GRIDLEDGER_ADMIN_PRIVATE_KEY (the timelock's proposer, executor and canceller),
a key the API never holds. Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from eth_account.signers.local import LocalAccount

from backend.admin.timelock import ROLE_NAMES, Operation, OperationState, Timelock
from backend.chain.contracts import chain_for
from backend.chain.transactions import signer, tx_hash_hex
from backend.cli.main import OneLineErrors as CliErrors
from backend.core.config import Settings
from backend.core.errors import ConfigurationError, Conflict, GridLedgerError
from backend.core.startup import settings_or_exit


class OneLineErrors(CliErrors):
    """A GridLedgerError anywhere below → `error: <detail>` on stderr and exit code 1."""

    errors = (GridLedgerError,)


app = typer.Typer(
    name="gridledger-admin",
    help=__doc__,
    cls=OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
propose = typer.Typer(help="Schedule a role change on the timelock.", no_args_is_help=True)
app.add_typer(propose, name="propose")

ContractOption = Annotated[
    str | None,
    typer.Option(
        "--contract",
        help="GridUSD, RECRegistry, EnergyMarket, DemandResponse or Timelock "
        "(default: the role's contract).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON object per operation.")]


def _settings() -> Settings:
    return settings_or_exit("admin", governance=True)


def _admin(settings: Settings) -> LocalAccount:
    key = settings.admin_private_key.get_secret_value()
    if not key:
        raise ConfigurationError("set GRIDLEDGER_ADMIN_PRIVATE_KEY (the timelock's proposer key)")
    return signer(key)


def _timelock(settings: Settings) -> Timelock:
    return Timelock(chain_for(settings))


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show(op: Operation, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(op.as_json()))
    else:
        typer.echo(
            f"{op.id}  {op.state.name.lower():<7}  eta {_when(op.eta)}  "
            f"{op.contract}.{op.description}"
        )


def _propose_role(
    action: Literal["grant", "revoke"],
    role: str,
    account: str,
    contract: str | None,
    as_json: bool,
) -> None:
    settings = _settings()
    timelock = _timelock(settings)
    target, data = timelock.role_call(action, role, account, contract)
    _show(timelock.propose(_admin(settings), target, data), as_json)


RoleArgument = Annotated[str, typer.Argument(help=f"One of {', '.join(ROLE_NAMES)}.")]
AccountArgument = Annotated[str, typer.Argument(help="The address gaining or losing the role.")]


def _role_command(action: Literal["grant", "revoke"]) -> None:
    def command(
        role: RoleArgument,
        account: AccountArgument,
        contract: ContractOption = None,
        as_json: JsonFlag = False,
    ) -> None:
        _propose_role(action, role, account, contract, as_json)

    command.__doc__ = f"Propose {action}Role(ROLE, ACCOUNT); executable after the delay."
    propose.command(f"{action}-role")(command)


_role_command("grant")
_role_command("revoke")


@app.command("list")
def list_pending(as_json: JsonFlag = False) -> None:
    """Operations waiting for their delay or ready to execute, soonest first."""
    operations = _timelock(_settings()).pending()
    for op in operations:
        _show(op, as_json)
    if not operations and not as_json:
        typer.echo("no pending operations")


@app.command()
def execute(operation_id: Annotated[str, typer.Argument(help="The operation id.")]) -> None:
    """Execute a ready operation (its ETA has passed)."""
    settings = _settings()
    timelock = _timelock(settings)
    op = timelock.operation(operation_id)
    if op.state == OperationState.WAITING:
        raise Conflict(f"operation {op.id} is not ready: its delay ends {_when(op.eta)}")
    receipt = timelock.execute(_admin(settings), operation_id)
    typer.echo(f"executed {operation_id} in {tx_hash_hex(receipt)}")


@app.command()
def cancel(operation_id: Annotated[str, typer.Argument(help="The operation id.")]) -> None:
    """Cancel a pending operation."""
    settings = _settings()
    receipt = _timelock(settings).cancel(_admin(settings), operation_id)
    typer.echo(f"cancelled {operation_id} in {tx_hash_hex(receipt)}")
