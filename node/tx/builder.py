"""Client-side construction and signing of transactions, for every kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import nacl.signing

from config.genesis import CHAIN_ID_PATTERN
from consensus.signing import Purpose, sign
from node.tx import kinds as k
from node.tx.errors import ArgsError, TxBuildError
from node.tx.limits import DEFAULT_TX_LIMITS, TxLimits
from node.tx.model import SignedTransaction, Transaction, memo_bytes

SigningKey = nacl.signing.SigningKey


def public_key(key: SigningKey) -> bytes:
    return key.verify_key.encode()


def sign_body(body: Transaction, key: SigningKey) -> tuple[bytes, bytes]:
    return (public_key(key), sign(key, Purpose.TRANSACTION, body.chain_id, body.body_bytes))


def add_signatures(stx: SignedTransaction, keys: Iterable[SigningKey]) -> SignedTransaction:
    """Co-sign an existing transaction (the id does not change)."""
    extra = tuple(sign_body(stx.body, key) for key in keys)
    return SignedTransaction(body=stx.body, signatures=stx.signatures + extra)


def make_tx(
    kind: k.Kind | str,
    args: k.Args | Mapping[str, Any],
    *,
    signer_key: SigningKey,
    nonce: int,
    chain_id: str,
    cosigners: Iterable[SigningKey] = (),
    memo: bytes | str | None = None,
    limits: TxLimits = DEFAULT_TX_LIMITS,
) -> SignedTransaction:
    """Build, validate and sign one transaction. Raises TxBuildError or ArgsError."""
    try:
        kind = k.Kind(kind)
    except ValueError:
        raise TxBuildError(f"unknown kind {kind!r}") from None
    if CHAIN_ID_PATTERN.fullmatch(chain_id) is None:
        raise TxBuildError(f"chain_id {chain_id!r} is not a valid chain id")
    cls = k.ARGS_BY_KIND[kind]
    if isinstance(args, Mapping):
        try:
            args = cls(**args)
        except TypeError as exc:
            raise ArgsError("args", str(exc)) from None
    if memo_bytes(memo) > limits.memo_bytes_max:
        raise TxBuildError(f"memo exceeds memo_bytes_max={limits.memo_bytes_max}")
    body = Transaction(
        chain_id=chain_id,
        signer=public_key(signer_key),
        nonce=nonce,
        kind=kind,
        args=args,
        memo=memo,
    )
    signatures = [sign_body(body, signer_key)]
    signer = public_key(signer_key)
    signatures += [sign_body(body, key) for key in cosigners if public_key(key) != signer]
    stx = SignedTransaction(body=body, signatures=tuple(signatures))
    size = len(stx.encode())
    if size > limits.tx_bytes_max:
        raise TxBuildError(
            f"transaction of {size} bytes exceeds tx_bytes_max={limits.tx_bytes_max}"
        )
    if len(stx.signatures) > limits.signatures_max:
        raise TxBuildError(f"more than signatures_max={limits.signatures_max} signatures")
    return stx


def build_transfer(  # noqa: PLR0917 -- the positional order clients expect
    key: SigningKey,
    chain_id: str,
    nonce: int,
    asset_id: str,
    to: bytes,
    amount: int,
    memo: bytes | str | None = None,
) -> SignedTransaction:
    return make_tx(
        k.Kind.TRANSFER,
        k.TransferArgs(asset_id=asset_id, to_account=to, amount=amount),
        signer_key=key,
        nonce=nonce,
        chain_id=chain_id,
        memo=memo,
    )
