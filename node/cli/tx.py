"""`assetledger tx KIND ...`: build, sign and submit one transaction of any kind.

Conventions (shared by every kind):
  --key KEYFILE   the signer's key file; repeat it for co-signers (M-of-N regulator actions)
  --wait          wait until the transaction is committed (else it is only admitted)
  --nonce N       use this nonce instead of asking the node
  --node H:P      a node's client port;  --json  print one JSON object:
                  {"tx_id": hex, "status": "committed"|"rejected"|"pending",
                   "height": int|null, "reason": str|null}
AMOUNT is written in the asset's units (12.50 for 2 decimals), never more decimals than the
asset has; JSON carries base units. A rejected transaction exits with status 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from node.api.errors import ErrorCode
from node.cli.amounts import AmountError, parse_amount
from node.cli.errors import UserError
from node.cli.output import emit_json
from node.cli.remote import (
    HASH_BYTES,
    json_option,
    load_keys,
    node_option,
    parse_hex,
    parse_public_key,
    run_with_client,
)
from node.client import ApiError, AsyncClient, SendOutcome
from node.tx import Category, Kind, Role

WAIT_TIMEOUT_MS_DEFAULT = 30_000
ArgsMaker = Callable[[AsyncClient], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class TxOptions:
    keys: tuple[Path, ...]
    wait: bool
    timeout_ms: int
    nonce: int | None
    node: str
    as_json: bool


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every `tx` command takes, folded into one TxOptions argument `opts`."""
    func = json_option(node_option(func))
    func = click.option(
        "--nonce",
        type=click.IntRange(0),
        default=None,
        help="Nonce to use (default: ask the node).",
    )(func)
    func = click.option(
        "--timeout-ms",
        type=click.IntRange(1),
        default=WAIT_TIMEOUT_MS_DEFAULT,
        show_default=True,
        help="With --wait: how long to wait for the commit.",
    )(func)
    func = click.option("--wait", is_flag=True, help="Wait until committed and show the height.")(
        func
    )
    func = click.option(
        "--key",
        "keys",
        multiple=True,
        required=True,
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="KEYFILE",
        help="Signer key file; repeat for co-signers (regulator approvals).",
    )(func)
    return func


def _opts(kwargs: dict[str, Any]) -> TxOptions:
    return TxOptions(
        keys=kwargs.pop("keys"),
        wait=kwargs.pop("wait"),
        timeout_ms=kwargs.pop("timeout_ms"),
        nonce=kwargs.pop("nonce"),
        node=kwargs.pop("node"),
        as_json=kwargs.pop("as_json"),
    )


def _pub(option: str) -> Callable[[click.Context, click.Parameter, str | None], bytes | None]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
        return None if value is None else parse_public_key(value, option)

    return convert


def _account_option(
    name: str = "--account", dest: str = "account", help: str = "Public key (hex)."
) -> Callable[..., Any]:
    return click.option(name, dest, required=True, metavar="PUB", callback=_pub(name), help=help)


def _asset_option(required: bool = True, help: str = "Asset id.") -> Callable[..., Any]:
    return click.option("--asset", "asset", required=required, metavar="ID", help=help)


def _amount_option(name: str = "--amount", dest: str = "amount") -> Callable[..., Any]:
    return click.option(
        name, dest, required=True, metavar="AMOUNT", help="In the asset's units, e.g. 12.50."
    )


def _audit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--order-ref", required=True, metavar="REF", help="Reference of the legal order."
    )(func)
    return click.option(
        "--reason-code", required=True, metavar="CODE", help="Why (recorded on the ledger)."
    )(func)


async def asset_decimals(client: AsyncClient, asset: str) -> int:
    try:
        return (await client.asset(asset)).decimals
    except ApiError as exc:
        if exc.code == ErrorCode.NOT_FOUND:
            raise UserError(
                f"unknown asset {asset!r}; check --asset (list it with: assetledger query asset --asset ID)"
            ) from None
        raise


def _amount(text: str, decimals: int, option: str) -> int:
    try:
        return parse_amount(text, decimals, what=option)
    except AmountError as exc:
        raise UserError(str(exc)) from None


def _amount_in(
    asset: str, text: str, option: str = "--amount"
) -> Callable[[AsyncClient], Awaitable[int]]:
    async def convert(client: AsyncClient) -> int:
        return _amount(text, await asset_decimals(client, asset), option)

    return convert


