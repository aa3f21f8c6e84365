"""The ledger's rules, one function per kind.

Each rule first checks everything (raising `TxRejectedError(code)`) and only then writes to the
state view, so a rejected transaction leaves the view exactly as it found it: no per-tx
rollback is needed. A rule returns the accounts the transaction touched (for history).

Authority (see docs/ledger.md):
- a signer that is a regulator key acts as the regulator and needs `regulator_threshold`
  distinct regulator signatures (its own included); duplicates and foreign keys don't count;
- registrars (role) may register/revoke accounts; issuers (role) act on their own assets;
- everyone else may only `transfer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.ledger.governance_state import GovernanceState
from node.ledger.reasons import ReasonCode, TxRejectedError
from node.ledger.records import AccountRecord, AccountStatus, AssetRecord, Authority, Freeze
from node.ledger.view import StateView
from node.tx import kinds as k
from node.tx.model import SignedTransaction
from node.tx.verify import regulator_approvals

ACCOUNT_FREEZES_MAX = 256  # per-asset freezes on one account


class TxContext:
    """What a rule may know about the transaction and the block it is in."""

    __slots__ = (
        "gov",
        "height",
        "index",
        "regulator_keys",
        "regulator_threshold",
        "signer",
        "stx",
        "timestamp_ms",
        "tx_id",
        "view",
    )

    def __init__(
        self,
        *,
        view: StateView,
        height: int,
        timestamp_ms: int,
        regulator_keys: frozenset[bytes],
        regulator_threshold: int,
        gov: GovernanceState,
    ) -> None:
        self.view = view
        self.gov = gov  # governance records (node/ledger/governance.py); untouched by others
        self.height = height
        self.timestamp_ms = timestamp_ms
        # The ledger's regulator keys; set_regulator_keys replaces them for the next tx.
        self.regulator_keys = regulator_keys
        self.regulator_threshold = regulator_threshold
        self.stx: SignedTransaction | None = None
        self.signer = b""
        self.tx_id = b""
        self.index = -1

    def bind(self, stx: SignedTransaction, index: int) -> None:
        """Point the (per-block) context at the next transaction."""
        self.stx = stx
        self.signer = stx.body.signer
        self.tx_id = stx.tx_id
        self.index = index

    @property
    def is_regulator(self) -> bool:
        return self.signer in self.regulator_keys


# ------------------------------------------------------------------ shared checks


def _who(account: bytes) -> str:
    return account[:4].hex()


def require_regulator(ctx: TxContext) -> None:
    if not ctx.is_regulator:
        raise TxRejectedError(ReasonCode.NOT_AUTHORIZED, "only the regulator may do this")
    approvals = regulator_approvals(ctx.stx, ctx.regulator_keys)  # type: ignore[arg-type]
    if approvals < ctx.regulator_threshold:
        raise TxRejectedError(
            ReasonCode.REGULATOR_THRESHOLD_NOT_MET,
            f"{approvals} distinct regulator signatures, {ctx.regulator_threshold} required",
        )


def require_active(
    ctx: TxContext, account: bytes, asset_id: str | None, role: str = "account"
) -> AccountRecord:
    """The account exists, is registered, not expired and not frozen (for `asset_id`)."""
    record = ctx.view.account(account)
    if record is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{role} {_who(account)} is not registered"
        )
    if record.status != AccountStatus.REGISTERED:
        code = (
            ReasonCode.ACCOUNT_RECOVERED
            if record.status == AccountStatus.RECOVERED
            else ReasonCode.ACCOUNT_REVOKED
        )
        raise TxRejectedError(code, f"{role} {_who(account)} is {record.status}")
    if record.expires_at_ms is not None and ctx.timestamp_ms >= record.expires_at_ms:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_EXPIRED, f"{role} {_who(account)} registration expired"
        )
    if record.is_frozen_for(asset_id):
        raise TxRejectedError(ReasonCode.ACCOUNT_FROZEN, f"{role} {_who(account)} is frozen")
    return record


def require_asset(ctx: TxContext, asset_id: str) -> AssetRecord:
    asset = ctx.view.asset(asset_id)
    if asset is None:
        raise TxRejectedError(ReasonCode.UNKNOWN_ASSET, f"asset {asset_id} does not exist")
    return asset


def require_issuer_of(ctx: TxContext, asset: AssetRecord) -> None:
    if asset.issuer != ctx.signer or not ctx.view.has_role(ctx.signer, k.Role.ISSUER):
        raise TxRejectedError(
            ReasonCode.NOT_AUTHORIZED, f"only the issuer of {asset.asset_id} may do this"
        )
    require_active(ctx, ctx.signer, None, "issuer")


def _credit(view: StateView, asset_id: str, account: bytes, record: AccountRecord, n: int) -> None:
    view.set_balance(asset_id, account, view.balance(asset_id, account) + n)
    if asset_id not in record.assets:
        _remember_asset(view, account, record, asset_id)


def _remember_asset(view: StateView, account: bytes, record: AccountRecord, asset_id: str) -> None:
    # Every asset an account ever held is listed in its record, so recovery needs no scan.
    assets = tuple(sorted((*record.assets, asset_id)))
    view.put_account(account, record._replace(assets=assets))


def _move(
    view: StateView, asset_id: str, *, src: bytes, dst: bytes, dst_record: AccountRecord, n: int
) -> None:
    view.set_balance(asset_id, src, view.balance(asset_id, src) - n)
    _credit(view, asset_id, dst, dst_record, n)


# ------------------------------------------------------------------ account administration


def register_account(ctx: TxContext, a: k.RegisterAccountArgs) -> tuple[bytes, ...]:
    if ctx.is_regulator:
        require_regulator(ctx)
    else:
        if not ctx.view.has_role(ctx.signer, k.Role.REGISTRAR):
            raise TxRejectedError(
                ReasonCode.NOT_AUTHORIZED, "only the regulator or a registrar may register"
            )
        require_active(ctx, ctx.signer, None, "registrar")
    old = ctx.view.account(a.account)
    if old is not None and old.status == AccountStatus.RECOVERED:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_RECOVERED, "a recovered key can never be registered again"
        )
    if old is None:
        record = AccountRecord(
            category=str(a.category),
            kyc_hash=a.kyc_hash,
            expires_at_ms=a.expires_at_ms,
            status=AccountStatus.REGISTERED,
            recovered_to=None,
            account_freeze=None,
            asset_freezes=(),
            assets=(),
            registered_height=ctx.height,
        )
    else:
        # Re-registration renews KYC data (or reinstates a revoked account); freezes stay.
        record = old._replace(
            category=str(a.category),
            kyc_hash=a.kyc_hash,
            expires_at_ms=a.expires_at_ms,
            status=AccountStatus.REGISTERED,
        )
    ctx.view.put_account(a.account, record)
    return (ctx.signer, a.account)


def revoke_account(ctx: TxContext, a: k.RevokeAccountArgs) -> tuple[bytes, ...]:
    if ctx.is_regulator:
        require_regulator(ctx)
    else:
        if not ctx.view.has_role(ctx.signer, k.Role.REGISTRAR):
            raise TxRejectedError(
                ReasonCode.NOT_AUTHORIZED, "only the regulator or a registrar may revoke"
            )
        require_active(ctx, ctx.signer, None, "registrar")
    old = ctx.view.account(a.account)
    if old is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{_who(a.account)} is not registered"
        )
    if old.status != AccountStatus.REGISTERED:
        code = (
            ReasonCode.ACCOUNT_RECOVERED
            if old.status == AccountStatus.RECOVERED
            else ReasonCode.ACCOUNT_REVOKED
        )
        raise TxRejectedError(code, f"{_who(a.account)} is already {old.status}")
    ctx.view.put_account(a.account, old._replace(status=AccountStatus.REVOKED))
    return (ctx.signer, a.account)


def grant_role(ctx: TxContext, a: k.GrantRoleArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    require_active(ctx, a.account, None)
    if ctx.view.has_role(a.account, a.role):
        raise TxRejectedError(
            ReasonCode.ROLE_ALREADY_GRANTED, f"{_who(a.account)} already has role {a.role}"
        )
    ctx.view.set_role(a.account, a.role, True)
    return (ctx.signer, a.account)


def revoke_role(ctx: TxContext, a: k.RevokeRoleArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    if not ctx.view.has_role(a.account, a.role):
        raise TxRejectedError(
            ReasonCode.ROLE_NOT_GRANTED, f"{_who(a.account)} does not have role {a.role}"
        )
    ctx.view.set_role(a.account, a.role, False)
    return (ctx.signer, a.account)


def recover_account(ctx: TxContext, a: k.RecoverAccountArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    if a.lost_account == a.new_account:
        raise TxRejectedError(ReasonCode.SELF_TRANSFER, "lost and new account are the same")
    view = ctx.view
    lost = view.account(a.lost_account)
    if lost is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{_who(a.lost_account)} is not registered"
        )
    if lost.status == AccountStatus.RECOVERED:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_RECOVERED, f"{_who(a.lost_account)} was already recovered"
        )
    new = require_active(ctx, a.new_account, None, "new account")
    # Freezes follow the funds: a recovery must not be a way out of a court order.
    carried = {f.asset_id: f for f in new.asset_freezes}
    for f in lost.asset_freezes:
        carried.setdefault(f.asset_id, f)
    if len(carried) > ACCOUNT_FREEZES_MAX:
        raise TxRejectedError(ReasonCode.LIMIT_EXCEEDED, "too many freezes on the new account")
    moves = [(asset_id, view.balance(asset_id, a.lost_account)) for asset_id in lost.assets]
    new = new._replace(
        account_freeze=new.account_freeze or lost.account_freeze,
        asset_freezes=tuple(sorted(carried.values(), key=lambda f: f.asset_id or "")),
    )
    view.put_account(a.new_account, new)
    for asset_id, amount in moves:
        if amount:
            _move(
                view,
                asset_id,
                src=a.lost_account,
                dst=a.new_account,
                dst_record=view.account(a.new_account),  # type: ignore[arg-type]
                n=amount,
            )
    view.put_account(
        a.lost_account,
        view.account(a.lost_account)._replace(  # type: ignore[union-attr]
            status=AccountStatus.RECOVERED,
            recovered_to=a.new_account,
        ),
    )
    return (ctx.signer, a.lost_account, a.new_account)


# ------------------------------------------------------------------ freezes


def _freeze_authority(ctx: TxContext, asset_id: str | None) -> str:
    if ctx.is_regulator:
        require_regulator(ctx)
        if asset_id is not None:
            require_asset(ctx, asset_id)
        return Authority.REGULATOR
    if asset_id is None:
        raise TxRejectedError(
            ReasonCode.NOT_AUTHORIZED, "only the regulator may freeze a whole account"
        )
    require_issuer_of(ctx, require_asset(ctx, asset_id))
    return Authority.ISSUER


def freeze(ctx: TxContext, a: k.FreezeArgs) -> tuple[bytes, ...]:
    by = _freeze_authority(ctx, a.asset_id)
    record = ctx.view.account(a.account)
    if record is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{_who(a.account)} is not registered"
        )
    entry = Freeze(
        asset_id=a.asset_id,
        reason_code=a.reason_code,
        order_ref=a.order_ref,
        by=by,
        tx_id=ctx.tx_id,
        height=ctx.height,
    )
    if a.asset_id is None:
        if record.account_freeze is not None:
            raise TxRejectedError(ReasonCode.ALREADY_FROZEN, f"{_who(a.account)} is already frozen")
        record = record._replace(account_freeze=entry)
    else:
        if any(f.asset_id == a.asset_id for f in record.asset_freezes):
            raise TxRejectedError(
                ReasonCode.ALREADY_FROZEN, f"{_who(a.account)} is already frozen for {a.asset_id}"
            )
        if len(record.asset_freezes) >= ACCOUNT_FREEZES_MAX:
            raise TxRejectedError(
                ReasonCode.LIMIT_EXCEEDED, f"more than {ACCOUNT_FREEZES_MAX} asset freezes"
            )
        freezes = tuple(sorted((*record.asset_freezes, entry), key=lambda f: f.asset_id or ""))
        record = record._replace(asset_freezes=freezes)
    ctx.view.put_account(a.account, record)
    return (ctx.signer, a.account)


def unfreeze(ctx: TxContext, a: k.UnfreezeArgs) -> tuple[bytes, ...]:
    by = _freeze_authority(ctx, a.asset_id)
    record = ctx.view.account(a.account)
    if record is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{_who(a.account)} is not registered"
        )
    if a.asset_id is None:
        if record.account_freeze is None:
            raise TxRejectedError(ReasonCode.NOT_FROZEN, f"{_who(a.account)} is not frozen")
        record = record._replace(account_freeze=None)
    else:
        found = [f for f in record.asset_freezes if f.asset_id == a.asset_id]
        if not found:
            raise TxRejectedError(
                ReasonCode.NOT_FROZEN, f"{_who(a.account)} is not frozen for {a.asset_id}"
            )
        if found[0].by == Authority.REGULATOR and by != Authority.REGULATOR:
            raise TxRejectedError(
                ReasonCode.NOT_AUTHORIZED, "only the regulator may lift a regulator's freeze"
            )
        rest = tuple(f for f in record.asset_freezes if f.asset_id != a.asset_id)
        record = record._replace(asset_freezes=rest)
    ctx.view.put_account(a.account, record)
    return (ctx.signer, a.account)


# ------------------------------------------------------------------ assets


def set_supply_cap(ctx: TxContext, a: k.SetSupplyCapArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    asset = require_asset(ctx, a.asset_id)
    if a.cap < asset.supply:
        raise TxRejectedError(
            ReasonCode.CAP_BELOW_SUPPLY, f"cap {a.cap} is below the supply {asset.supply}"
        )
    ctx.view.put_asset(asset._replace(cap=a.cap))
    return (ctx.signer, asset.issuer)


def create_asset(ctx: TxContext, a: k.CreateAssetArgs) -> tuple[bytes, ...]:
    if not ctx.view.has_role(ctx.signer, k.Role.ISSUER):
        raise TxRejectedError(ReasonCode.NOT_AUTHORIZED, "only an issuer may create assets")
    require_active(ctx, ctx.signer, None, "issuer")
    if ctx.view.asset(a.asset_id) is not None:
        raise TxRejectedError(ReasonCode.ASSET_EXISTS, f"asset {a.asset_id} already exists")
    ctx.view.put_asset(
        AssetRecord(
            asset_id=a.asset_id,
            name=a.name,
            decimals=a.decimals,
            cap=a.cap,
            issuer=ctx.signer,
            document_hash=a.document_hash,
            supply=0,
            paused=False,
            created_height=ctx.height,
        )
    )
    return (ctx.signer,)


def mint(ctx: TxContext, a: k.MintArgs) -> tuple[bytes, ...]:
    asset = require_asset(ctx, a.asset_id)
    require_issuer_of(ctx, asset)
    if asset.paused:
        raise TxRejectedError(ReasonCode.ASSET_PAUSED, f"{a.asset_id} is paused")
    to = require_active(ctx, a.to_account, a.asset_id, "recipient")
    if asset.supply + a.amount > asset.cap:
        raise TxRejectedError(
            ReasonCode.SUPPLY_CAP_EXCEEDED,
            f"supply {asset.supply} + {a.amount} exceeds the cap {asset.cap}",
        )
    ctx.view.put_asset(asset._replace(supply=asset.supply + a.amount))
    _credit(ctx.view, a.asset_id, a.to_account, to, a.amount)
    return (ctx.signer, a.to_account)


def burn(ctx: TxContext, a: k.BurnArgs) -> tuple[bytes, ...]:
    asset = require_asset(ctx, a.asset_id)
    require_issuer_of(ctx, asset)
    if asset.paused:
        raise TxRejectedError(ReasonCode.ASSET_PAUSED, f"{a.asset_id} is paused")
    require_active(ctx, ctx.signer, a.asset_id, "issuer")
    held = ctx.view.balance(a.asset_id, ctx.signer)
    if held < a.amount:
        raise TxRejectedError(
            ReasonCode.INSUFFICIENT_BALANCE, f"issuer holds {held}, burning {a.amount}"
        )
    ctx.view.set_balance(a.asset_id, ctx.signer, held - a.amount)
    ctx.view.put_asset(asset._replace(supply=asset.supply - a.amount))
    return (ctx.signer,)


def pause(ctx: TxContext, a: k.PauseArgs) -> tuple[bytes, ...]:
    asset = require_asset(ctx, a.asset_id)
    require_issuer_of(ctx, asset)
    if asset.paused:
        raise TxRejectedError(ReasonCode.ASSET_PAUSED, f"{a.asset_id} is already paused")
    ctx.view.put_asset(asset._replace(paused=True))
    return (ctx.signer,)


def unpause(ctx: TxContext, a: k.UnpauseArgs) -> tuple[bytes, ...]:
    asset = require_asset(ctx, a.asset_id)
    require_issuer_of(ctx, asset)
    if not asset.paused:
        raise TxRejectedError(ReasonCode.ASSET_NOT_PAUSED, f"{a.asset_id} is not paused")
    ctx.view.put_asset(asset._replace(paused=False))
    return (ctx.signer,)


# ------------------------------------------------------------------ movements


_REGISTERED = str(AccountStatus.REGISTERED)  # a plain str: compared twice per transfer


def _active_fast(record: AccountRecord | None, timestamp_ms: int) -> bool:
    """The common case of `require_active` (no freezes at all), for the transfer path; on
    False the caller runs `require_active`, which returns the record if it is active after
    all (e.g. frozen for another asset only) or raises with the precise reason."""
    return (
        record is not None
        and record.status == _REGISTERED
        and record.account_freeze is None
        and not record.asset_freezes
        and (record.expires_at_ms is None or timestamp_ms < record.expires_at_ms)
    )


def transfer(ctx: TxContext, a: k.TransferArgs) -> tuple[bytes, ...]:
    # The hot path of the ledger: same checks as everywhere, fewer calls. Its applied case
    # is mirrored by node/ledger/fastpath.py: a check added here must be added there too.
    view = ctx.view
    signer = ctx.signer
    asset_id = a.asset_id
    to_account = a.to_account
    amount = a.amount
    asset = view.asset(asset_id)
    if asset is None:
        raise TxRejectedError(ReasonCode.UNKNOWN_ASSET, f"asset {asset_id} does not exist")
    if asset.paused:
        raise TxRejectedError(ReasonCode.ASSET_PAUSED, f"{asset_id} is paused")
    if to_account == signer:
        raise TxRejectedError(ReasonCode.SELF_TRANSFER, "sender and recipient are the same")
    ts = ctx.timestamp_ms
    if not _active_fast(view.account(signer), ts):
        require_active(ctx, signer, asset_id, "sender")
    to = view.account(to_account)
    if not _active_fast(to, ts):
        to = require_active(ctx, to_account, asset_id, "recipient")
    prefix = view.balance_prefix(asset_id)
    src_key = prefix + signer  # == kl.balance_key(asset_id, signer)
    held = view.balance_at(src_key)
    if held < amount:
        raise TxRejectedError(
            ReasonCode.INSUFFICIENT_BALANCE, f"sender holds {held}, sending {amount}"
        )
    view.move_at(src_key, prefix + to_account, held, amount)
    if asset_id not in to.assets:  # type: ignore[union-attr]
        _remember_asset(view, to_account, to, asset_id)  # type: ignore[arg-type]
    return (signer, to_account)


def force_transfer(ctx: TxContext, a: k.ForceTransferArgs) -> tuple[bytes, ...]:
    """Regulator-ordered movement: ignores pauses and the source's freeze (a seizure), but
    the recipient must be an active, unfrozen account."""
    require_regulator(ctx)
    require_asset(ctx, a.asset_id)
    if a.from_account == a.to_account:
        raise TxRejectedError(ReasonCode.SELF_TRANSFER, "source and recipient are the same")
    if ctx.view.account(a.from_account) is None:
        raise TxRejectedError(
            ReasonCode.ACCOUNT_NOT_REGISTERED, f"{_who(a.from_account)} is not registered"
        )
    to = require_active(ctx, a.to_account, a.asset_id, "recipient")
    held = ctx.view.balance(a.asset_id, a.from_account)
    if held < a.amount:
        raise TxRejectedError(
            ReasonCode.INSUFFICIENT_BALANCE, f"source holds {held}, moving {a.amount}"
        )
    _move(ctx.view, a.asset_id, src=a.from_account, dst=a.to_account, dst_record=to, n=a.amount)
    return (ctx.signer, a.from_account, a.to_account)


Rule = Callable[[TxContext, Any], tuple[bytes, ...]]

RULES: dict[k.Kind, Rule] = {
    k.Kind.REGISTER_ACCOUNT: register_account,
    k.Kind.REVOKE_ACCOUNT: revoke_account,
    k.Kind.GRANT_ROLE: grant_role,
    k.Kind.REVOKE_ROLE: revoke_role,
    k.Kind.SET_SUPPLY_CAP: set_supply_cap,
    k.Kind.FORCE_TRANSFER: force_transfer,
    k.Kind.RECOVER_ACCOUNT: recover_account,
    k.Kind.FREEZE: freeze,
    k.Kind.UNFREEZE: unfreeze,
    k.Kind.CREATE_ASSET: create_asset,
    k.Kind.MINT: mint,
    k.Kind.BURN: burn,
    k.Kind.PAUSE: pause,
    k.Kind.UNPAUSE: unpause,
    k.Kind.TRANSFER: transfer,
}
# Governance kinds have their rules in node/ledger/governance.py; node/ledger/dispatch.py
# joins both tables (governance imports this module, so this one cannot import it).
assert set(RULES) == set(k.Kind) - k.GOVERNANCE_RULE_KINDS, "every kind needs a rule"
