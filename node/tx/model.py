"""The transaction: an unsigned body plus one or more signatures.

Wire layout (canonical msgpack, consensus/encoding.py):

    body   = [chain_id, signer, nonce, kind, args, memo]
    signed = [body, [[public_key, signature], ...]]

`tx_id = sha256(pack(body))`: signatures are outside the id, so adding or reordering
co-signatures never changes it, and (signer, nonce) can be applied at most once. Every
signature is `sign(key, Purpose.TRANSACTION, chain_id, pack(body))`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from consensus.encoding import digest, pack
from node.tx.errors import TxBuildError
from node.tx.kinds import ARGS_BY_KIND, KEY_BYTES, Args, Kind

NONCE_MAX = 2**63 - 1
SIGNATURE_BYTES = 64


def memo_bytes(memo: bytes | str | None) -> int:
    if memo is None:
        return 0
    return len(memo.encode()) if isinstance(memo, str) else len(memo)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """Unsigned body. Validated on creation; `body_bytes` and `tx_id` are computed once."""

    chain_id: str
    signer: bytes
    nonce: int
    kind: Kind
    args: Args
    memo: bytes | str | None = None
    body_bytes: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if type(self.signer) is not bytes or len(self.signer) != KEY_BYTES:
            raise TxBuildError(f"signer must be {KEY_BYTES} bytes")
        if type(self.nonce) is not int or not 0 <= self.nonce <= NONCE_MAX:
            raise TxBuildError(f"nonce must be an integer in 0..{NONCE_MAX}")
        if not isinstance(self.kind, Kind):
            raise TxBuildError(f"kind must be a Kind, got {self.kind!r}")
        if type(self.args) is not ARGS_BY_KIND[self.kind]:
            raise TxBuildError(
                f"args for {self.kind} must be {ARGS_BY_KIND[self.kind].__name__},"
                f" got {type(self.args).__name__}"
            )
        if self.memo is not None and not isinstance(self.memo, (bytes, str)):
            raise TxBuildError("memo must be bytes, str or None")
        if not self.body_bytes:
            object.__setattr__(self, "body_bytes", pack(self.wire()))

    def wire(self) -> list[Any]:
        return [
            self.chain_id,
            self.signer,
            self.nonce,
            str(self.kind),
            self.args.to_wire(),
            self.memo,
        ]

    @property
    def tx_id(self) -> bytes:
        return digest(self.body_bytes)

    @classmethod
    def _from_decoded(  # noqa: PLR0917 -- positional: called once per decoded tx
        cls,
        chain_id: str,
        signer: bytes,
        nonce: int,
        kind: Kind,
        args: Args,
        memo: bytes | str | None,
        body_bytes: bytes,
    ) -> Transaction:
        """Build WITHOUT re-validating: only for node.tx.codec, which has already checked
        every field at least as strictly as __post_init__ (runs once per decoded tx)."""
        obj = object.__new__(cls)
        set_chain_id, set_signer, set_nonce, set_kind, set_args, set_memo, set_body = _TX_SETTERS
        set_chain_id(obj, chain_id)
        set_signer(obj, signer)
        set_nonce(obj, nonce)
        set_kind(obj, kind)
        set_args(obj, args)
        set_memo(obj, memo)
        set_body(obj, body_bytes)
        return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedTransaction:
    body: Transaction
    signatures: tuple[tuple[bytes, bytes], ...]  # (public_key, signature), signer's included
    tx_id: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not self.tx_id:
            object.__setattr__(self, "tx_id", digest(self.body.body_bytes))

    def wire(self) -> list[Any]:
        return [self.body.wire(), [[pk, sig] for pk, sig in self.signatures]]

    def encode(self) -> bytes:
        """Canonical bytes for the wire and for blocks."""
        # The body's canonical bytes are already known; splice instead of re-encoding them.
        return b"\x92" + self.body.body_bytes + pack([[pk, sig] for pk, sig in self.signatures])

    def signer_keys(self) -> frozenset[bytes]:
        return frozenset(pk for pk, _ in self.signatures)

    @classmethod
    def _from_decoded(
        cls, body: Transaction, signatures: tuple[tuple[bytes, bytes], ...], tx_id: bytes
    ) -> SignedTransaction:
        """Build without __init__'s keyword plumbing: only for node.tx.codec."""
        obj = object.__new__(cls)
        set_body, set_signatures, set_tx_id = _SIGNED_SETTERS
        set_body(obj, body)
        set_signatures(obj, signatures)
        set_tx_id(obj, tx_id)
        return obj


# Slot setters of the frozen dataclasses, in field order (see the `_from_decoded` builders).
_TX_SETTERS = tuple(getattr(Transaction, f.name).__set__ for f in fields(Transaction))
_SIGNED_SETTERS = tuple(
    getattr(SignedTransaction, f.name).__set__ for f in fields(SignedTransaction)
)