def _report(outcome: SendOutcome, as_json: bool) -> None:
    if as_json:
        emit_json(outcome.to_json())
    elif outcome.status == "committed":
        click.echo(f"committed  tx {outcome.tx_id.hex()}  at height {outcome.height}")
    elif outcome.status == "rejected":
        where = f" at height {outcome.height}" if outcome.height is not None else ""
        click.echo(f"rejected   tx {outcome.tx_id.hex()}{where}: {outcome.reason}")
    else:
        click.echo(
            f"pending    tx {outcome.tx_id.hex()}  (admitted; not yet known to be committed:"
            f" assetledger query tx --tx-id {outcome.tx_id.hex()})"
        )
    if outcome.status == "rejected":
        raise click.exceptions.Exit(1)


def _send(opts: TxOptions, kind: Kind, make_args: ArgsMaker, *, memo: str | None = None) -> None:
    keys = load_keys(opts.keys)

    async def call(client: AsyncClient) -> SendOutcome:
        args = await make_args(client)
        return await client.send(
            kind,
            args,
            key=keys[0],
            cosigners=keys[1:],
            memo=memo,
            nonce=opts.nonce,
            wait=opts.wait,
            timeout_ms=opts.timeout_ms,
        )

    _report(run_with_client(opts.node, call), opts.as_json)


def _fixed(args: dict[str, Any]) -> ArgsMaker:
    async def make(client: AsyncClient) -> dict[str, Any]:
        return args

    return make


@click.group(name="tx")
def tx() -> None:
    """Build, sign and submit a transaction (one subcommand per kind)."""


# --- regulator / registrar -------------------------------------------------------------


@tx.command("register-account")
@_account_option()
@click.option("--category", required=True, type=click.Choice([c.value for c in Category]))
@click.option(
    "--kyc-hash", required=True, metavar="HEX", help="SHA-256 of the KYC record (64 hex)."
)
@click.option(
    "--expires-at-ms",
    type=click.IntRange(0),
    default=None,
    help="Registration expiry (ms since epoch).",
)
@_common
def register_account(
    account: bytes, category: str, kyc_hash: str, expires_at_ms: int | None, **kw: Any
) -> None:
    """Register an account (regulator or registrar)."""
    opts = _opts(kw)
    args = {
        "account": account,
        "category": category,
        "kyc_hash": parse_hex(kyc_hash, "--kyc-hash", HASH_BYTES, "a SHA-256 hash"),
        "expires_at_ms": expires_at_ms,
    }
    _send(opts, Kind.REGISTER_ACCOUNT, _fixed(args))


@tx.command("revoke-account")
@_account_option()
@_common
def revoke_account(account: bytes, **kw: Any) -> None:
    """Revoke an account's registration (regulator or registrar)."""
    _send(_opts(kw), Kind.REVOKE_ACCOUNT, _fixed({"account": account}))


@tx.command("grant-role")
@_account_option()
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@_common
def grant_role(account: bytes, role: str, **kw: Any) -> None:
    """Grant the issuer or registrar role (regulator)."""
    _send(_opts(kw), Kind.GRANT_ROLE, _fixed({"account": account, "role": role}))


@tx.command("revoke-role")
@_account_option()
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@_common
def revoke_role(account: bytes, role: str, **kw: Any) -> None:
    """Revoke the issuer or registrar role (regulator)."""
    _send(_opts(kw), Kind.REVOKE_ROLE, _fixed({"account": account, "role": role}))


@tx.command("set-supply-cap")
@_asset_option()
@click.option(
    "--cap", required=True, metavar="AMOUNT", help="New authorised cap, in the asset's units."
)
@_common
def set_supply_cap(asset: str, cap: str, **kw: Any) -> None:
    """Change an asset's authorised supply cap (regulator)."""

    async def make(client: AsyncClient) -> dict[str, Any]:
        return {"asset_id": asset, "cap": await _amount_in(asset, cap, "--cap")(client)}

    _send(_opts(kw), Kind.SET_SUPPLY_CAP, make)


