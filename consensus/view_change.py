"""View change: validating VIEW-CHANGE proofs and computing a NEW-VIEW (Castro & Liskov §4.4).

Given 2f + 1 valid VIEW-CHANGE messages V for view v:

- min_s is the highest stable checkpoint among V (each carries a 2f+1-signed proof);
- max_s is the highest sequence number with a prepared certificate in V;
- for every n in (min_s, max_s], the new view re-proposes the digest of the prepared
  certificate with the highest view for n found in V, or the null request if none.

Because any request committed at n in an earlier view was prepared at 2f + 1 replicas, at
least f + 1 honest ones, and any 2f + 1 VIEW-CHANGEs include one of those, the committed
digest has the highest-view prepared certificate for n (a certificate for a different
digest in a higher view would need a quorum that prepared in that higher view, and those
replicas would have re-proposed the committed digest). Replicas recompute this set from V
themselves and reject a NEW-VIEW that differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.encoding import digest
from consensus.messages import (
    GENESIS_STATE_DIGEST,
    NULL_DIGEST,
    NULL_PAYLOAD,
    PreparedProof,
    Signer,
    ViewChange,
    checkpoint_body,
    view_change_body,
    vote_body,
)
from consensus.signing import Purpose
from consensus.verifier import Verifier


def primary_of(view: int, names: tuple[str, ...]) -> str:
    return names[view % len(names)]


def checkpoint_proof_problem(
    v: Verifier, seq: int, state_digest: bytes, proof: tuple[Signer, ...], quorum: int
) -> str | None:
    if seq <= v.base_seq:
        # The epoch's starting checkpoint needs no proof: every replica of the epoch executed
        # it. Nothing below it belongs to this epoch.
        base = GENESIS_STATE_DIGEST if v.base_digest is None else v.base_digest
        if seq != v.base_seq or state_digest != base or proof:
            return "a checkpoint at or below the epoch start must be the start, without proof"
        return None
    signers = {name for name, _ in proof}
    if len(signers) != len(proof):
        return "checkpoint proof names a replica twice"
    if len(signers) < quorum:
        return f"checkpoint proof has {len(signers)} signatures, needs {quorum}"
    body = checkpoint_body(seq, state_digest)
    for name, sig in proof:
        if not v.check(Purpose.CHECKPOINT, name, body, sig):
            return f"bad checkpoint signature from {name}"
    return None


def prepared_proof_problem(v: Verifier, p: PreparedProof, quorum: int) -> str | None:
    primary = primary_of(p.view, v.names)
    body = vote_body(p.view, p.seq, p.digest)
    if not v.check(Purpose.PRE_PREPARE, primary, body, p.pre_prepare_signature):
        return f"bad pre-prepare signature in prepared proof for seq {p.seq}"
    names = {name for name, _ in p.prepares}
    if len(names) != len(p.prepares) or primary in names:
        return f"prepared proof for seq {p.seq} repeats a replica or counts the primary"
    if len(names) < quorum - 1:
        return f"prepared proof for seq {p.seq} has {len(names)} prepares, needs {quorum - 1}"
    for name, sig in p.prepares:
        if not v.check(Purpose.PREPARE, name, body, sig):
            return f"bad prepare signature from {name} for seq {p.seq}"
    return None


def view_change_problem(
    v: Verifier,
    vc: ViewChange,
    *,
    quorum: int,
    window: int,
    check_prepared: bool = True,
) -> str | None:
    """None if `vc` is a valid VIEW-CHANGE; else why not. `check_prepared=False` exists only
    for the simulator's planted-bug negative control."""
    if vc.replica not in v.keys:
        return f"{vc.replica} is not a validator"
    if not v.check(Purpose.VIEW_CHANGE, vc.replica, view_change_body(vc), vc.signature):
        return "bad view-change signature"
    problem = checkpoint_proof_problem(
        v, vc.checkpoint_seq, vc.checkpoint_digest, vc.checkpoint_proof, quorum
    )
    if problem:
        return problem
    seqs: set[int] = set()
    for i, p in enumerate(vc.prepared):
        if not vc.checkpoint_seq < p.seq <= vc.checkpoint_seq + window:
            return f"prepared seq {p.seq} outside the window of checkpoint {vc.checkpoint_seq}"
        if p.view >= vc.new_view:
            return f"prepared view {p.view} is not below the new view {vc.new_view}"
        if p.seq in seqs:
            return f"two prepared proofs for seq {p.seq}"
        seqs.add(p.seq)
        if vc.payloads and digest(vc.payloads[i]) != p.digest:
            return f"payload for seq {p.seq} does not match its digest"
        if check_prepared:
            problem = prepared_proof_problem(v, p, quorum)
            if problem:
                return problem
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewViewPlan:
    """What a NEW-VIEW for these VIEW-CHANGEs must contain (computed, never trusted)."""

    checkpoint_seq: int
    checkpoint_digest: bytes
    checkpoint_proof: tuple[Signer, ...]
    entries: tuple[tuple[int, bytes], ...]  # (seq, digest) for min_s < seq <= max_s


def plan_new_view(view_changes: tuple[ViewChange, ...]) -> NewViewPlan:
    """Deterministic in its input set (order does not matter)."""
    assert view_changes, "a new view needs view-change messages"
    best_ck = max(view_changes, key=lambda vc: (vc.checkpoint_seq, vc.replica))
    min_s = best_ck.checkpoint_seq
    chosen: dict[int, PreparedProof] = {}
    for vc in view_changes:
        for p in vc.prepared:
            if p.seq <= min_s:
                continue
            old = chosen.get(p.seq)
            # Highest view wins; ties (possible only beyond f faults) break on the digest so
            # that every replica computes the same set.
            if old is None or (p.view, p.digest) > (old.view, old.digest):
                chosen[p.seq] = p
    max_s = max(chosen, default=min_s)
    entries = tuple(
        (seq, chosen[seq].digest if seq in chosen else NULL_DIGEST)
        for seq in range(min_s + 1, max_s + 1)
    )
    return NewViewPlan(
        checkpoint_seq=min_s,
        checkpoint_digest=best_ck.checkpoint_digest,
        checkpoint_proof=best_ck.checkpoint_proof,
        entries=entries,
    )


def find_payload(view_changes: list[ViewChange], seq: int, d: bytes) -> bytes | None:
    """The payload for (seq, digest) from any VIEW-CHANGE that carried it."""
    if d == NULL_DIGEST:
        return NULL_PAYLOAD
    for vc in view_changes:
        for i, p in enumerate(vc.prepared):
            if p.seq == seq and p.digest == d and vc.payloads:
                return vc.payloads[i]
    return None
