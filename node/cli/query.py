"""`assetledger query ...`: read the ledger through a node's client port.

`--json` prints one JSON object with bytes as hex and amounts as integer base units; without
it, rich tables with amounts in the asset's decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from config.errors import ConfigError
from config.genesis import Genesis, load_genesis
from node.api.governance_results import (
    EvidenceEntry,
    EvidenceList,
    GovernanceEntry,
    GovernancePage,
    ValidatorEntry,
    ValidatorSetInfo,
)
from node.api.requests import EVIDENCE_LIMIT_MAX, GOVERNANCE_LIMIT_MAX
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
    """Read balances, accounts, assets, receipts, blocks, validators and node status."""


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
        "tx_bytes_max": status.tx_bytes_max,
        "memo_bytes_max": status.memo_bytes_max,
    }


@query.command("status")
@node_option
@json_option
def status(node: str, as_json: bool) -> None:
    """Height, view, primary, validators, state digest and the chain's tx limits."""
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
            ("tx limits", f"{info.tx_bytes_max} bytes, memo {info.memo_bytes_max} bytes"),
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
    data: dict[str, Any] = {
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


@dataclass(frozen=True, slots=True)
class Trusted:
    """The set a certificate is checked against: genesis's for epoch 0; for a later epoch the
    set the node reports for that height (docs/governance.md, "Verifying old blocks")."""

    chain_id: str
    validators: tuple[tuple[str, bytes], ...]
    epoch: int

    @property
    def source(self) -> str:
        return "genesis validators" if self.epoch == 0 else f"epoch {self.epoch} validators"


def _load_genesis(genesis: Path | None) -> Genesis | None:
    if genesis is None:
        return None
    try:
        return load_genesis(genesis)
    except ConfigError as exc:
        raise UserError(f"{genesis}: {exc}") from None


async def _trusted_at(client: AsyncClient, spec: Genesis | None, height: int) -> Trusted | None:
    if spec is None:
        return None
    genesis_set = tuple((v.name, v.public_key) for v in spec.validators)
    info = await client.validators(height)
    if info.epoch == 0:
        return Trusted(chain_id=spec.chain_id, validators=genesis_set, epoch=0)
    reported = tuple((v.name, v.public_key) for v in info.validators)
    return Trusted(chain_id=spec.chain_id, validators=reported, epoch=info.epoch)


def _verify(proof: ReceiptInfo | FinalityProof, trusted: Trusted) -> None:
    try:
        verify_finality(proof, trusted.validators, trusted.chain_id, epoch=trusted.epoch)
    except FinalityError as exc:
        raise UserError(
            f"the node's finality proof does not verify against the {trusted.source}: {exc}"
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
    spec = _load_genesis(genesis)

    async def fetch(
        client: AsyncClient,
    ) -> tuple[ReceiptInfo, BlockInfo | None, Trusted | None]:
        receipt = await client.receipt(key)
        # With --genesis, also fetch the block to prove the tx is inside the final block.
        block = None if spec is None else await client.block(receipt.height)
        return receipt, block, await _trusted_at(client, spec, receipt.height)

    receipt, block_info, trusted = run_with_client(node, fetch)
    data = receipt_json(receipt)
    if trusted is not None:
        assert block_info is not None
        _verify(receipt, trusted)
        try:
            verify_inclusion(
                receipt,
                trusted.validators,
                trusted.chain_id,
                block=block_info,
                epoch=trusted.epoch,
            )
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
        rows.append(("finality", f"in a block final by the {trusted.source} (verified)"))
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
    spec = _load_genesis(genesis)

    async def fetch(client: AsyncClient) -> tuple[BlockInfo, Trusted | None]:
        return await client.block(height), await _trusted_at(client, spec, height)

    info, trusted = run_with_client(node, fetch)
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
        rows.append(("finality", f"verified against the {trusted.source}"))
    rows += [(f"tx {i}", t) for i, t in enumerate(data["tx_ids"])]
    _table(f"block {info.height}", rows)


# --- validator set, governance history, evidence ---------------------------------------


def _validator_json(v: ValidatorEntry) -> dict[str, Any]:
    return {"name": v.name, "public_key": v.public_key.hex(), "address": v.address}


def validators_json(info: ValidatorSetInfo) -> dict[str, Any]:
    return {
        "height": info.height,
        "epoch": info.epoch,
        "first_seq": info.first_seq,
        "last_seq": info.last_seq,
        "validators": [_validator_json(v) for v in info.validators],
        "pending_validators": None
        if info.pending_validators is None
        else [_validator_json(v) for v in info.pending_validators],
        "pending_last_seq": info.pending_last_seq,
        "regulator_keys": [k.hex() for k in info.regulator_keys],
        "regulator_threshold": info.regulator_threshold,
    }


def _validator_table(
    title: str, rows: Sequence[tuple[str, ...]], columns: tuple[str, ...]
) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _pending_changes(
    current: tuple[ValidatorEntry, ...], pending: tuple[ValidatorEntry, ...]
) -> list[tuple[str, str, str, str]]:
    """The next set, each row marked against the current epoch's set."""
    keys = {v.name: v.public_key for v in current}
    rows = []
    for v in pending:
        if v.name not in keys:
            change = "added"
        elif keys[v.name] != v.public_key:
            change = f"new key (was {keys[v.name].hex()})"
        else:
            change = ""
        rows.append((v.name, v.public_key.hex(), v.address, change))
    staying = {v.name for v in pending}
    rows += [
        (v.name, v.public_key.hex(), v.address, "removed") for v in current if v.name not in staying
    ]
    return rows


@query.command("validators")
@click.option(
    "--height",
    type=click.IntRange(1),
    default=None,
    help="Show the epoch governing this block (default: the next block).",
)
@node_option
@json_option
def validators(height: int | None, node: str, as_json: bool) -> None:
    """The validator set of an epoch, a pending change, and the regulator keys."""
    info: ValidatorSetInfo = run_with_client(node, lambda c: c.validators(height))
    if as_json:
        emit_json(validators_json(info))
        return
    last = "open" if info.last_seq is None else str(info.last_seq)
    _table(
        f"epoch {info.epoch}" + ("" if height is None else f" (governs block {height})"),
        [
            ("blocks", f"{info.first_seq} .. {last}"),
            ("chain height", str(info.height)),
            ("validators", str(len(info.validators))),
            (
                "regulators",
                f"{info.regulator_threshold} of {len(info.regulator_keys)} keys:\n"
                + "\n".join(k.hex() for k in info.regulator_keys),
            ),
        ],
    )
    console = _console()
    console.print(
        _validator_table(
            f"validators of epoch {info.epoch}",
            [(v.name, v.public_key.hex(), v.address) for v in info.validators],
            ("name", "public key", "address"),
        )
    )
    if info.pending_last_seq is not None:
        after = (
            "the set below governs"
            if info.pending_validators is not None
            else "the set stays as it is (the changes cancel out) and governs"
        )
        console.print(
            f"pending change: the current epoch ends after block {info.pending_last_seq};"
            f" {after} from block {info.pending_last_seq + 1}"
        )
    if info.pending_validators is not None:
        if height is None:
            # Marked against the current epoch's set (the one shown above).
            table = _validator_table(
                "pending validator set (next epoch)",
                _pending_changes(info.validators, info.pending_validators),
                ("name", "public key", "address", "change"),
            )
        else:
            table = _validator_table(
                "pending validator set (next epoch)",
                [(v.name, v.public_key.hex(), v.address) for v in info.pending_validators],
                ("name", "public key", "address"),
            )
        console.print(table)


def _arg_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_arg_json(item) for item in value]
    return value


def governance_record_json(record: GovernanceEntry) -> dict[str, Any]:
    return {
        "height": record.height,
        "tx_id": record.tx_id.hex(),
        "kind": record.kind,
        "args": {name: _arg_json(value) for name, value in record.args.items()},
        "signatures": [
            {"public_key": key.hex(), "signature": signature.hex()}
            for key, signature in record.signatures
        ],
        "effective_from_seq": record.effective_from_seq,
    }


def _arg_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_arg_text(item) for item in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_arg_json(value))


