"""The transfer fast path: the common case of a holder's transfer, in one function.

Besides its five LMDB reads, a transfer on the general path spends its time in generic
machinery (the `_run` preamble, `TxContext.bind`, rule dispatch, `StateView` method calls,
`args.audit()`): 20-25% of the rule loop, measured (docs/benchmarks.md, Ledger, round 3).
This module evaluates a transfer that will certainly be APPLIED with the same checks,
reading and writing the block's `StateView` caches directly.

Contract (tested in tests/node/ledger/test_fastpath.py): `apply(stx, index)` either
- returns `(receipt, touched)` exactly as `Ledger._run` would have for this transaction on this
  view, having made exactly the writes `rules.transfer` plus the nonce bump make; or
- returns None having written NOTHING (it may have filled read caches, with the values the
  general path would read anyway). The caller then runs the general path, which finds the
  precise rejection reason (or applies an unusual case such as a first-time holder).

Anything not certainly an applied transfer goes to the general path: other kinds, another
chain, a regulator signer (quorum rules), a wrong nonce, an unknown or paused asset, a
self-transfer, any account that is missing, not registered, expired or has any freeze at all,
a recipient that never held the asset (its record must list it), an insufficient balance.
A change to `Ledger._run` or `rules.transfer` must be mirrored here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from node.ledger.records import AccountStatus, Receipt, ReceiptStatus
from node.ledger.view import StateView
from node.tx.kinds import TransferArgs
from node.tx.model import SignedTransaction

if TYPE_CHECKING:
    from node.ledger.rules import TxContext

FastResult = tuple[Receipt, tuple[bytes, bytes]]
_REGISTERED = str(AccountStatus.REGISTERED)


def transfer_fast_path(
    view: StateView, ctx: TxContext, *, chain_id: str
) -> Callable[[SignedTransaction, int], FastResult | None]:
    """The fast evaluator for one block on `view` with the block's context `ctx` (see the
    module docstring)."""
    height = ctx.height
    timestamp_ms = ctx.timestamp_ms
    # Everything the hot function needs is a closure cell (cheaper than attribute lookups).
    # The view's caches are shared, so the fast and general paths see each other's writes;
    # reaching into the view's private caches is deliberate (this is its hot-path companion).
    txn_get = view._txn.get
    accounts: dict[bytes, Any] = view._accounts
    assets: dict[bytes, Any] = view._assets
    balances: dict[bytes, int] = view._balances
    nonces: dict[bytes, int] = view._nonces
    dirty_balances = view._dirty_balances
    dirty_nonces = view._dirty_nonces
    balance_at = view.balance_at  # a miss: reads the log's index, then the tree
    nonces_db = view._nonces_db
    account_of = view.account
    asset_of = view.asset
    unpackb = msgpack.unpackb
    new_receipt = tuple.__new__
    applied = ReceiptStatus.APPLIED
    missing: Any = object()

    def apply(stx: SignedTransaction, index: int) -> FastResult | None:
        body = stx.body
        args = body.args
        if type(args) is not TransferArgs or body.chain_id != chain_id:
            return None
        signer = body.signer
        if signer in ctx.regulator_keys:  # read per tx: governance may change them mid-block
            return None
        nonce = nonces.get(signer, missing)
        if nonce is missing:
            raw = txn_get(signer, None, nonces_db)
            nonce = nonces[signer] = 0 if raw is None else unpackb(raw)
        if body.nonce != nonce:
            return None
        asset_id = args.asset_id
        asset_key = asset_id.encode()
        asset = assets.get(asset_key, missing)
        if asset is missing:
            asset = asset_of(asset_id)
        if asset is None or asset.paused:
            return None
        to_account = args.to_account
        if to_account == signer:
            return None
        sender = accounts.get(signer, missing)
        if sender is missing:
            sender = account_of(signer)
        if (
            sender is None
            or sender.status != _REGISTERED
            or sender.account_freeze is not None
            or sender.asset_freezes
            or (sender.expires_at_ms is not None and timestamp_ms >= sender.expires_at_ms)
        ):
            return None
        to = accounts.get(to_account, missing)
        if to is missing:
            to = account_of(to_account)
        if (
            to is None
            or to.status != _REGISTERED
            or to.account_freeze is not None
            or to.asset_freezes
            or (to.expires_at_ms is not None and timestamp_ms >= to.expires_at_ms)
            or asset_id not in to.assets
        ):
            return None
        prefix = asset_key + b"\x00"  # == keys.balance_prefix(asset_id)
        src_key = prefix + signer
        held = balances.get(src_key, missing)
        if held is missing:
            held = balance_at(src_key)
        amount = args.amount
        if held < amount:
            return None
        dst_key = prefix + to_account
        dst = balances.get(dst_key, missing)
        if dst is missing:
            dst = balance_at(dst_key)
        # Every check passed: the writes of rules.transfer, then the nonce bump of _run.
        balances[src_key] = dirty_balances[src_key] = held - amount
        balances[dst_key] = dirty_balances[dst_key] = dst + amount
        nonces[signer] = dirty_nonces[signer] = nonce + 1
        receipt = new_receipt(
            Receipt,
            (stx.tx_id, height, index, applied, None, body.kind, signer, None, None, ""),
        )  # == Receipt(...) in field order; a transfer carries no audit fields
        return receipt, (signer, to_account)

    return apply
