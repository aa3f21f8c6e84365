"""Signature checks, separate from decoding so they can run in worker threads.

A transaction's signatures are valid iff every listed signature verifies over its body and
the signer's own signature is among them. Co-signatures that verify but come from keys
without a role are harmless here; the ledger decides which ones count (regulator threshold).
PyNaCl releases the GIL while verifying, so a thread pool scales with cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from consensus.signing import Purpose, verify
from node.tx.model import SignedTransaction

VERIFY_CHUNK_TXS = 256  # per task: large enough to amortise scheduling, small enough to spread


def verify_transaction(stx: SignedTransaction) -> bool:
    body = stx.body
    if body.signer not in stx.signer_keys():
        return False
    payload = body.body_bytes
    chain_id = body.chain_id
    return all(
        verify(public_key, signature, Purpose.TRANSACTION, chain_id, payload)
        for public_key, signature in stx.signatures
    )


def regulator_approvals(stx: SignedTransaction, regulator_keys: frozenset[bytes]) -> int:
    """Distinct regulator keys among the transaction's (verified) signatures."""
    return len(stx.signer_keys() & regulator_keys)


def regulator_quorum_ok(
    stx: SignedTransaction, regulator_keys: frozenset[bytes], threshold: int
) -> bool:
    """A transaction signed by a regulator key speaks for the regulator only with `threshold`
    distinct regulator signatures. This is part of authenticity, not a business rule: the tx
    id covers the body only, so an under-signed copy (co-signatures stripped in transit)
    must not consume the nonce or claim the id of the real, fully signed transaction."""
    return stx.body.signer not in regulator_keys or (
        regulator_approvals(stx, regulator_keys) >= threshold
    )


def verify_batch(txs: Sequence[SignedTransaction]) -> list[bool]:
    return [verify_transaction(stx) for stx in txs]


def verify_parallel(
    txs: Sequence[SignedTransaction], threads: int, *, executor: ThreadPoolExecutor | None = None
) -> list[bool]:
    """`verify_batch` spread over `threads` workers (or a caller-owned executor)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if threads == 1 and executor is None:
        return verify_batch(txs)
    chunks = [txs[i : i + VERIFY_CHUNK_TXS] for i in range(0, len(txs), VERIFY_CHUNK_TXS)]
    if executor is not None:
        results = executor.map(verify_batch, chunks)
        return [ok for chunk in results for ok in chunk]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [ok for chunk in pool.map(verify_batch, chunks) for ok in chunk]
