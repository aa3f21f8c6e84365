"""Typed results of the client API, as the wire carries them.

These are the API's own records, independent of the ledger's internal ones: the node runtime
converts ledger records into them, and the protocol stays stable when storage changes. Each has
`to_wire()` (a canonical-msgpack-ready map) and `from_wire(obj)` (validating; used by clients,
which must not trust a server's shapes either). Field types are listed in docs/protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.api.schema import Fields, SchemaError, bytes_list, str_list

HASH_BYTES = 32
KEY_BYTES = 32
NAME_BYTES_MAX = 256
REASON_BYTES_MAX = 64
CERTIFICATE_BYTES_MAX = 1 << 20
DECIMALS_MAX = 18
RECEIPT_STATUSES = ("applied", "rejected")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitResult:
    tx_id: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"tx_id": self.tx_id}

    @classmethod
    def from_wire(cls, obj: Any) -> SubmitResult:
        f = Fields(obj, "submit")
        out = cls(tx_id=f.binary("tx_id", HASH_BYTES))
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalityProof:
    """Evidence that a block is final: its hash and the encoded commit certificate (2f+1
    signed COMMITs for that hash), checkable against the validator set without trusting us."""

    height: int
    block_hash: bytes
    certificate: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash,
            "certificate": self.certificate,
        }

    @classmethod
    def from_wire(cls, obj: Any, where: str = "proof") -> FinalityProof:
        f = Fields(obj, where)
        out = cls(
            height=f.integer("height", 1),
            block_hash=f.binary("block_hash", HASH_BYTES),
            certificate=f.binary("certificate", size_max=CERTIFICATE_BYTES_MAX),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptInfo:
    """Outcome of a committed transaction. `reason` is set iff status is "rejected"."""

    tx_id: bytes
    status: str
    reason: str | None
    height: int
    index: int
    proof: FinalityProof | None = None

    def __post_init__(self) -> None:
        if self.status not in RECEIPT_STATUSES:
            raise SchemaError(f"receipt.status: {self.status!r} is not applied or rejected")
        if (self.status == "rejected") != (self.reason is not None):
            raise SchemaError("receipt.reason: set iff status is rejected")

    def to_wire(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id,
            "status": self.status,
            "reason": self.reason,
            "height": self.height,
            "index": self.index,
            "proof": None if self.proof is None else self.proof.to_wire(),
        }

    @classmethod
    def from_wire(cls, obj: Any, where: str = "receipt") -> ReceiptInfo:
        f = Fields(obj, where)
        proof_obj = f.raw("proof", optional=True)
        out = cls(
            tx_id=f.binary("tx_id", HASH_BYTES),
            status=f.text("status", choices=RECEIPT_STATUSES),
            reason=f.opt_text("reason", size_max=REASON_BYTES_MAX),
            height=f.integer("height", 1),
            index=f.integer("index"),
            proof=None if proof_obj is None else FinalityProof.from_wire(proof_obj, f.sub("proof")),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceInfo:
    asset: str
    account: bytes
    balance: int

    def to_wire(self) -> dict[str, Any]:
        return {"asset": self.asset, "account": self.account, "balance": self.balance}

    @classmethod
    def from_wire(cls, obj: Any) -> BalanceInfo:
        f = Fields(obj, "balance")
        out = cls(
            asset=f.text("asset", size_max=NAME_BYTES_MAX),
            account=f.binary("account", KEY_BYTES),
            balance=f.integer("balance"),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class NonceInfo:
    """The nonce the account's next transaction must carry (counting the node's mempool)."""

    account: bytes
    next_nonce: int

    def to_wire(self) -> dict[str, Any]:
        return {"account": self.account, "next_nonce": self.next_nonce}

    @classmethod
    def from_wire(cls, obj: Any) -> NonceInfo:
        f = Fields(obj, "nonce")
        out = cls(account=f.binary("account", KEY_BYTES), next_nonce=f.integer("next_nonce"))
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    """Registration, roles, freezes and nonce of one public key.

    An unknown key is `not_found`; a revoked one is `registered = False` with its history.
    `expires_at_ms` is the registration's expiry (as set by register_account), nil if none.
    """

    account: bytes
    registered: bool
    category: str | None
    kyc_hash: bytes | None
    expires_at_ms: int | None
    roles: tuple[str, ...]
    frozen: bool
    frozen_assets: tuple[str, ...]
    next_nonce: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "registered": self.registered,
            "category": self.category,
            "kyc_hash": self.kyc_hash,
            "expires_at_ms": self.expires_at_ms,
            "roles": list(self.roles),
            "frozen": self.frozen,
            "frozen_assets": list(self.frozen_assets),
            "next_nonce": self.next_nonce,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> AccountInfo:
        f = Fields(obj, "account")
        out = cls(
            account=f.binary("account", KEY_BYTES),
            registered=f.boolean("registered"),
            category=f.opt_text("category", size_max=NAME_BYTES_MAX),
            kyc_hash=f.opt_binary("kyc_hash", HASH_BYTES),
            expires_at_ms=f.opt_integer("expires_at_ms"),
            roles=tuple(str_list(f.array("roles", items_max=16), f.sub("roles"))),
            frozen=f.boolean("frozen"),
            frozen_assets=tuple(
                str_list(f.array("frozen_assets", items_max=10_000), f.sub("frozen_assets"))
            ),
            next_nonce=f.integer("next_nonce"),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetInfo:
    asset: str
    name: str
    decimals: int
    cap: int
    supply: int
    paused: bool
    issuer: bytes
    document_hash: bytes | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "name": self.name,
            "decimals": self.decimals,
            "cap": self.cap,
            "supply": self.supply,
            "paused": self.paused,
            "issuer": self.issuer,
            "document_hash": self.document_hash,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> AssetInfo:
        f = Fields(obj, "asset")
        out = cls(
            asset=f.text("asset", size_max=NAME_BYTES_MAX),
            name=f.text("name", size_max=NAME_BYTES_MAX),
            decimals=f.integer("decimals", 0, DECIMALS_MAX),
            cap=f.integer("cap"),
            supply=f.integer("supply"),
            paused=f.boolean("paused"),
            issuer=f.binary("issuer", KEY_BYTES),
            document_hash=f.opt_binary("document_hash", HASH_BYTES),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockInfo:
    """A committed block: its canonical encoding (hash input) and its commit certificate."""

    height: int
    block_hash: bytes
    tx_ids: tuple[bytes, ...]
    block: bytes
    certificate: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash,
            "tx_ids": list(self.tx_ids),
            "block": self.block,
            "certificate": self.certificate,
        }

    @classmethod
    def from_wire(cls, obj: Any, where: str = "block") -> BlockInfo:
        f = Fields(obj, where)
        out = cls(
            height=f.integer("height", 1),
            block_hash=f.binary("block_hash", HASH_BYTES),
            tx_ids=tuple(bytes_list(f.array("tx_ids"), f.sub("tx_ids"), size=HASH_BYTES)),
            block=f.binary("block"),
            certificate=f.binary("certificate", size_max=CERTIFICATE_BYTES_MAX),
        )
        f.done()
        return out

    def proof(self) -> FinalityProof:
        return FinalityProof(
            height=self.height, block_hash=self.block_hash, certificate=self.certificate
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorInfo:
    name: str
    public_key: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "public_key": self.public_key}


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusInfo:
    """`height` is the last committed block (0 before the first); `primary` a validator name.
    `tx_bytes_max` and `memo_bytes_max` are the chain's transaction limits (genesis
    [consensus]): a client builds within them, not within its own defaults."""

    node: str
    chain_id: str
    height: int
    view: int
    primary: str
    validators: tuple[ValidatorInfo, ...]
    state_digest: bytes
    mempool_size: int
    tx_bytes_max: int
    memo_bytes_max: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "chain_id": self.chain_id,
            "height": self.height,
            "view": self.view,
            "primary": self.primary,
            "validators": [v.to_wire() for v in self.validators],
            "state_digest": self.state_digest,
            "mempool_size": self.mempool_size,
            "tx_bytes_max": self.tx_bytes_max,
            "memo_bytes_max": self.memo_bytes_max,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> StatusInfo:
        f = Fields(obj, "status")
        validators = []
        for i, item in enumerate(f.array("validators", items_max=1_000)):
            v = Fields(item, f"{f.sub('validators')}[{i}]")
            validators.append(
                ValidatorInfo(
                    name=v.text("name", size_max=NAME_BYTES_MAX),
                    public_key=v.binary("public_key", KEY_BYTES),
                )
            )
            v.done()
        out = cls(
            node=f.text("node", size_max=NAME_BYTES_MAX),
            chain_id=f.text("chain_id", size_max=NAME_BYTES_MAX),
            height=f.integer("height"),
            view=f.integer("view"),
            primary=f.text("primary", size_max=NAME_BYTES_MAX),
            validators=tuple(validators),
            state_digest=f.binary("state_digest", HASH_BYTES),
            mempool_size=f.integer("mempool_size"),
            tx_bytes_max=f.integer("tx_bytes_max"),
            memo_bytes_max=f.integer("memo_bytes_max"),
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """Pre-flight verdict: would the node admit and apply this transaction now?"""

    accepted: bool
    reason: str | None

    def __post_init__(self) -> None:
        if self.accepted == (self.reason is not None):
            raise SchemaError("check.reason: set iff accepted is false")

    def to_wire(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason}

    @classmethod
    def from_wire(cls, obj: Any) -> CheckResult:
        f = Fields(obj, "check")
        out = cls(
            accepted=f.boolean("accepted"), reason=f.opt_text("reason", size_max=REASON_BYTES_MAX)
        )
        f.done()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page; nil means done."""

    account: bytes
    tx_ids: tuple[bytes, ...]
    next_cursor: bytes | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "tx_ids": list(self.tx_ids),
            "next_cursor": self.next_cursor,
        }

    @classmethod
    def from_wire(cls, obj: Any) -> HistoryPage:
        f = Fields(obj, "history")
        out = cls(
            account=f.binary("account", KEY_BYTES),
            tx_ids=tuple(bytes_list(f.array("tx_ids"), f.sub("tx_ids"), size=HASH_BYTES)),
            next_cursor=f.opt_binary("next_cursor", size_max=256),
        )
        f.done()
        return out
