"""Reported equivocation, as the ledger checks it: consensus.evidence with the ledger's limit.

The checking itself (what conflicts, which signatures, which epoch's domain) lives in
consensus/evidence.py, next to the message formats it decodes. The ledger only adds its size
limit for a reported message (node.tx.kinds.EVIDENCE_MESSAGE_BYTES_MAX, the same bound the
transaction's arguments are held to) and turns an EvidenceError into `bad_evidence`.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.evidence import KIND_CODES, Equivocation, EvidenceError
from consensus.evidence import check_equivocation as _check_equivocation
from node.tx.kinds import EVIDENCE_MESSAGE_BYTES_MAX

__all__ = ["KIND_CODES", "Equivocation", "EvidenceError", "check_equivocation"]


def check_equivocation(
    first: bytes,
    second: bytes,
    *,
    chain_id: str,
    epoch: int,
    key_of: Callable[[str], bytes | None],
) -> Equivocation:
    """Verify reported evidence; `key_of(name)` is the validator's key in `epoch` (None: not
    one of its validators). Raises EvidenceError."""
    return _check_equivocation(
        first,
        second,
        chain_id=chain_id,
        epoch=epoch,
        key_of=key_of,
        message_bytes_max=EVIDENCE_MESSAGE_BYTES_MAX,
    )
