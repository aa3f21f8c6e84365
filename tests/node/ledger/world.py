"""Test fixture: a small chain with named keys, nonce bookkeeping and one-call blocks."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nacl.signing

from config.genesis import AccountSpec, AssetSpec, Genesis, ValidatorSpec
from node.ledger import Block, Ledger, LedgerLimits, Receipt
from node.tx import Kind, SignedTransaction, make_tx, public_key

CHAIN_ID = "test-chain"
GENESIS_TIME_MS = 1_700_000_000_000
SMALL_MAP_BYTES = 64 << 20


def key(seed: str) -> nacl.signing.SigningKey:
    """Deterministic keys: the same name gives the same key in every test run."""
    return nacl.signing.SigningKey(hashlib.sha256(seed.encode()).digest())


def kyc(name: str) -> bytes:
    return hashlib.sha256(b"kyc:" + name.encode()).digest()


def make_genesis(
    *,
    regulators: int = 1,
    threshold: int = 1,
    accounts: Iterable[AccountSpec] = (),
    assets: Iterable[AssetSpec] = (),
    chain_id: str = CHAIN_ID,
) -> Genesis:
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=GENESIS_TIME_MS,
        regulator_keys=tuple(public_key(key(f"regulator-{i}")) for i in range(regulators)),
        regulator_threshold=threshold,
        validators=(
            ValidatorSpec(
                name="v0", public_key=public_key(key("validator-0")), address="127.0.0.1:7000"
            ),
        ),
        accounts=tuple(accounts),
        assets=tuple(assets),
    )


class World:
    """A ledger plus the keys that act on it. `run` signs with the right nonce and applies."""

    def __init__(
        self,
        path: Path,
        genesis: Genesis,
        *,
        sync: bool = False,
        **limits: Any,
    ) -> None:
        """`limits`: LedgerLimits fields other than the small map (e.g. the state cache's)."""
        self.genesis = genesis
        self.path = path
        self.sync = sync
        self.limits = LedgerLimits(map_size_bytes=SMALL_MAP_BYTES, **limits)
        self.ledger = Ledger.open(path, genesis, limits=self.limits, sync=sync)
        self.nonces: dict[bytes, int] = {}
        self.time_ms = GENESIS_TIME_MS

    @property
    def regulators(self) -> list[nacl.signing.SigningKey]:
        return [key(f"regulator-{i}") for i in range(len(self.genesis.regulator_keys))]

    def tx(
        self,
        signer: nacl.signing.SigningKey,
        kind: Kind,
        args: dict[str, Any],
        *,
        cosigners: Iterable[nacl.signing.SigningKey] = (),
        nonce: int | None = None,
        memo: bytes | str | None = None,
    ) -> SignedTransaction:
        pk = public_key(signer)
        if nonce is None:
            nonce = self.nonces.get(pk, 0)
            self.nonces[pk] = nonce + 1
        return make_tx(
            kind,
            args,
            signer_key=signer,
            nonce=nonce,
            chain_id=self.genesis.chain_id,
            cosigners=cosigners,
            memo=memo,
        )

    def apply(self, *txs: SignedTransaction | bytes, advance_ms: int = 1000) -> list[Receipt]:
        self.time_ms += advance_ms
        raw = tuple(t if isinstance(t, bytes) else t.encode() for t in txs)
        block = Block(height=self.ledger.height + 1, timestamp_ms=self.time_ms, txs=raw)
        receipts = self.ledger.apply_block(block)
        # Keep our nonce bookkeeping honest: unauthentic txs did not consume theirs.
        for t, r in zip(txs, receipts, strict=True):
            if isinstance(t, SignedTransaction) and r.signer is None:
                pk = t.body.signer
                if self.nonces.get(pk) == t.body.nonce + 1:
                    self.nonces[pk] = t.body.nonce
        return receipts

    def one(self, signer: nacl.signing.SigningKey, kind: Kind, **args: Any) -> Receipt:
        return self.apply(self.tx(signer, kind, args))[0]

    def reg(self, kind: Kind, **args: Any) -> Receipt:
        """A regulator action signed by exactly `threshold` regulators."""
        regs = self.regulators
        signers = regs[: self.genesis.regulator_threshold]
        return self.apply(self.tx(signers[0], kind, args, cosigners=signers[1:]))[0]

    def reopen(self, **limits: Any) -> None:
        """Close the ledger and open it again, as a restarted node does; `limits` override
        this world's LedgerLimits fields."""
        self.ledger.close()
        self.limits = dataclasses.replace(self.limits, **limits)
        self.ledger = Ledger.open(self.path, self.genesis, limits=self.limits, sync=self.sync)

    def close(self) -> None:
        self.ledger.close()