def before_height_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--before-height`: the height cursor of the governance and evidence pages."""
    return click.option(
        "--before-height",
        type=click.IntRange(1),
        default=None,
        help="Only records below this height (next_before_height of the previous page).",
    )(func)


@query.command("governance")
@click.option(
    "--limit",
    type=click.IntRange(1, GOVERNANCE_LIMIT_MAX),
    default=HISTORY_LIMIT_DEFAULT,
    show_default=True,
)
@before_height_option
@node_option
@json_option
def governance(limit: int, before_height: int | None, node: str, as_json: bool) -> None:
    """Applied governance transactions, newest first, with the approving regulator keys."""
    page: GovernancePage = run_with_client(
        node, lambda c: c.governance(limit=limit, before_height=before_height)
    )
    if as_json:
        emit_json(
            {
                "records": [governance_record_json(r) for r in page.records],
                "next_before_height": page.next_before_height,
            }
        )
        return
    if not page.records:
        click.echo(
            "no governance transactions" + ("" if before_height is None else " below that height")
        )
        return
    # One small table per record: full-length keys stay whole and copyable.
    for r in page.records:
        rows = [(name, _arg_text(value)) for name, value in r.args.items()]
        rows += [
            (
                "effective from",
                "the next transaction"
                if r.effective_from_seq is None
                else f"block {r.effective_from_seq}",
            ),
            ("approved by", "\n".join(key.hex() for key, _ in r.signatures)),
            ("tx id", r.tx_id.hex()),
        ]
        _table(f"height {r.height}  {r.kind}", rows)
    if page.next_before_height is not None:
        click.echo(f"more: --before-height {page.next_before_height}")


def evidence_record_json(record: EvidenceEntry) -> dict[str, Any]:
    return {
        "height": record.height,
        "tx_id": record.tx_id.hex(),
        "validator": record.validator,
        "public_key": record.public_key.hex(),
        "epoch": record.epoch,
        "message_kind": record.message_kind,
        "view": record.view,
        "seq": record.seq,
        "first": record.first.hex(),
        "second": record.second.hex(),
        "reporter": record.reporter.hex(),
    }


@query.command("evidence")
@click.option(
    "--limit",
    type=click.IntRange(1, EVIDENCE_LIMIT_MAX),
    default=HISTORY_LIMIT_DEFAULT,
    show_default=True,
)
@before_height_option
@node_option
@json_option
def evidence(limit: int, before_height: int | None, node: str, as_json: bool) -> None:
    """Recorded misbehaviour (equivocation) evidence, newest first."""
    found: EvidenceList = run_with_client(
        node, lambda c: c.evidence(limit=limit, before_height=before_height)
    )
    if as_json:
        emit_json(
            {
                "records": [evidence_record_json(r) for r in found.records],
                "next_before_height": found.next_before_height,
            }
        )
        return
    if not found.records:
        click.echo("no evidence recorded" + ("" if before_height is None else " below that height"))
        return
    for r in found.records:
        where = f"seq {r.seq}" if r.message_kind == "checkpoint" else f"view {r.view} seq {r.seq}"
        _table(
            f"height {r.height}  equivocation by {r.validator}",
            [
                ("validator", f"{r.validator} {r.public_key.hex()}"),
                ("epoch", str(r.epoch)),
                ("conflict", f"two {r.message_kind} messages at {where}"),
                ("reported by", r.reporter.hex()),
                ("tx id", r.tx_id.hex()),
            ],
        )
    if found.next_before_height is not None:
        click.echo(f"more: --before-height {found.next_before_height}")
