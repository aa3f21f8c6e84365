"""The governance rules: the validator set, the regulator keys, equivocation evidence.

Same discipline as node/ledger/rules.py: check everything first (raising TxRejectedError),
then write (to `ctx.gov`, the block's GovernanceState), so a rejection writes nothing.

Timing (docs/ledger.md, "Governance"): a validator-set change updates the ledger's set at
once, but the set governing consensus changes only at the next epoch boundary, scheduled by
the first change of the epoch (GovernanceState.set_validators, consensus/epochs.py). Regulator
keys apply from the next transaction.

Safety of a validator-set change, checked on the resulting ledger set S' against the set S of
the epoch governing this block:
- |S'| >= VALIDATORS_MIN (4, so f >= 1) when the change shrinks the set, unless
  remove_validator.allow_below_minimum (then |S'| >= 1);           -> validator_set_too_small
- the validators of S' already in S with the same key must form a quorum of S': the new
  epoch must be able to decide with validators that are running and in sync, since a new
  (or re-keyed) validator first has to catch up.                    -> quorum_at_risk
"""

from __future__ import annotations

from config.genesis import VALIDATORS_MAX
from consensus.certificate import quorum_size
from consensus.evidence import EvidenceError, check_equivocation
from node.ledger import keys as kl
from node.ledger.governance_records import EvidenceRecord, GovernanceRecord, ValidatorInfo
from node.ledger.governance_state import ValidatorSet
from node.ledger.reasons import ReasonCode, TxRejectedError
from node.ledger.rules import Rule, TxContext, require_regulator
from node.tx import kinds as k

VALIDATORS_MIN = 4  # n = 3f + 1 with f >= 1: the smallest set that tolerates a fault


def _find(validators: ValidatorSet, name: str) -> int:
    for index, v in enumerate(validators):
        if v.name == name:
            return index
    raise TxRejectedError(ReasonCode.UNKNOWN_VALIDATOR, f"no validator named {name!r}")


def check_safety(
    epoch_set: ValidatorSet, new_set: ValidatorSet, *, shrinks: bool, allow_below_minimum: bool
) -> None:
    """The two rules of the module docstring. Raises TxRejectedError."""
    if shrinks:
        minimum = 1 if allow_below_minimum else VALIDATORS_MIN
        if len(new_set) < minimum:
            hint = "" if allow_below_minimum else " (allow_below_minimum overrides down to 1)"
            raise TxRejectedError(
                ReasonCode.VALIDATOR_SET_TOO_SMALL,
                f"{len(new_set)} validators would remain, at least {minimum} required{hint}",
            )
    running = {(v.name, v.public_key) for v in epoch_set}
    continuing = sum((v.name, v.public_key) in running for v in new_set)
    needed = quorum_size(len(new_set))
    if continuing < needed:
        raise TxRejectedError(
            ReasonCode.QUORUM_AT_RISK,
            f"{len(new_set)} validators need a quorum of {needed}, but only {continuing} of"
            " them are in the current epoch's set with the same key; wait for the epoch"
            " boundary before the next change",
        )


def _approvals(ctx: TxContext) -> tuple[tuple[bytes, bytes], ...]:
    """The regulator signatures that approved the transaction (the audit record)."""
    keys = ctx.regulator_keys
    return tuple((key, sig) for key, sig in ctx.stx.signatures if key in keys)  # type: ignore[union-attr]


def _change(ctx: TxContext, new_set: ValidatorSet, kind: k.Kind, args: dict[str, object]) -> None:
    gov = ctx.gov
    effective = gov.set_validators(new_set, ctx.height)
    gov.add_history(
        GovernanceRecord(
            height=ctx.height,
            tx_id=ctx.tx_id,
            kind=str(kind),
            args=args,
            signatures=_approvals(ctx),
            effective_from_seq=effective,
        ),
        ctx.index,
    )