@tx.command("force-transfer")
@_asset_option()
@_account_option("--from", "from_account", "Account to take from (hex).")
@_account_option("--to", "to_account", "Account to credit (hex).")
@_amount_option()
@_audit_options
@_common
def force_transfer(
    *,
    asset: str,
    from_account: bytes,
    to_account: bytes,
    amount: str,
    reason_code: str,
    order_ref: str,
    **kw: Any,
) -> None:
    """Move an asset between accounts under a legal order (regulator)."""

    async def make(client: AsyncClient) -> dict[str, Any]:
        return {
            "asset_id": asset,
            "from_account": from_account,
            "to_account": to_account,
            "amount": await _amount_in(asset, amount)(client),
            "reason_code": reason_code,
            "order_ref": order_ref,
        }

    _send(_opts(kw), Kind.FORCE_TRANSFER, make)


@tx.command("recover-account")
@_account_option("--lost-account", "lost_account", "The lost key (hex).")
@_account_option("--new-account", "new_account", "The registered replacement (hex).")
@_audit_options
@_common
def recover_account(
    lost_account: bytes, new_account: bytes, reason_code: str, order_ref: str, **kw: Any
) -> None:
    """Move every balance of a lost key to a new registered account (regulator)."""
    args = {
        "lost_account": lost_account,
        "new_account": new_account,
        "reason_code": reason_code,
        "order_ref": order_ref,
    }
    _send(_opts(kw), Kind.RECOVER_ACCOUNT, _fixed(args))


def _freeze_command(name: str, kind: Kind, doc: str) -> None:
    @tx.command(name, help=doc)
    @_account_option()
    @_asset_option(required=False, help="Only this asset (default: the whole account).")
    @_audit_options
    @_common
    def command(
        account: bytes, asset: str | None, reason_code: str, order_ref: str, **kw: Any
    ) -> None:
        args = {
            "account": account,
            "asset_id": asset,
            "reason_code": reason_code,
            "order_ref": order_ref,
        }
        _send(_opts(kw), kind, _fixed(args))


_freeze_command(
    "freeze",
    Kind.FREEZE,
    "Freeze an account, or one asset of it (regulator; issuer for its asset).",
)
_freeze_command("unfreeze", Kind.UNFREEZE, "Lift a freeze (regulator; issuer for its asset).")


# --- validator-set governance (regulator threshold) --------------------------------------


def _validator_name_option(help: str) -> Callable[..., Any]:
    return click.option("--name", "name", required=True, metavar="NAME", help=help)


def _new_key_option(help: str) -> Callable[..., Any]:
    return click.option(
        "--public-key",
        "public_key",
        required=True,
        metavar="PUB",
        callback=_pub("--public-key"),
        help=help,
    )


@tx.command("add-validator")
@_validator_name_option("Name of the new validator ([a-z0-9-], as in the genesis file).")
@_new_key_option("Its public key (hex), as printed by assetledger keygen / cluster add-node.")
@click.option(
    "--address", required=True, metavar="HOST:PORT", help="Its peer (validator) listener."
)
@_common
def add_validator(name: str, public_key: bytes, address: str, **kw: Any) -> None:
    """Approve a new validator; it joins at the next epoch boundary (regulator)."""
    args = {"name": name, "public_key": public_key, "address": address}
    _send(_opts(kw), Kind.ADD_VALIDATOR, _fixed(args))


@tx.command("remove-validator")
@_validator_name_option("Name of the validator to remove.")
@click.option(
    "--allow-below-minimum",
    is_flag=True,
    help="Allow fewer than 4 validators (no fault tolerance left; see docs/governance.md).",
)
@_common
def remove_validator(name: str, allow_below_minimum: bool, **kw: Any) -> None:
    """Remove a validator at the next epoch boundary (regulator)."""
    args = {"name": name, "allow_below_minimum": allow_below_minimum}
    _send(_opts(kw), Kind.REMOVE_VALIDATOR, _fixed(args))


@tx.command("rotate-validator-key")
@_validator_name_option("Name of the validator whose key changes.")
@_new_key_option("Its NEW public key (hex).")
@_common
def rotate_validator_key(name: str, public_key: bytes, **kw: Any) -> None:
    """Replace a validator's key from the next epoch boundary on (regulator)."""
    args = {"name": name, "public_key": public_key}
    _send(_opts(kw), Kind.ROTATE_VALIDATOR_KEY, _fixed(args))


