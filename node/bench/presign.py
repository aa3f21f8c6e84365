"""Holder keys and pre-signed transactions, built before the clock starts.

Transfers go round-robin over the holders: round r has every holder send `amount` to the
holder `1 + r mod (M - 1)` places after it, with nonce `start_nonce + r`. So each holder's
nonces are sequential, consecutive transactions come from different signers (no nonce
contention in the mempool), and nobody ever sends to themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.signing

from node.tx import Kind, SignedTransaction, build_transfer, make_tx, public_key

HOLDERS_MIN = 2
HOLDERS_MAX = 100_000
TXS_MAX = 10_000_000
KEY_SEED_TAG = b"assetledger-bench/holder/v1"


class PresignError(ValueError):
    """The requested set of transactions cannot be built (bad counts)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreSigned:
    """One signed transaction, encoded, with what the load generator needs to route it."""

    tx_id: bytes
    raw: bytes
    signer: int  # index of the signing holder (routing key), or -1 for role keys
    nonce: int

    @classmethod
    def of(cls, stx: SignedTransaction, signer: int = -1) -> PreSigned:
        return cls(tx_id=stx.tx_id, raw=stx.encode(), signer=signer, nonce=stx.body.nonce)


def holder_keys(count: int, seed: bytes) -> list[nacl.signing.SigningKey]:
    """`count` holder keys derived from `seed` (a run is reproducible from its seed).

    Derived keys are fine for a benchmark's throw-away accounts, never for real ones."""
    if not HOLDERS_MIN <= count <= HOLDERS_MAX:
        raise PresignError(f"holders must be {HOLDERS_MIN}..{HOLDERS_MAX}, got {count}")
    return [
        nacl.signing.SigningKey(hashlib.sha256(KEY_SEED_TAG + seed + i.to_bytes(4, "big")).digest())
        for i in range(count)
    ]


def transfers_per_holder(count: int, holders: int) -> int:
    """Most transfers any one holder signs (so it must hold that many units times amount)."""
    return -(-count // holders)


def presign_transfers(
    keys: Sequence[nacl.signing.SigningKey],
    *,
    chain_id: str,
    asset_id: str,
    count: int,
    amount: int = 1,
    start_nonce: int = 0,
    first_round: int = 0,
) -> list[PreSigned]:
    """`count` transfers among `keys`, in submission order (see the module docstring).

    Round `first_round + j` uses nonce `start_nonce + j`: a long run can be signed in slices
    of whole rounds that continue the pattern exactly."""
    holders = len(keys)
    if holders < HOLDERS_MIN:
        raise PresignError(f"transfers need at least {HOLDERS_MIN} holders, got {holders}")
    if not 0 <= count <= TXS_MAX:
        raise PresignError(f"txs must be 0..{TXS_MAX}, got {count}")
    accounts = [public_key(key) for key in keys]
    out: list[PreSigned] = []
    j = 0
    while len(out) < count:
        offset = 1 + (first_round + j) % (holders - 1)
        for i in range(min(holders, count - len(out))):
            to = accounts[(i + offset) % holders]
            stx = build_transfer(keys[i], chain_id, start_nonce + j, asset_id, to, amount)
            out.append(PreSigned.of(stx, signer=i))
        j += 1
    return out


def presign_registrations(
    regulator: nacl.signing.SigningKey,
    accounts: Sequence[bytes],
    *,
    chain_id: str,
    start_nonce: int,
) -> list[PreSigned]:
    """The regulator registers every account (category individual), nonces sequential."""
    return [
        PreSigned.of(
            make_tx(
                Kind.REGISTER_ACCOUNT,
                {
                    "account": account,
                    "category": "individual",
                    "kyc_hash": hashlib.sha256(b"bench KYC record " + account).digest(),
                },
                signer_key=regulator,
                nonce=start_nonce + i,
                chain_id=chain_id,
            )
        )
        for i, account in enumerate(accounts)
    ]


def presign_issuance(
    issuer: nacl.signing.SigningKey,
    accounts: Sequence[bytes],
    *,
    chain_id: str,
    start_nonce: int,
    asset_id: str,
    per_account: int,
) -> tuple[PreSigned, list[PreSigned]]:
    """The issuer's create_asset (capped at exactly what is minted) and one mint per account."""
    create = PreSigned.of(
        make_tx(
            Kind.CREATE_ASSET,
            {
                "asset_id": asset_id,
                "name": "Benchmark asset",
                "decimals": 0,
                "cap": per_account * len(accounts),
            },
            signer_key=issuer,
            nonce=start_nonce,
            chain_id=chain_id,
        )
    )
    mints = [
        PreSigned.of(
            make_tx(
                Kind.MINT,
                {"asset_id": asset_id, "to_account": account, "amount": per_account},
                signer_key=issuer,
                nonce=start_nonce + 1 + i,
                chain_id=chain_id,
            )
        )
        for i, account in enumerate(accounts)
    ]
    return create, mints
