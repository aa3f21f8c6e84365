"""Test fixture for governance: a chain of N validators and helpers for the five new kinds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import nacl.signing

from config.genesis import AccountSpec, Genesis, ValidatorSpec
from consensus.epochs import signing_domain
from consensus.evidence import evidence_form
from consensus.messages import (
    Message,
    encode_message,
    make_checkpoint,
    make_commit,
    make_pre_prepare,
    make_prepare,
)
from node.ledger import Ledger, LedgerLimits, Receipt
from node.tx import Kind, SignedTransaction, public_key
from tests.node.ledger.world import CHAIN_ID, GENESIS_TIME_MS, World, key, kyc

ALICE = key("alice")  # a registered account, not a regulator, not a validator


def vkey(name: str) -> nacl.signing.SigningKey:
    return key(f"validator-{name}")


def vpub(name: str) -> bytes:
    return public_key(vkey(name))


def address(name: str) -> str:
    # Distinct per name: v0 -> port 7000, v17 -> 7017, x3 -> 8003...
    base = 7000 if name.startswith("v") else 8000
    return f"127.0.0.1:{base + int(name[1:])}"


def governance_genesis(validators: int = 4, *, regulators: int = 1, threshold: int = 1) -> Genesis:
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=GENESIS_TIME_MS,
        regulator_keys=tuple(public_key(key(f"regulator-{i}")) for i in range(regulators)),
        regulator_threshold=threshold,
        validators=tuple(
            ValidatorSpec(name=f"v{i}", public_key=vpub(f"v{i}"), address=address(f"v{i}"))
            for i in range(validators)
        ),
        accounts=(
            AccountSpec(public_key=public_key(ALICE), category="individual", kyc_hash=kyc("a")),
        ),
    )


class GovWorld(World):
    """World plus one-call governance transactions and block stepping."""

    def __init__(self, path: Path, genesis: Genesis, limits: LedgerLimits | None = None) -> None:
        super().__init__(path, genesis)
        if limits is not None:
            self.ledger.close()
            self.ledger = Ledger.open(path, genesis, limits=limits, sync=False)
        self.regulator_keys = list(self.regulators)  # signing keys of the current regulators
        self.threshold = genesis.regulator_threshold

    def gov_tx(self, kind: Kind, **args: Any) -> SignedTransaction:
        """Signed by exactly the current threshold of the current regulators."""
        signers = self.regulator_keys[: self.threshold]
        return self.tx(signers[0], kind, args, cosigners=signers[1:])

    def gov(self, kind: Kind, **args: Any) -> Receipt:
        return self.apply(self.gov_tx(kind, **args))[0]

    def add(self, name: str, **kw: Any) -> Receipt:
        args = {"name": name, "public_key": vpub(name), "address": address(name)} | kw
        return self.gov(Kind.ADD_VALIDATOR, **args)

    def remove(self, name: str, *, allow_below_minimum: bool = False) -> Receipt:
        return self.gov(Kind.REMOVE_VALIDATOR, name=name, allow_below_minimum=allow_below_minimum)

    def rotate(self, name: str, new_key_seed: str) -> Receipt:
        return self.gov(Kind.ROTATE_VALIDATOR_KEY, name=name, public_key=vpub(new_key_seed))

    def empty_blocks_until(self, height: int) -> None:
        while self.ledger.height < height:
            self.apply()

    def report(
        self, reporter: nacl.signing.SigningKey, epoch: int, first: bytes, second: bytes
    ) -> Receipt:
        return self.apply(
            self.tx(
                reporter,
                Kind.REPORT_EQUIVOCATION,
                {"epoch": epoch, "first": first, "second": second},
            )
        )[0]


def digest_of(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def conflicting_votes(
    kind: str,
    signer: nacl.signing.SigningKey,
    name: str,
    *,
    epoch: int,
    view: int = 0,
    seq: int = 5,
) -> tuple[bytes, bytes]:
    """Two encoded messages of `kind` by `name`, same (view, seq), different digests."""
    domain = signing_domain(CHAIN_ID, epoch)
    out = []
    for label in ("a", "b"):
        m: Message
        if kind == "prepare":
            m = make_prepare(signer, domain, name, view=view, seq=seq, d=digest_of(label))
        elif kind == "commit":
            m = make_commit(signer, domain, name, view=view, seq=seq, d=digest_of(label))
        elif kind == "pre_prepare":
            full = make_pre_prepare(
                signer, domain, name, view=view, seq=seq, payload=label.encode()
            )
            m = evidence_form(full)  # reported with the payload stripped
        elif kind == "checkpoint":
            m = make_checkpoint(signer, domain, name, seq, digest_of(label))
        else:
            raise AssertionError(kind)
        out.append(encode_message(m))
    return out[0], out[1]
