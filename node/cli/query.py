"""`assetledger query ...`: read the ledger through a node's client port.

`--json` prints one JSON object with bytes as hex and amounts as integer base units; without
it, rich tables with amounts in the asset's decimals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from config.errors import ConfigError
from config.genesis import load_genesis
from node.api.results import (
    AccountInfo,
    AssetInfo,
    BlockInfo,
    FinalityProof,
    ReceiptInfo,
    StatusInfo,
)
from node.cli.amounts import format_amount
from node.cli.errors import UserError
from node.cli.output import emit_json
from node.cli.remote import (
    HASH_BYTES,
    json_option,
    node_option,
    parse_hex,
    parse_public_key,
    run_with_client,
)
from node.cli.tx import asset_decimals
from node.client import AsyncClient, FinalityError, verify_finality, verify_inclusion

HISTORY_LIMIT_DEFAULT = 20


PIPE_WIDTH = 200


def _console() -> Console:
    console = Console()
    if not console.is_terminal:
        # Piped output: wide enough that a 64-hex key or id stays whole on one line.
        console = Console(width=PIPE_WIDTH)
    return console


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    _console().print(table)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _pub_option(name: str = "--account") -> Any:
    return click.option(name, "account", required=True, metavar="PUB", help="Public key (hex).")


@click.group(name="query")
def query() -> None:
    """Read balances, accounts, assets, receipts, blocks and node status."""


# --- status ----------------------------------------------------------------------------


def status_json(status: StatusInfo) -> dict[str, Any]:
    return {
        "node": status.node,
        "chain_id": status.chain_id,
        "height": status.height,
        "view": status.view,
        "primary": status.primary,
        "validators": [
            {"name": v.name, "public_key": v.public_key.hex()} for v in status.validators
        ],
        "state_digest": status.state_digest.hex(),
        "mempool_size": status.mempool_size,
    }


@query.command("status")
@node_option
@json_option
def status(node: str, as_json: bool) -> None:
    """Height, view, primary, validators and state digest of a node."""
    info: StatusInfo = run_with_client(node, lambda c: c.status())
    if as_json:
        emit_json(status_json(info))
        return
    _table(
        f"node {info.node}",
        [
            ("chain", info.chain_id),
            ("height", str(info.height)),
            ("view", str(info.view)),
            ("primary", info.primary),
            ("validators", ", ".join(v.name for v in info.validators)),
            ("state digest", info.state_digest.hex()),
            ("mempool", f"{info.mempool_size} transactions"),
        ],
    )


# --- balance / account / nonce / history -----------------------------------------------


@query.command("balance")
@click.option("--asset", required=True, metavar="ID")
@_pub_option()
@node_option
@json_option
def balance(asset: str, account: str, node: str, as_json: bool) -> None:
    """An account's balance of one asset."""
    key = parse_public_key(account, "--account")

    async def call(client: AsyncClient) -> tuple[int, int]:
        decimals = await asset_decimals(client, asset)
        return await client.balance(asset, key), decimals

    units, decimals = run_with_client(node, call)
    if as_json:
        emit_json({"asset": asset, "account": key.hex(), "balance": units})
    else:
        _table(
            f"balance of {key.hex()}",
            [("asset", asset), ("balance", f"{format_amount(units, decimals)} {asset}")],
        )


def account_json(info: AccountInfo) -> dict[str, Any]:
    return {
        "account": info.account.hex(),
        "registered": info.registered,
        "category": info.category,
        "kyc_hash": _hex(info.kyc_hash),
        "expires_at_ms": info.expires_at_ms,
        "roles": list(info.roles),
        "frozen": info.frozen,
        "frozen_assets": list(info.frozen_assets),
        "next_nonce": info.next_nonce,
    }


@query.command("account")
@_pub_option()
@node_option
@json_option
def account(account: str, node: str, as_json: bool) -> None:
    """Registration, roles, freezes and nonce of an account."""
    key = parse_public_key(account, "--account")
    info: AccountInfo = run_with_client(node, lambda c: c.account(key))
    data = account_json(info)
    if as_json:
        emit_json(data)
        return
    _table(
        f"account {key.hex()}",
        [
            ("registered", "yes" if info.registered else "no"),
            ("category", info.category or "-"),
            ("KYC hash", data["kyc_hash"] or "-"),
            ("expires at (ms)", "-" if info.expires_at_ms is None else str(info.expires_at_ms)),
            ("roles", ", ".join(info.roles) or "-"),
            ("frozen", "whole account" if info.frozen else "no"),
            ("frozen assets", ", ".join(info.frozen_assets) or "-"),
            ("next nonce", str(info.next_nonce)),
        ],
    )


@query.command("nonce")
@_pub_option()
@node_option
@json_option
def nonce(account: str, node: str, as_json: bool) -> None:
    """The nonce an account's next transaction must carry."""
    key = parse_public_key(account, "--account")
    value: int = run_with_client(node, lambda c: c.next_nonce(key))
    if as_json:
        emit_json({"account": key.hex(), "next_nonce": value})
    else:
        click.echo(str(value))


@query.command("history")
@_pub_option()
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=HISTORY_LIMIT_DEFAULT, show_default=True
)
@click.option("--cursor", default=None, metavar="HEX", help="next_cursor of the previous page.")
@node_option
@json_option
def history(account: str, limit: int, cursor: str | None, node: str, as_json: bool) -> None:
    """Transaction ids touching an account, newest first."""
    key = parse_public_key(account, "--account")
    try:
        start = None if cursor is None else bytes.fromhex(cursor)
    except ValueError:
        raise UserError(
            f"--cursor: {cursor!r} is not hex; pass next_cursor from the previous page"
        ) from None
    page = run_with_client(node, lambda c: c.history(key, limit=limit, cursor=start))
    data = {
        "account": key.hex(),
        "tx_ids": [t.hex() for t in page.tx_ids],
        "next_cursor": _hex(page.next_cursor),
    }
    if as_json:
        emit_json(data)
        return
    for tx_id in data["tx_ids"]:
        click.echo(tx_id)
    if page.next_cursor is not None:
        click.echo(f"more: --cursor {page.next_cursor.hex()}")


