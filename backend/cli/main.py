"""`gridledger`: status, accounts, orders, RECs, meter readings, settlement and payouts over the
REST API.

Every command prints a short human summary, or the API's JSON with `--json`. Errors are one
line on stderr (the RFC 9457 problem's title, detail, status and type) and exit code 1.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import Context  # typer vendors click: TyperGroup.invoke takes this type
from typer.core import TyperGroup

from backend.cli.client import Api, CliError, config_path, load_config, save_config


class OneLineErrors(TyperGroup):
    """CliError anywhere below → `error: <message>` on stderr and exit code 1, no traceback."""

    errors: tuple[type[Exception], ...] = (CliError,)  # `gridledger-admin`: domain errors

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except self.errors as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="gridledger",
    help=__doc__,
    cls=OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
accounts = typer.Typer(help="Accounts.", no_args_is_help=True)
orders = typer.Typer(help="Orders on the energy and REC markets.", no_args_is_help=True)
recs = typer.Typer(
    help="Renewable energy certificates: list, transfer, retire.", no_args_is_help=True
)
meters = typer.Typer(help="Smart-meter readings.", no_args_is_help=True)
settlement = typer.Typer(help="Settlement of energy trades.", no_args_is_help=True)
energy = typer.Typer(help="My market balance and payouts.", no_args_is_help=True)
for sub, name in (
    (accounts, "accounts"),
    (orders, "orders"),
    (recs, "recs"),
    (meters, "meters"),
    (settlement, "settlement"),
    (energy, "energy"),
):
    app.add_typer(sub, name=name)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON instead of a summary.")
]


class State:
    api_url: str | None = None
    json: bool = False


state = State()


@app.callback()
def main(
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", envvar="GRIDLEDGER_API_URL", help="Base URL of the GridLedger API."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    state.api_url = api_url
    state.json = as_json


def api() -> Api:
    return Api.from_environment(state.api_url)


def out(data: object, summary: str | list[str], as_json: bool) -> None:
    if as_json or state.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        typer.echo("\n".join(summary) if isinstance(summary, list) else summary)


def scaled(value: int | str, decimals: int) -> str:
    """An amount (the API sends them as decimal strings, backend.core.json_ints) divided by
    10^decimals exactly, without trailing zeros."""
    text = f"{Decimal(int(value)).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def kwh(wh: int | str | None) -> str:
    return "–" if wh is None else f"{scaled(wh, 3)} kWh"


def gusd(units: int | str | None) -> str:
    return "–" if units is None else f"{scaled(units, 6)} gUSD"


# --------------------------------------------------------------------- session


@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    as_json: JsonFlag = False,
) -> None:
    """Sign in; the tokens are stored in the config file (GRIDLEDGER_CONFIG)."""
    client = api()
    tokens = client.post("/v1/auth/login", auth=False, json={"email": email, "password": password})
    path = save_config(
        {
            **load_config(),
            "api_url": client.base_url,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
        }
    )
    out({"email": email, "config": str(path)}, f"signed in as {email} (tokens in {path})", as_json)


@app.command()
def logout() -> None:
    """Revoke the stored refresh token and forget the tokens."""
    config = load_config()
    if config.get("refresh_token"):
        api().send(
            "POST",
            "/v1/auth/logout",
            auth=False,
            json={"refresh_token": config["refresh_token"]},
            ok=(401,),
        )
    save_config({k: v for k, v in config.items() if k not in ("access_token", "refresh_token")})
    typer.echo(f"signed out ({config_path()})")


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Health of the API and its dependencies, block height and indexer lag (exit 1 unless ok)."""
    client = api()
    health = client.send("GET", "/health", auth=False, ok=(503,)).json()
    checks = health.get("checks", {})

    def state_of(name: str) -> str:
        check = checks.get(name, {})
        return "ok" if check.get("ok") else f"FAILING ({check.get('error', 'no answer')})"

    indexer = checks.get("indexer", {})
    lines = [
        f"status:   {health.get('status')}",
        f"block:    {checks.get('rpc', {}).get('head_block', '–')}",
        "indexer:  "
        + (
            f"block {indexer['indexed_block']}, lag {indexer['lag_blocks']} blocks / "
            f"{indexer['lag_seconds']} s"
            if indexer.get("ok")
            else state_of("indexer")
        ),
        f"database: {state_of('database')}",
        f"redis:    {state_of('redis')}",
        f"rpc:      {state_of('rpc')}",
    ]
    out(health, lines, as_json)
    if health.get("status") != "ok":
        raise typer.Exit(1)