def add_validator(ctx: TxContext, a: k.AddValidatorArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    gov = ctx.gov
    current = gov.validators()
    for v in current:
        if v.name == a.name or v.public_key == a.public_key or v.address == a.address:
            raise TxRejectedError(
                ReasonCode.VALIDATOR_EXISTS,
                f"validator {v.name!r} already has this name, key or address",
            )
    if len(current) >= VALIDATORS_MAX:
        raise TxRejectedError(ReasonCode.LIMIT_EXCEEDED, f"more than {VALIDATORS_MAX} validators")
    new_set = (*current, ValidatorInfo(name=a.name, public_key=a.public_key, address=a.address))
    check_safety(gov.current_epoch().validators, new_set, shrinks=False, allow_below_minimum=False)
    _change(
        ctx,
        new_set,
        k.Kind.ADD_VALIDATOR,
        {"name": a.name, "public_key": a.public_key, "address": a.address},
    )
    return (ctx.signer,)


def remove_validator(ctx: TxContext, a: k.RemoveValidatorArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    gov = ctx.gov
    current = gov.validators()
    index = _find(current, a.name)
    removed = current[index]
    new_set = current[:index] + current[index + 1 :]
    check_safety(
        gov.current_epoch().validators,
        new_set,
        shrinks=True,
        allow_below_minimum=a.allow_below_minimum,
    )
    _change(
        ctx,
        new_set,
        k.Kind.REMOVE_VALIDATOR,
        {
            "name": a.name,
            "allow_below_minimum": a.allow_below_minimum,
            "public_key": removed.public_key,
            "address": removed.address,
        },
    )
    return (ctx.signer,)


def rotate_validator_key(ctx: TxContext, a: k.RotateValidatorKeyArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)
    gov = ctx.gov
    current = gov.validators()
    index = _find(current, a.name)
    for v in current:
        if v.public_key == a.public_key:
            raise TxRejectedError(
                ReasonCode.VALIDATOR_EXISTS, f"validator {v.name!r} already uses this key"
            )
    old = current[index]
    rotated = ValidatorInfo(name=old.name, public_key=a.public_key, address=old.address)
    new_set = (*current[:index], rotated, *current[index + 1 :])  # keeps its position
    check_safety(gov.current_epoch().validators, new_set, shrinks=False, allow_below_minimum=False)
    _change(
        ctx,
        new_set,
        k.Kind.ROTATE_VALIDATOR_KEY,
        {"name": a.name, "public_key": a.public_key, "old_public_key": old.public_key},
    )
    return (ctx.signer,)


def set_regulator_keys(ctx: TxContext, a: k.SetRegulatorKeysArgs) -> tuple[bytes, ...]:
    require_regulator(ctx)  # the CURRENT threshold of the CURRENT keys
    old_keys, old_threshold = ctx.gov.regulators
    signatures = _approvals(ctx)
    ctx.gov.set_regulators(a.public_keys, a.threshold)
    ctx.gov.add_history(
        GovernanceRecord(
            height=ctx.height,
            tx_id=ctx.tx_id,
            kind=str(k.Kind.SET_REGULATOR_KEYS),
            args={
                "public_keys": list(a.public_keys),
                "threshold": a.threshold,
                "old_public_keys": list(old_keys),
                "old_threshold": old_threshold,
            },
            signatures=signatures,
            effective_from_seq=None,  # from the next transaction on
        ),
        ctx.index,
    )
    # The next transaction (of this block too) is judged by the new keys.
    ctx.regulator_keys = frozenset(a.public_keys)
    ctx.regulator_threshold = a.threshold
    return (ctx.signer,)


def report_equivocation(ctx: TxContext, a: k.ReportEquivocationArgs) -> tuple[bytes, ...]:
    gov = ctx.gov
    epoch = gov.epoch(a.epoch)
    reporters = {v.public_key for v in gov.validators()}
    if epoch is not None:
        reporters.update(v.public_key for v in epoch.validators)
    if ctx.signer not in reporters:
        raise TxRejectedError(ReasonCode.NOT_AUTHORIZED, "only a validator may report equivocation")
    if epoch is None:
        raise TxRejectedError(ReasonCode.BAD_EVIDENCE, f"epoch {a.epoch} does not exist (yet)")
    keys = {v.name: v.public_key for v in epoch.validators}
    try:
        proof = check_equivocation(
            a.first,
            a.second,
            chain_id=ctx.stx.body.chain_id,  # type: ignore[union-attr]
            epoch=a.epoch,
            key_of=keys.get,
        )
    except EvidenceError as exc:
        raise TxRejectedError(ReasonCode.BAD_EVIDENCE, str(exc)) from None
    index_key = kl.evidence_key(a.epoch, proof.kind_code, proof.view, proof.seq, proof.validator)
    if gov.get(kl.EVIDENCE_INDEX, index_key) is not None:
        raise TxRejectedError(
            ReasonCode.DUPLICATE_EVIDENCE,
            f"{proof.message_kind} equivocation of {proof.validator} at view {proof.view},"
            f" seq {proof.seq} in epoch {a.epoch} is already recorded",
        )
    gov.add_evidence(
        EvidenceRecord(
            height=ctx.height,
            tx_id=ctx.tx_id,
            validator=proof.validator,
            public_key=proof.public_key,
            epoch=a.epoch,
            message_kind=proof.message_kind,
            view=proof.view,
            seq=proof.seq,
            first=a.first,
            second=a.second,
            reporter=ctx.signer,
        ),
        ctx.index,
        index_key,
    )
    return (ctx.signer,)


GOVERNANCE_RULES: dict[k.Kind, Rule] = {
    k.Kind.ADD_VALIDATOR: add_validator,
    k.Kind.REMOVE_VALIDATOR: remove_validator,
    k.Kind.ROTATE_VALIDATOR_KEY: rotate_validator_key,
    k.Kind.SET_REGULATOR_KEYS: set_regulator_keys,
    k.Kind.REPORT_EQUIVOCATION: report_equivocation,
}