# --- asset -----------------------------------------------------------------------------


def asset_json(info: AssetInfo) -> dict[str, Any]:
    return {
        "asset": info.asset,
        "name": info.name,
        "decimals": info.decimals,
        "cap": info.cap,
        "supply": info.supply,
        "paused": info.paused,
        "issuer": info.issuer.hex(),
        "document_hash": _hex(info.document_hash),
    }


@query.command("asset")
@click.option("--asset", required=True, metavar="ID")
@node_option
@json_option
def asset(asset: str, node: str, as_json: bool) -> None:
    """Name, decimals, cap, supply, issuer and state of an asset."""
    info: AssetInfo = run_with_client(node, lambda c: c.asset(asset))
    if as_json:
        emit_json(asset_json(info))
        return
    d = info.decimals
    _table(
        f"asset {info.asset}",
        [
            ("name", info.name),
            ("decimals", str(d)),
            ("supply", format_amount(info.supply, d)),
            ("cap", format_amount(info.cap, d)),
            ("paused", "yes" if info.paused else "no"),
            ("issuer", info.issuer.hex()),
            ("document hash", _hex(info.document_hash) or "-"),
        ],
    )


# --- tx receipt and block --------------------------------------------------------------


def _validators_from(genesis: Path | None) -> tuple[str, tuple[tuple[str, bytes], ...]] | None:
    if genesis is None:
        return None
    try:
        spec = load_genesis(genesis)
    except ConfigError as exc:
        raise UserError(f"{genesis}: {exc}") from None
    return spec.chain_id, tuple((v.name, v.public_key) for v in spec.validators)


def _verify(
    proof: ReceiptInfo | FinalityProof, trusted: tuple[str, tuple[tuple[str, bytes], ...]]
) -> None:
    chain_id, validators = trusted
    try:
        verify_finality(proof, validators, chain_id)
    except FinalityError as exc:
        raise UserError(
            f"the node's finality proof does not verify against the genesis validators: {exc}"
        ) from None


_genesis_option = click.option(
    "--genesis",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Verify the commit certificate against this genesis file's validators.",
)


def receipt_json(receipt: ReceiptInfo) -> dict[str, Any]:
    proof = receipt.proof
    return {
        "tx_id": receipt.tx_id.hex(),
        "status": receipt.status,
        "reason": receipt.reason,
        "height": receipt.height,
        "index": receipt.index,
        "block_hash": None if proof is None else proof.block_hash.hex(),
        "certificate": None if proof is None else proof.certificate.hex(),
    }


@query.command("tx")
@click.option("--tx-id", required=True, metavar="HEX")
@_genesis_option
@node_option
@json_option
def tx_receipt(tx_id: str, genesis: Path | None, node: str, as_json: bool) -> None:
    """Receipt of a committed transaction, with its finality proof."""
    key = parse_hex(tx_id, "--tx-id", HASH_BYTES, "a transaction id")
    trusted = _validators_from(genesis)

    async def fetch(client: AsyncClient) -> tuple[ReceiptInfo, BlockInfo | None]:
        receipt = await client.receipt(key)
        # With --genesis, also fetch the block to prove the tx is inside the final block.
        block = None if trusted is None else await client.block(receipt.height)
        return receipt, block

    receipt, block_info = run_with_client(node, fetch)
    data = receipt_json(receipt)
    if trusted is not None:
        assert block_info is not None
        _verify(receipt, trusted)
        chain_id, validators = trusted
        try:
            verify_inclusion(receipt, validators, chain_id, block=block_info)
        except FinalityError as exc:
            raise UserError(f"the node's inclusion proof does not verify: {exc}") from None
        data["verified"] = True
    if as_json:
        emit_json(data)
        return
    rows = [
        ("status", receipt.status + (f" ({receipt.reason})" if receipt.reason else "")),
        ("height", str(receipt.height)),
        ("index in block", str(receipt.index)),
        ("block hash", data["block_hash"] or "-"),
    ]
    if trusted is not None:
        rows.append(("finality", "in a block final by the genesis validators (verified)"))
    _table(f"tx {data['tx_id']}", rows)


def block_json(block: BlockInfo) -> dict[str, Any]:
    return {
        "height": block.height,
        "block_hash": block.block_hash.hex(),
        "tx_ids": [t.hex() for t in block.tx_ids],
        "block": block.block.hex(),
        "certificate": block.certificate.hex(),
    }


@query.command("block")
@click.option("--height", required=True, type=click.IntRange(1))
@_genesis_option
@node_option
@json_option
def block(height: int, genesis: Path | None, node: str, as_json: bool) -> None:
    """A committed block and its commit certificate."""
    trusted = _validators_from(genesis)
    info: BlockInfo = run_with_client(node, lambda c: c.block(height))
    data = block_json(info)
    if trusted is not None:
        _verify(info.proof(), trusted)
        data["verified"] = True
    if as_json:
        emit_json(data)
        return
    rows = [
        ("block hash", data["block_hash"]),
        ("transactions", str(len(info.tx_ids))),
        ("certificate", f"{len(info.certificate)} bytes"),
    ]
    if trusted is not None:
        rows.append(("finality", "verified against genesis validators"))
    rows += [(f"tx {i}", t) for i, t in enumerate(data["tx_ids"])]
    _table(f"block {info.height}", rows)