# -------------------------------------------------------------------- accounts


@accounts.command("create")
def accounts_create(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    display_name: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a custodial account (the API keeps its chain key)."""
    body = {
        "email": email,
        "password": password,
        **({"display_name": display_name} if display_name else {}),
    }
    account = api().post("/v1/auth/register", auth=False, json=body)
    out(account, f"created account {account['email']} with address {account['address']}", as_json)


@accounts.command("me")
def accounts_me(as_json: JsonFlag = False) -> None:
    """The signed-in account."""
    me = api().get("/v1/auth/me")
    out(
        me,
        f"{me['email'] or me['address']} {me['address']} roles: {', '.join(me.get('roles', []))}",
        as_json,
    )


# ---------------------------------------------------------------------- orders


def order_line(o: dict) -> str:
    market = o["market_id"]
    return (
        f"{o['id']}  {o['side']:4} {market:18} {kwh(o['quantity_wh'])} "
        f"(filled {kwh(o['filled_wh'])}) @ {gusd(o['price'])}/kWh  {o['status']}"
    )


@orders.command("place")
def orders_place(
    side: Annotated[str, typer.Option(help="buy or sell")],
    quantity_wh: Annotated[int, typer.Option(min=1)],
    price: Annotated[int, typer.Option(min=1, help="token base units (1e-6 gUSD) per kWh")],
    delivery_start: Annotated[
        int, typer.Option(help="unix seconds, 15-minute aligned (energy)")
    ] = 0,
    product: Annotated[str, typer.Option(help="energy or rec")] = "energy",
    certificate: Annotated[int, typer.Option("--certificate", help="certificate id (rec)")] = 0,
    expiry: Annotated[int | None, typer.Option(help="unix seconds")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Place an order (custodial accounts: the API signs it); the matcher trades it on chain."""
    body = {
        "side": side,
        "product": product,
        "quantity_wh": str(quantity_wh),  # amounts as decimal strings
        "price": str(price),
        "delivery_start": delivery_start,
        "asset_id": certificate,
    }
    if expiry is not None:
        body["expiry"] = expiry
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    accepted = api().post("/v1/trading/orders", json=body, headers=headers)
    out(accepted, f"order {accepted['id']} {accepted['status']}", as_json)


@orders.command("cancel")
def orders_cancel(order_id: str, as_json: JsonFlag = False) -> None:
    """Cancel an order: custodial on chain; a wallet order is withdrawn from matching and the
    answer carries the `cancelOrder` call the wallet sends."""
    accepted = api().delete(f"/v1/trading/orders/{order_id}")
    tx = f" (tx {accepted['tx_hash']})" if accepted.get("tx_hash") else ""
    lines = [f"order {accepted['id']} {accepted['status']}{tx}"]
    if accepted.get("detail"):
        lines.append(accepted["detail"])
    out(accepted, lines, as_json)


@orders.command("list")
def orders_list(
    status_: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """My orders, newest first."""
    params = {"limit": limit, **({"status": status_} if status_ else {})}
    page = api().get("/v1/trading/orders", params=params)
    out(page, [order_line(o) for o in page["items"]] or ["no orders"], as_json)


# ------------------------------------------------------------------------ RECs


@recs.command("list")
def recs_list(
    holder: Annotated[str | None, typer.Option(help="0x address")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="certificates I hold")] = False,
    technology: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Certificates, filtered by holder and technology."""
    client = api()
    if mine:
        holder = client.get("/v1/auth/me")["address"]
    params = {
        k: v for k, v in {"holder": holder, "technology": technology, "limit": limit}.items() if v
    }
    page = client.get("/v1/recs/certificates", params=params)
    lines = [
        f"#{c['certificate_id']}  {c['technology']} {c['grid_area']}  "
        f"{kwh(c['volume_wh'])} issued, {kwh(c['claimed_wh'])} retired  device {c['device_id']}"
        for c in page["items"]
    ]
    out(page, lines or ["no certificates"], as_json)


@recs.command("transfer")
def recs_transfer(
    certificate_id: int,
    to: Annotated[str, typer.Option(help="0x address")],
    amount_wh: Annotated[int, typer.Option(min=1)],
    as_json: JsonFlag = False,
) -> None:
    """Transfer Wh of a certificate I hold."""
    accepted = api().post(
        f"/v1/recs/certificates/{certificate_id}/transfer",
        json={"to": to, "amount_wh": str(amount_wh)},
    )
    out(
        accepted,
        f"transferred {kwh(amount_wh)} of #{certificate_id} to {to} (tx {accepted['tx_hash']})",
        as_json,
    )


@recs.command("retire")
def recs_retire(
    certificate_id: int,
    amount_wh: Annotated[int, typer.Option(min=1)],
    beneficiary: Annotated[str, typer.Option()],
    purpose: Annotated[str, typer.Option()] = "",
    consumption_start: Annotated[
        int | None, typer.Option(help="unix seconds (default: the certificate's period)")
    ] = None,
    consumption_end: Annotated[int | None, typer.Option()] = None,
    location: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Retire (claim) Wh of a certificate for a beneficiary; prints where its proof appears."""
    client = api()
    if consumption_start is None or consumption_end is None:
        certificate = client.get(f"/v1/recs/certificates/{certificate_id}")
        consumption_start = (
            certificate["period_start"] if consumption_start is None else consumption_start
        )
        consumption_end = certificate["period_end"] if consumption_end is None else consumption_end
    accepted = client.post(
        f"/v1/recs/certificates/{certificate_id}/claim",
        json={
            "amount_wh": str(amount_wh),
            "beneficiary": beneficiary,
            "purpose": purpose,
            "consumption_start": consumption_start,
            "consumption_end": consumption_end,
            "location": location,
        },
    )
    out(
        accepted,
        f"retired {kwh(amount_wh)} of #{certificate_id} for {beneficiary} (claim {accepted['id']}, "
        f"tx {accepted['tx_hash']}); proof: {client.base_url}{accepted['poll']}",
        as_json,
    )


@recs.command("proof")
def recs_proof(claim_id: int, as_json: JsonFlag = False) -> None:
    """The public on-chain proof of a claim."""
    proof = api().get(f"/v1/recs/claims/{claim_id}/proof", auth=False)
    out(
        proof,
        [
            f"claim {proof['claim_id']}: {kwh(proof['amount_wh'])} of #{proof['certificate_id']} "
            f"for {proof['beneficiary']}",
            f"tx {proof['tx_hash']} block {proof['block_number']} log {proof['log_index']} "
            f"contract {proof['contract']} chain {proof['chain_id']}",
        ],
        as_json,
    )


@recs.command("verify")
def recs_verify(
    certificate_id: int,
    rpc_url: Annotated[
        str,
        typer.Option(
            "--rpc-url", envvar="GRIDLEDGER_RPC_URL", help="A chain RPC you trust (not ours)."
        ),
    ] = "http://127.0.0.1:8545",
    registry: Annotated[
        str | None,
        typer.Option(help="RECRegistry address to check against (default: the one served)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a certificate as a third party: the issuance event, each reading's digest, Merkle
    proof and meter signature, the meter's approval, the Wh (one line per check; exit 1 on any
    FAIL)."""
    # web3 loads only here: every other command stays quick to start
    from backend.recs.verify import passed, rpc_web3, verify_evidence

    evidence = api().get(f"/v1/recs/certificates/{certificate_id}/evidence", auth=False)
    try:
        checks = verify_evidence(evidence, rpc_web3(rpc_url), registry)
    except (KeyError, TypeError, ValueError) as exc:  # not an evidence document
        raise CliError(f"cannot verify: {type(exc).__name__}: {exc}") from exc
    ok = passed(checks)
    out(
        {"certificate_id": certificate_id, "ok": ok, "checks": [c.as_dict() for c in checks]},
        [c.line() for c in checks]
        + [f"certificate #{certificate_id}: {'verified' if ok else 'NOT verified'}"],
        as_json,
    )
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- meters


def read_readings(path: Path) -> tuple[bytes, str]:
    """The file's bytes and content type: NDJSON (.ndjson/.jsonl) or a JSON array, checked
    locally."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CliError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
        return raw, "application/x-ndjson"
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(document, list):
        raise CliError(f"{path}: expected a JSON array of readings (or use .ndjson, one per line)")
    return raw, "application/json"


@meters.command("send")
def meters_send(
    file: Annotated[Path, typer.Argument(help="readings: JSON array, or NDJSON (.ndjson/.jsonl)")],
    as_json: JsonFlag = False,
) -> None:
    """Post a readings file to the bulk endpoint; exit 1 if any reading was rejected. Readings
    that repeat an interval of the file are stored in order, so the last one wins; the
    earlier ones are listed as superseded (not an error)."""
    body, content_type = read_readings(file)
    result = api().post(
        "/v1/energy/readings/bulk", content=body, headers={"Content-Type": content_type}
    )
    lines = [
        f"{result['received']} received: {result['accepted']} accepted, "
        f"{result['duplicate']} duplicate, {result['corrected']} corrected, "
        f"{result['rejected']} rejected, {result.get('superseded', 0)} superseded"
    ]
    lines += [
        f"  #{r['index']} {r.get('meterId') or ''} {r.get('timestamp') or ''}: {r['reason']}"
        for r in result.get("rejections", [])
    ]
    lines += [  # an interval repeated in the file: the last reading wins
        f"  #{r['index']} {r.get('meterId') or ''} {r.get('timestamp') or ''}: "
        f"superseded by #{r['by']}"
        for r in result.get("supersededReadings", [])
    ]
    out(result, lines, as_json)
    if result["rejected"]:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- energy


@energy.command("balance")
def energy_balance(as_json: JsonFlag = False) -> None:
    """Token balance, escrow and what the market holds for me (withdrawable, locked)."""
    balance = api().get("/v1/energy/balance")
    out(
        balance,
        f"token {gusd(balance['token_balance'])}, in escrow {gusd(balance['escrowed'])}, "
        f"withdrawable {gusd(balance['withdrawable'])}, "
        f"locked as collateral {gusd(balance['locked'])}",
        as_json,
    )


@energy.command("deposit")
def energy_deposit(
    amount: Annotated[int, typer.Argument(min=1, help="token base units (1e-6 gUSD)")],
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deposit gUSD into my market balance: the collateral my energy offers lock when they
    trade (custodial accounts)."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    done = api().post("/v1/energy/deposits", json={"amount": str(amount)}, headers=headers)
    out(done, f"deposited {gusd(int(done['amount']))} (tx {done['tx_hash']})", as_json)


@energy.command("withdraw")
def energy_withdraw(
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Withdraw my payouts and refunds from the market to my address (custodial accounts)."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    done = api().post("/v1/energy/withdrawals", headers=headers)
    out(done, f"withdrew {gusd(int(done['amount']))} (tx {done['tx_hash']})", as_json)


# ------------------------------------------------------------------ settlement


def transfer_lines(t: dict) -> list[str]:
    return [
        f"trade {t['id']}: {t['status']}  delivery {t['delivery_start']}–{t['delivery_end']}",
        f"  contracted {kwh(t['contracted_wh'])}, metered {kwh(t['metered_wh'])}, "
        f"delivered {kwh(t['delivered_wh'])}",
        f"  escrow {gusd(t['escrow'])}, payout {gusd(t['payout'])}, penalty {gusd(t['penalty'])}, "
        f"refund {gusd(t['refund'])}",
    ]


@settlement.command("show")
def settlement_show(
    trade_id: Annotated[int | None, typer.Argument(help="omit to list my transfers")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Contracted vs metered vs delivered energy, payout and penalty of a trade (or all of mine)."""
    client = api()
    if trade_id is None:
        page = client.get("/v1/energy/transfers")
        out(
            page,
            [line for t in page["items"] for line in transfer_lines(t)] or ["no energy transfers"],
            as_json,
        )
        return
    transfer = client.get(f"/v1/energy/transfers/{trade_id}")
    # the metering service's reconciliation record, where that service is deployed
    reply = client.send("GET", f"/v1/settlement/reconciliations/{trade_id}", ok=(403, 404))
    reconciliation = reply.json() if reply.is_success else None
    lines = transfer_lines(transfer)
    if reconciliation:
        lines.append(
            f"  reconciliation: {reconciliation['status']}, "
            f"allocated {kwh(reconciliation['allocated_wh'])}, "
            f"shortfall {kwh(reconciliation['shortfall_wh'])}"
            + (" (meter data missing)" if reconciliation.get("data_missing") else "")
            + (
                f" ({reconciliation['unverified_slots']} slot(s) with unverified readings only)"
                if reconciliation.get("unverified_slots")
                else ""
            )
        )
    out({**transfer, "reconciliation": reconciliation}, lines, as_json)