def _pubs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[bytes]:
    return [parse_public_key(value, "--public-key") for value in values]


@tx.command("set-regulator-keys")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    required=True,
    metavar="PUB",
    callback=_pubs,
    help="A regulator public key (hex); repeat for each key of the new set.",
)
@click.option(
    "--threshold",
    required=True,
    type=click.IntRange(1),
    help="Distinct regulator signatures the new set needs.",
)
@_common
def set_regulator_keys(public_keys: list[bytes], threshold: int, **kw: Any) -> None:
    """Replace the regulator keys and threshold; needs the CURRENT threshold (regulator)."""
    if threshold > len(public_keys):
        raise UserError(
            f"--threshold {threshold} exceeds the {len(public_keys)} --public-key given"
        )
    if len(set(public_keys)) != len(public_keys):
        raise UserError("--public-key: the same key is given twice; each key once")
    args = {"public_keys": public_keys, "threshold": threshold}
    _send(_opts(kw), Kind.SET_REGULATOR_KEYS, _fixed(args))


# --- issuer ----------------------------------------------------------------------------


@tx.command("create-asset")
@_asset_option(help="New asset id, e.g. BOND-2035.")
@click.option("--name", required=True, metavar="TEXT")
@click.option("--decimals", required=True, type=click.IntRange(0, 18))
@click.option(
    "--cap", required=True, metavar="AMOUNT", help="Authorised cap, in the asset's units."
)
@click.option(
    "--document-hash", default=None, metavar="HEX", help="SHA-256 of the offering document."
)
@_common
def create_asset(
    asset: str, name: str, decimals: int, cap: str, document_hash: str | None, **kw: Any
) -> None:
    """Create an asset token (issuer)."""
    args = {
        "asset_id": asset,
        "name": name,
        "decimals": decimals,
        "cap": _amount(cap, decimals, "--cap"),
        "document_hash": None
        if document_hash is None
        else parse_hex(document_hash, "--document-hash", HASH_BYTES, "a SHA-256 hash"),
    }
    _send(_opts(kw), Kind.CREATE_ASSET, _fixed(args))


@tx.command("mint")
@_asset_option()
@_account_option("--to", "to_account", "Registered account to credit (hex).")
@_amount_option()
@_common
def mint(asset: str, to_account: bytes, amount: str, **kw: Any) -> None:
    """Mint new units of your asset to a registered account (issuer)."""

    async def make(client: AsyncClient) -> dict[str, Any]:
        return {
            "asset_id": asset,
            "to_account": to_account,
            "amount": await _amount_in(asset, amount)(client),
        }

    _send(_opts(kw), Kind.MINT, make)


@tx.command("burn")
@_asset_option()
@_amount_option()
@_common
def burn(asset: str, amount: str, **kw: Any) -> None:
    """Redeem units from your own holding (issuer)."""

    async def make(client: AsyncClient) -> dict[str, Any]:
        return {"asset_id": asset, "amount": await _amount_in(asset, amount)(client)}

    _send(_opts(kw), Kind.BURN, make)


@tx.command("pause")
@_asset_option()
@_common
def pause(asset: str, **kw: Any) -> None:
    """Stop all movements of your asset (issuer)."""
    _send(_opts(kw), Kind.PAUSE, _fixed({"asset_id": asset}))


@tx.command("unpause")
@_asset_option()
@_common
def unpause(asset: str, **kw: Any) -> None:
    """Let your asset move again (issuer)."""
    _send(_opts(kw), Kind.UNPAUSE, _fixed({"asset_id": asset}))


# --- holder ----------------------------------------------------------------------------


@tx.command("transfer")
@_asset_option()
@_account_option("--to", "to_account", "Recipient (hex).")
@_amount_option()
@click.option("--memo", default=None, metavar="TEXT", help="Free text stored with the transfer.")
@_common
def transfer(asset: str, to_account: bytes, amount: str, memo: str | None, **kw: Any) -> None:
    """Transfer units of an asset to another registered account."""

    async def make(client: AsyncClient) -> dict[str, Any]:
        return {
            "asset_id": asset,
            "to_account": to_account,
            "amount": await _amount_in(asset, amount)(client),
        }

    _send(_opts(kw), Kind.TRANSFER, make, memo=memo)
