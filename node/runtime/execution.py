"""Checking proposals (before a backup votes) and applying committed blocks.

Both reuse the VerifiedCache, so a transaction admitted through this node's mempool is
decoded and signature-checked exactly once, whether it later shows up in a proposal, in a
committed block, or in a block fetched during state transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from node.finality import (
    EXECUTION_PAYLOAD_BYTES_MAX,
    EXECUTION_PAYLOAD_TXS_MAX,
    NULL_PAYLOAD,
    FinalityRecord,
    ProposalError,
    decode_proposal,
)
from node.ledger import Block
from node.ledger.pipeline import BlockPipeline, PendingBlock
from node.ledger.records import Receipt
from node.ledger.store import prepare_tx
from node.runtime.verifier import BatchVerifier, VerifiedCache
from node.tx import SignedTransaction, TxDecodeError, TxLimits

# The widest transaction a committed block may carry, whatever a node's own tx_bytes_max:
# local limits decide admission and votes, never how a committed block is applied.
EXECUTION_TX_LIMITS = TxLimits(tx_bytes_max=1 << 20, memo_bytes_max=1 << 19, signatures_max=64)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalRules:
    chain_id: str
    txs_max: int
    bytes_max: int
    clock_skew_max_ms: int
    tx_limits: TxLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    valid: bool
    reason: str = ""


async def _checked(
    raws: tuple[bytes, ...], cache: VerifiedCache, verifier: BatchVerifier, tx_limits: TxLimits
) -> list[SignedTransaction | TxDecodeError | None]:
    """Decode and signature-check every tx, using and filling the cache.

    Returns per tx: the decoded tx if its signatures verify, the decode error, or None for
    a decodable tx whose signatures do not verify.
    """
    out: list[SignedTransaction | TxDecodeError | None] = [None] * len(raws)
    pending: list[int] = []
    for i, raw in enumerate(raws):
        cached = cache.get(raw)
        if cached is not None:
            out[i] = cached[0] if cached[1] else None
            continue
        item = prepare_tx(raw, tx_limits)
        out[i] = item
        if not isinstance(item, TxDecodeError):
            pending.append(i)
    if pending:
        txs = [out[i] for i in pending]
        results = await verifier.verify(txs)  # type: ignore[arg-type]
        for i, ok in zip(pending, results, strict=True):
            stx = out[i]
            assert isinstance(stx, SignedTransaction)
            cache.put(raws[i], stx, ok)
            if not ok:
                out[i] = None
    return out


async def validate_proposal(
    payload: bytes,
    *,
    rules: ProposalRules,
    cache: VerifiedCache,
    verifier: BatchVerifier,
    now_ms: int,
) -> Verdict:
    """A backup's check before it PREPAREs: well-formed, within limits, every transaction
    decodable, for this chain and correctly signed, and a timestamp not ahead of our clock.
    Business rules (balances, nonces, roles) are not checked here: the ledger applies them
    deterministically at execution, and a rejected transaction still gets a receipt."""
    if payload == NULL_PAYLOAD:
        return Verdict(valid=True)
    try:
        proposal = decode_proposal(payload, txs_max=rules.txs_max, bytes_max=rules.bytes_max)
    except ProposalError as exc:
        return Verdict(valid=False, reason=str(exc))
    # Only a timestamp in the future is refused: execution uses max(timestamp, previous
    # block's), so an old one changes nothing, and a batch re-proposed after a long view
    # change is legitimately old.
    ahead = proposal.timestamp_ms - now_ms
    if ahead > rules.clock_skew_max_ms:
        return Verdict(valid=False, reason=f"timestamp {ahead} ms ahead of our clock")
    checked = await _checked(proposal.txs, cache, verifier, rules.tx_limits)
    for i, item in enumerate(checked):
        if isinstance(item, TxDecodeError):
            return Verdict(valid=False, reason=f"tx {i}: {item}")
        if item is None:
            return Verdict(valid=False, reason=f"tx {i}: bad signature")
        if item.body.chain_id != rules.chain_id:
            return Verdict(valid=False, reason=f"tx {i}: wrong chain {item.body.chain_id!r}")
    return Verdict(valid=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedBlock:
    height: int
    state_digest: bytes
    receipts: list[Receipt]
    txs: list[SignedTransaction]  # the decodable ones, for waking waiters and the mempool
    raws: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedBlock:
    """A committed block decoded and signature-checked, ready for the ledger."""

    seq: int
    raws: tuple[bytes, ...]
    proposed_ts: int
    decoded: list[SignedTransaction | TxDecodeError]
    signatures_ok: list[bool]
    certificate: bytes

    def applied(self, pending: PendingBlock) -> AppliedBlock:
        """What the node does next with the block, once `pending` is durable."""
        return AppliedBlock(
            height=self.seq,
            state_digest=pending.effects.state_digest,
            receipts=pending.wait(timeout_s=0),
            txs=[item for item in self.decoded if isinstance(item, SignedTransaction)],
            raws=self.raws,
        )


async def prepare_block(
    seq: int,
    finality: FinalityRecord,
    *,
    cache: VerifiedCache,
    verifier: BatchVerifier,
    on_undecodable: Callable[[int, str], None],
) -> PreparedBlock:
    """Decode committed block `seq` and check its signatures (cached ones once only).

    Everything here uses protocol-wide bounds (EXECUTION_*), never this node's settings: a
    committed block must be applied identically by every honest node, whatever its config.
    A committed payload was validated by at least f + 1 honest replicas, so it decodes; if it
    somehow does not, every honest node sees the same bytes and applies the same empty block,
    so they stay in agreement (and we say so loudly through `on_undecodable`).
    """
    txs: tuple[bytes, ...] = ()
    proposed_ts = 0
    if finality.payload != NULL_PAYLOAD:
        try:
            proposal = decode_proposal(
                finality.payload,
                txs_max=EXECUTION_PAYLOAD_TXS_MAX,
                bytes_max=EXECUTION_PAYLOAD_BYTES_MAX,
            )
            txs, proposed_ts = proposal.txs, proposal.timestamp_ms
        except ProposalError as exc:
            on_undecodable(seq, str(exc))
    checked = await _checked(txs, cache, verifier, EXECUTION_TX_LIMITS)
    return PreparedBlock(
        seq=seq,
        raws=txs,
        proposed_ts=proposed_ts,
        decoded=[
            item if item is not None else prepare_tx(raw, EXECUTION_TX_LIMITS)
            for item, raw in zip(checked, txs, strict=True)
        ],
        signatures_ok=[item is not None for item in checked],
        certificate=finality.encode(),
    )


def submit_block(pipeline: BlockPipeline, prepared: PreparedBlock) -> PendingBlock:
    """Evaluate and write a prepared block (blocking: run it in a worker thread). Its commit
    then runs in the background, overlapping the next block's evaluation."""
    # The proposer's clock is advisory: never go back in time (see proposal.py).
    timestamp = max(prepared.proposed_ts, pipeline.tip[1])
    block = Block(height=prepared.seq, timestamp_ms=timestamp, txs=prepared.raws)
    return pipeline.submit(
        block,
        decoded=prepared.decoded,
        signatures_ok=prepared.signatures_ok,
        certificate=prepared.certificate,
    )
